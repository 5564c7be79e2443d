//go:build integration

package chart

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/solver"
)

// policyRelease is one install of the chart whose admission policy a test drives.
type policyRelease struct {
	name  string
	group string
	// clusterResourceNamespace is the namespace a ClusterIssuer's requests carry.
	clusterResourceNamespace string
}

// The two ways the policy learns the programs: rendered from config.programs,
// and read from a params ConfigMap beside config.existingConfigMap.
var (
	inlineRelease = policyRelease{name: "inline", group: "inline.acme.example.com", clusterResourceNamespace: "cert-manager"}
	paramsRelease = policyRelease{name: "params", group: "params.acme.example.com", clusterResourceNamespace: "cm-resources"}
	// defaultRelease is the README's install with the chart's defaults.
	defaultRelease = policyRelease{name: "exec-webhook", group: "acme.example.com", clusterResourceNamespace: "cert-manager"}
	warnRelease    = policyRelease{name: "warn", group: "warn.acme.example.com", clusterResourceNamespace: "cert-manager"}
)

// policyKubectl runs kubectl against the test API server in a working
// directory of its own and returns its stdout and stderr apart, since a
// warning goes to stderr of a success.
type policyKubectl func(t *testing.T, args ...string) (stdout, stderr string, err error)

// TestAdmissionPolicy installs the chart into a real kube-apiserver with
// cert-manager's CRDs and checks what its ValidatingAdmissionPolicy does to
// Issuers and ClusterIssuers.
func TestAdmissionPolicy(t *testing.T) {
	cp := testbed.StartControlPlane(t, testbed.ControlPlaneOptions{})
	for _, ns := range []string{releaseNamespace, "cm-resources", "team-a", "team-b", "team-c"} {
		if _, err := cp.Kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	kubeconfig := testbed.WriteKubeconfig(t, cp.UserConfig(t, "chart-admin", "system:masters"), filepath.Join(t.TempDir(), "kubeconfig"))
	workDir := t.TempDir()
	kubectl := func(t *testing.T, args ...string) (string, string, error) {
		t.Helper()
		cmd := exec.Command(os.Getenv("TEST_ASSET_KUBECTL"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
		cmd.Dir = workDir
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return strings.TrimSpace(stdout.String()), strings.TrimSpace(stderr.String()), err
	}
	policyDir := filepath.Join(testbed.RepoRoot(t), "testdata", "chart", "policy")
	install := func(t *testing.T, r policyRelease, args ...string) {
		t.Helper()
		args = append([]string{"install", r.name, chartDir(t), "--kubeconfig", kubeconfig, "--namespace", releaseNamespace,
			"--set", "groupName=" + r.group}, args...)
		if _, err := helm(t, args...); err != nil {
			t.Fatalf("helm install %s: %v", r.name, err)
		}
		waitPolicyActive(t, cp, r)
	}

	install(t, inlineRelease, "-f", filepath.Join(policyDir, "inline.yaml"))
	solverConfig, err := os.ReadFile(filepath.Join(policyDir, "solver-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Kube.CoreV1().ConfigMaps(releaseNamespace).Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "solver-config"}, Data: map[string]string{"config.yaml": string(solverConfig)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, stderr, err := kubectl(t, "apply", "-f", filepath.Join(policyDir, "params.yaml")); err != nil {
		t.Fatalf("%v: %s%s", err, out, stderr)
	}
	install(t, paramsRelease, "--set", "config.existingConfigMap=solver-config", "--set", "secretsAccess.scope=none",
		"--set", "certManager.clusterResourceNamespace="+paramsRelease.clusterResourceNamespace)

	configs := map[string]*solver.Config{
		inlineRelease.name: installedSolverConfig(t, cp, inlineRelease.name+"-cert-manager-webhook-exec-config"),
		paramsRelease.name: installedSolverConfig(t, cp, "solver-config"),
	}
	t.Run("differential", func(t *testing.T) { testPolicyDifferential(t, cp, configs) })
	t.Run("default install", func(t *testing.T) {
		install(t, defaultRelease)
		testPolicyDefaultInstall(t, kubectl, workDir)
	})
	t.Run("Warn", func(t *testing.T) {
		install(t, warnRelease, "--set", "admissionPolicy.validationActions={Warn}")
		testPolicyWarn(t, kubectl, workDir)
	})
	t.Run("params missing", func(t *testing.T) { testPolicyParamsMissing(t, cp, kubectl) })
}

// installedSolverConfig loads the solver config a release's webhook would
// load, from its ConfigMap on the API server.
func installedSolverConfig(t *testing.T, cp *testbed.ControlPlane, configMap string) *solver.Config {
	t.Helper()
	cm, err := cp.Kube.CoreV1().ConfigMaps(releaseNamespace).Get(context.Background(), configMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := solver.ParseConfig([]byte(cm.Data["config.yaml"]), readmeDefaults, anyPath)
	if err != nil {
		t.Fatalf("ConfigMap %s: %v", configMap, err)
	}
	return cfg
}

// waitPolicyActive waits until the API server applies r's policy (a refusal
// or a warning): policies and bindings reach admission through informers, a
// moment after they are created.
func waitPolicyActive(t *testing.T, cp *testbed.ControlPlane, r policyRelease) {
	t.Helper()
	waitVerdict(t, "the policy of release "+r.name+" acts on a config that is a string", func() bool {
		warnings, err := createIssuerWarned(t, cp, "team-a", r.group, `"not a mapping"`)
		return err != nil || len(warnings) != 0
	})
}

// warningRecorder keeps the warnings the API server sends.
type warningRecorder struct{ warnings []string }

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.warnings = append(w.warnings, text)
}

// createIssuerWarned is createIssuer, returning the API server's warnings too.
func createIssuerWarned(t *testing.T, cp *testbed.ControlPlane, namespace, group, config string) ([]string, error) {
	t.Helper()
	recorder := &warningRecorder{}
	cfg := rest.CopyConfig(cp.Config)
	cfg.WarningHandler = recorder
	err := createIssuer(cmclient.NewForConfigOrDie(cfg), namespace, group, config)
	return recorder.warnings, err
}

// issuerSpec is an ACME issuer whose first solver is group's solver
// solverName with the given webhook.config ("" for none), followed by another
// webhook's solvers whose configs and names the policy must leave alone.
func issuerSpec(group, solverName, config string) cmapi.IssuerSpec {
	var raw *apiextensionsv1.JSON
	if config != "" {
		raw = &apiextensionsv1.JSON{Raw: []byte(config)}
	}
	webhook := func(group, solverName string, config *apiextensionsv1.JSON) cmacme.ACMEChallengeSolver {
		return cmacme.ACMEChallengeSolver{DNS01: &cmacme.ACMEChallengeSolverDNS01{
			Webhook: &cmacme.ACMEIssuerDNS01ProviderWebhook{GroupName: group, SolverName: solverName, Config: config},
		}}
	}
	other := webhook("other.example.com", solver.SolverName, &apiextensionsv1.JSON{Raw: []byte(`{"Program": 1}`)})
	otherName := webhook("other.example.com", "exce", nil)
	return cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{ACME: &cmacme.ACMEIssuer{
		Server:     "https://acme.example.com/directory",
		PrivateKey: cmmeta.SecretKeySelector{LocalObjectReference: cmmeta.LocalObjectReference{Name: "account"}},
		Solvers:    []cmacme.ACMEChallengeSolver{webhook(group, solverName, raw), other, otherName},
	}}}
}

// createIssuer submits, as a server-side dry run with kubectl's strict field
// validation, an Issuer in namespace (a ClusterIssuer for "") using group's
// exec solver.
func createIssuer(cm cmclient.Interface, namespace, group, config string) error {
	return createSolverIssuer(cm, namespace, group, solver.SolverName, config)
}

// createSolverIssuer is createIssuer with the solver's group and name as given.
func createSolverIssuer(cm cmclient.Interface, namespace, group, solverName, config string) error {
	opts := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: metav1.FieldValidationStrict}
	meta := metav1.ObjectMeta{Name: "differential", Namespace: namespace}
	spec := issuerSpec(group, solverName, config)
	var err error
	if namespace == "" {
		_, err = cm.CertmanagerV1().ClusterIssuers().Create(context.Background(), &cmapi.ClusterIssuer{ObjectMeta: meta, Spec: spec}, opts)
	} else {
		_, err = cm.CertmanagerV1().Issuers(namespace).Create(context.Background(), &cmapi.Issuer{ObjectMeta: meta, Spec: spec}, opts)
	}
	return err
}

// policyRefusal returns what the policy said after "denied request: ", or
// the whole error when the refusal is not the policy's.
func policyRefusal(err error) string {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return err.Error()
	}
	message := status.Status().Message
	if _, refusal, ok := strings.Cut(message, " denied request: "); ok {
		return refusal
	}
	return message
}

// policyCase is an Issuer config and the verdict on it, by release: the
// refusal's exact words, or "" for accepted.
type policyCase struct {
	// namespace is the Issuer's; "" makes it a ClusterIssuer.
	namespace string
	// config is the exec solver's webhook.config as JSON; "" for none.
	config string
	want   map[string]string
}

// both is the verdict of both releases.
func both(refusal string) map[string]string {
	return map[string]string{inlineRelease.name: refusal, paramsRelease.name: refusal}
}

const (
	noProgram   = `issuer config names no program and the solver config has no defaultProgram; set "program" to one of: cloud, nsupdate, tenant`
	goodEnv     = `{"TSIG_SECRET": {"secretKeyRef": {"name": "tsig", "key": "secret"}}}`
	onlyProgram = `; an Issuer may set only "program" and "env", spelled exactly`
	onlyRef     = `; a variable is set only by secretKeyRef with name and key`
	literal     = `; an Issuer takes values only from Secrets, literal values belong in the solver config (the program's env)`
)

// policyCases is the table both enforcers must agree on.
var policyCases = map[string]policyCase{
	"program with its variable":          {"team-c", `{"program": "nsupdate", "env": ` + goodEnv + `}`, both("")},
	"program with no variables":          {"team-c", `{"program": "nsupdate"}`, both("")},
	"program in an allowed namespace":    {"team-b", `{"program": "tenant", "env": {"API_TOKEN": {"secretKeyRef": {"name": "t", "key": "k"}}}}`, both("")},
	"empty env":                          {"team-a", `{"program": "cloud", "env": {}}`, both("")},
	"no config":                          {"team-a", ``, map[string]string{"inline": noProgram, "params": ""}},
	"empty config":                       {"team-a", `{}`, map[string]string{"inline": noProgram, "params": ""}},
	"null config":                        {"team-a", `null`, map[string]string{"inline": noProgram, "params": ""}},
	"env only, default program":          {"team-a", `{"env": ` + goodEnv + `}`, map[string]string{"inline": noProgram, "params": ""}},
	"empty program name":                 {"team-a", `{"program": ""}`, map[string]string{"inline": noProgram, "params": ""}},
	"config a string":                    {"team-a", `"nsupdate"`, both(`issuer config: expected a mapping, got a string`)},
	"config an array":                    {"team-a", `["nsupdate"]`, both(`issuer config: expected a mapping, got an array`)},
	"config a number":                    {"team-a", `42`, both(`issuer config: expected a mapping, got a number`)},
	"config a bool":                      {"team-a", `true`, both(`issuer config: expected a mapping, got a bool`)},
	"key Program":                        {"team-a", `{"Program": "nsupdate"}`, both(`issuer config: unknown key "Program"` + onlyProgram)},
	"key PROGRAM beside program":         {"team-a", `{"program": "nsupdate", "PROGRAM": "tenant"}`, both(`issuer config: unknown key "PROGRAM"` + onlyProgram)},
	"key secretEnv":                      {"team-a", `{"program": "nsupdate", "secretEnv": ["TSIG_SECRET"]}`, both(`issuer config: unknown key "secretEnv"` + onlyProgram)},
	"program a number":                   {"team-a", `{"program": 1}`, both(`issuer config: program: expected a string, got a number`)},
	"program not configured":             {"team-a", `{"program": "route53"}`, both(`issuer config: program "route53" is not configured; choose one of: cloud, nsupdate, tenant`)},
	"program case variant":               {"team-a", `{"program": "NSUPDATE"}`, both(`issuer config: program "NSUPDATE" is not configured; choose one of: cloud, nsupdate, tenant`)},
	"env a list":                         {"team-a", `{"program": "nsupdate", "env": ["TSIG_SECRET"]}`, both(`issuer config: env: expected a mapping, got an array`)},
	"env a string":                       {"team-a", `{"program": "nsupdate", "env": "TSIG_SECRET=x"}`, both(`issuer config: env: expected a mapping, got a string`)},
	"env value a string":                 {"team-a", `{"program": "nsupdate", "env": {"TSIG_SECRET": "s3cr3t"}}`, both(`issuer config: env TSIG_SECRET: expected secretKeyRef with name and key, got a string` + literal)},
	"env value a number":                 {"team-a", `{"program": "nsupdate", "env": {"NSUPDATE_SERVER": 53}}`, both(`issuer config: env NSUPDATE_SERVER: expected secretKeyRef with name and key, got a number` + literal)},
	"env value empty":                    {"team-a", `{"program": "nsupdate", "env": {"TSIG_SECRET": {}}}`, both(`issuer config: env TSIG_SECRET: needs secretKeyRef with name and key`)},
	"secretKeyRef misspelled":            {"team-a", `{"program": "nsupdate", "env": {"TSIG_SECRET": {"secretKeyref": {"name": "tsig", "key": "secret"}}}}`, both(`issuer config: env TSIG_SECRET: unknown key "secretKeyref"` + onlyRef)},
	"value beside secretKeyRef":          {"team-a", `{"program": "nsupdate", "env": {"TSIG_SECRET": {"value": "x", "secretKeyRef": {"name": "tsig", "key": "secret"}}}}`, both(`issuer config: env TSIG_SECRET: unknown key "value"` + onlyRef)},
	"secretKeyRef with namespace":        {"team-a", `{"program": "nsupdate", "env": {"TSIG_SECRET": {"secretKeyRef": {"name": "tsig", "key": "secret", "namespace": "kube-system"}}}}`, both(`issuer config: env TSIG_SECRET: secretKeyRef: unknown key "namespace"; secretKeyRef has only "name" and "key"`)},
	"secretKeyRef without key":           {"team-a", `{"program": "nsupdate", "env": {"TSIG_SECRET": {"secretKeyRef": {"name": "tsig"}}}}`, both(`issuer config: env TSIG_SECRET: secretKeyRef needs both name and key`)},
	"secretKeyRef with empty name":       {"team-a", `{"program": "nsupdate", "env": {"TSIG_SECRET": {"secretKeyRef": {"name": "", "key": "secret"}}}}`, both(`issuer config: env TSIG_SECRET: secretKeyRef needs both name and key`)},
	"env not the program's":              {"team-a", `{"program": "nsupdate", "env": {"API_TOKEN": {"secretKeyRef": {"name": "t", "key": "k"}}}}`, both(`issuer config: env API_TOKEN is not allowed for program "nsupdate"; allowed: NSUPDATE_SERVER, TSIG_SECRET`)},
	"env for a program with none":        {"team-a", `{"program": "cloud", "env": {"CLOUD_TOKEN": {"secretKeyRef": {"name": "t", "key": "k"}}}}`, both(`issuer config: env CLOUD_TOKEN is not allowed: program "cloud" allows no Secret-backed variables`)},
	"env case variant":                   {"team-a", `{"program": "nsupdate", "env": {"tsig_secret": {"secretKeyRef": {"name": "t", "key": "k"}}}}`, both(`issuer config: env tsig_secret is not allowed for program "nsupdate"; allowed: NSUPDATE_SERVER, TSIG_SECRET`)},
	"namespace not allowed":              {"team-c", `{"program": "tenant"}`, both(`program "tenant" may not be used from namespace "team-c"; ask the cluster admin to add it to the program's allowedNamespaces`)},
	"null program":                       {"team-a", `{"program": null}`, map[string]string{"inline": noProgram, "params": ""}},
	"null env":                           {"team-a", `{"program": "nsupdate", "env": null}`, both("")},
	"env value null":                     {"team-a", `{"program": "nsupdate", "env": {"TSIG_SECRET": null}}`, both(`issuer config: env TSIG_SECRET: needs secretKeyRef with name and key`)},
	"secretKeyRef null":                  {"team-a", `{"program": "nsupdate", "env": {"TSIG_SECRET": {"secretKeyRef": null}}}`, both(`issuer config: env TSIG_SECRET: needs secretKeyRef with name and key`)},
	"secretKeyRef a string":              {"team-a", `{"program": "nsupdate", "env": {"TSIG_SECRET": {"secretKeyRef": "tsig/secret"}}}`, both(`issuer config: env TSIG_SECRET: secretKeyRef: expected a mapping, got a string`)},
	"secretKeyRef name a number":         {"team-a", `{"program": "nsupdate", "env": {"TSIG_SECRET": {"secretKeyRef": {"name": 1, "key": "secret"}}}}`, both(`issuer config: env TSIG_SECRET: secretKeyRef: name: expected a string, got a number`)},
	"secretKeyRef key a bool":            {"team-a", `{"program": "nsupdate", "env": {"TSIG_SECRET": {"secretKeyRef": {"name": "tsig", "key": true}}}}`, both(`issuer config: env TSIG_SECRET: secretKeyRef: key: expected a string, got a bool`)},
	"secretKeyRef name null":             {"team-a", `{"program": "nsupdate", "env": {"TSIG_SECRET": {"secretKeyRef": {"name": null, "key": "secret"}}}}`, both(`issuer config: env TSIG_SECRET: secretKeyRef needs both name and key`)},
	"duplicate program":                  {"team-a", `{"program": "nsupdate", "program": "tenant"}`, both(`issuer config: key "program" appears twice`)},
	"ClusterIssuer, program for anyone":  {"", `{"program": "nsupdate", "env": ` + goodEnv + `}`, both("")},
	"ClusterIssuer, program for tenants": {"", `{"program": "tenant"}`, map[string]string{"inline": `program "tenant" may not be used from namespace "cert-manager"; ask the cluster admin to add it to the program's allowedNamespaces`, "params": `program "tenant" may not be used from namespace "cm-resources"; ask the cluster admin to add it to the program's allowedNamespaces`}},
	"ClusterIssuer, program for cert-manager's namespace": {"", `{"program": "cloud"}`, map[string]string{"inline": "", "params": `program "cloud" may not be used from namespace "cm-resources"; ask the cluster admin to add it to the program's allowedNamespaces`}},
}

// apiServerRefusals are the rows the API server refuses itself, before
// admission, with strict field validation (kubectl's default): the policy never
// sees them, and the webhook refuses them too. Without strict validation the
// API server keeps the last duplicate, and that is all the webhook receives.
var apiServerRefusals = map[string]string{
	"duplicate program": `Issuer in version "v1" cannot be handled as a Issuer: strict decoding error: duplicate field "spec.acme.solvers[0].dns01.webhook.config.program"`,
}

// notFound is how cert-manager reports, in a Challenge's status, a call to a
// solver that no webhook serves (test/integration TestMisnamedSolver).
const notFound = `cert-manager's calls would fail with "the server could not find the requested resource"`

// solverNameCases are Issuers whose solver names this release's group with a
// solverName the webhook does not serve, or names the group in another case.
// cert-manager's calls for them never reach the solver, so the policy alone
// can say why; each config is one the webhook accepts. A solverName in
// another case reaches it (client-go asks for it in lower case) and is
// admitted. want holds %[1]s for the release's group and %[2]s for the
// Issuer's; "" is admitted.
var solverNameCases = map[string]struct {
	group      func(release string) string
	solverName string
	want       string
}{
	"solverName misspelt": {strings.Clone, "exce",
		`solverName "exce" is not served by this webhook (groupName %[1]s), whose one solver is "exec"; ` + notFound},
	"solverName the chart's name": {strings.Clone, "cert-manager-webhook-exec",
		`solverName "cert-manager-webhook-exec" is not served by this webhook (groupName %[1]s), whose one solver is "exec"; ` + notFound},
	"solverName Exec":      {strings.Clone, "Exec", ""},
	"solverName EXEC":      {strings.Clone, "EXEC", ""},
	"groupName upper case": {strings.ToUpper, "exec", `groupName "%[2]s" is not this webhook's group %[1]s: API groups are case-sensitive; ` + notFound},
	"groupName upper case, solverName misspelt": {strings.ToUpper, "exce",
		`groupName "%[2]s" is not this webhook's group %[1]s: API groups are case-sensitive; ` + notFound},
}

// testPolicyDifferential runs policyCases through both enforcers of each
// release: the solver's own verdict (solver.Config.AdmitIssuer on the
// release's solver config) and the release's policy on the API server. Each
// must give the row's verdict, so a row where they disagree fails.
func testPolicyDifferential(t *testing.T, cp *testbed.ControlPlane, configs map[string]*solver.Config) {
	for name, tc := range policyCases {
		for _, r := range []policyRelease{inlineRelease, paramsRelease} {
			want, ok := tc.want[r.name]
			if !ok {
				t.Fatalf("%s: no verdict for release %s", name, r.name)
			}
			t.Run(name+"/"+r.name, func(t *testing.T) {
				namespace := tc.namespace
				if namespace == "" {
					namespace = r.clusterResourceNamespace
				}
				var raw []byte
				if tc.config != "" {
					raw = []byte(tc.config)
				}
				webhook := ""
				if _, _, err := configs[r.name].AdmitIssuer(raw, namespace); err != nil {
					webhook = err.Error()
				}
				policy := ""
				if err := createIssuer(cp.CM, tc.namespace, r.group, tc.config); err != nil {
					policy = policyRefusal(err)
				}
				wantPolicy := want
				if refusal, ok := apiServerRefusals[name]; ok {
					wantPolicy = refusal
				}
				if webhook != want || policy != wantPolicy {
					t.Errorf("\nwebhook: %s\n   want: %s\n policy: %s\n   want: %s", webhook, want, policy, wantPolicy)
				}
			})
		}
	}
	for name, tc := range solverNameCases {
		for _, r := range []policyRelease{inlineRelease, paramsRelease} {
			t.Run(name+"/"+r.name, func(t *testing.T) {
				const config = `{"program": "nsupdate"}`
				if _, _, err := configs[r.name].AdmitIssuer([]byte(config), "team-a"); err != nil {
					t.Fatalf("the webhook refuses the config: %v", err)
				}
				group := tc.group(r.group)
				policy := ""
				if err := createSolverIssuer(cp.CM, "team-a", group, tc.solverName, config); err != nil {
					policy = policyRefusal(err)
				}
				want := tc.want
				if want != "" {
					want = fmt.Sprintf(want, r.group, group)
				}
				if policy != want {
					t.Errorf("\npolicy: %s\n  want: %s", policy, want)
				}
			})
		}
	}
}

// testPolicyParamsMissing checks the deliberate parameterNotFoundAction Allow
// and failurePolicy Ignore: without its params ConfigMap the policy of an
// existingConfigMap install admits everything (the webhook still refuses at
// request time), where Deny with failurePolicy Fail would refuse every Issuer
// in the cluster, of any kind.
func testPolicyParamsMissing(t *testing.T, cp *testbed.ControlPlane, kubectl policyKubectl) {
	bad := `{"program": "route53"}`
	if err := cp.Kube.CoreV1().ConfigMaps(releaseNamespace).Delete(context.Background(), "solver-config-policy", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitVerdict(t, "an Issuer naming no configured program admitted without params", func() bool {
		return createIssuer(cp.CM, "team-a", paramsRelease.group, bad) == nil
	})
	if err := createIssuer(cp.CM, "team-a", inlineRelease.group, bad); err == nil {
		t.Error("the inline release's policy admitted a program that is not configured")
	}

	name := paramsRelease.name + "-cert-manager-webhook-exec." + paramsRelease.group
	for _, patch := range [][]string{
		{"validatingadmissionpolicybinding", name, `{"spec":{"paramRef":{"parameterNotFoundAction":"Deny"}}}`},
		{"validatingadmissionpolicy", name, `{"spec":{"failurePolicy":"Fail"}}`},
	} {
		if out, stderr, err := kubectl(t, "patch", patch[0], patch[1], "--type=merge", "-p", patch[2]); err != nil {
			t.Fatalf("%v: %s%s", err, out, stderr)
		}
	}
	otherWebhook := func() error { return createIssuer(cp.CM, "team-a", "other.example.com", `{}`) }
	waitVerdict(t, "with Deny and Fail, an Issuer of another webhook refused", func() bool { return otherWebhook() != nil })
	want := "failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction"
	if got := policyRefusal(otherWebhook()); got != want {
		t.Errorf("with Deny and Fail, an Issuer of another webhook is refused with:\n%s\nwant: %s", got, want)
	}
}

// waitVerdict waits up to a minute for verdict to hold, as a policy or binding
// change reaches admission through informers.
func waitVerdict(t *testing.T, what string, verdict func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !verdict() {
		if time.Now().After(deadline) {
			t.Fatalf("after a minute, still not: %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// issuerManifest is an Issuer in team-a using group's exec solver with the
// given webhook.config (YAML, indented for its place).
func issuerManifest(name, group, config string) string {
	return `apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: ` + name + `
  namespace: team-a
spec:
  acme:
    server: https://acme-v02.api.letsencrypt.org/directory
    privateKeySecretRef: {name: ` + name + `-account}
    solvers:
    - dns01:
        webhook:
          groupName: ` + group + `
          solverName: exec
          config: ` + config + "\n"
}

// secondSolver is, for issuerManifest, a first config for the zone
// example.com followed by a second solver of group with its own config.
func secondSolver(first, group, second string) string {
	return first + `
      selector: {dnsZones: [example.com]}
    - dns01:
        webhook:
          groupName: ` + group + `
          solverName: exec
          config: ` + second
}

// applyManifest writes manifest to file in dir and runs `kubectl apply -f file` there.
func applyManifest(t *testing.T, kubectl policyKubectl, dir, file, manifest string) (stdout, stderr string, err error) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, file), []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	return kubectl(t, "apply", "-f", file)
}

// testPolicyDefaultInstall applies, as a user does, Issuers to the chart
// installed with its defaults: the good ones are created, each bad one is
// refused with the policy's message, and the README's example refusal is the
// one kubectl prints.
func testPolicyDefaultInstall(t *testing.T, kubectl policyKubectl, dir string) {
	group := defaultRelease.group
	good := map[string]string{
		"README Issuer":           readmeBlock(t, readmeIssuerPrefix),
		"deploy/examples Issuer":  readFile(t, filepath.Join(testbed.RepoRoot(t), "deploy", "examples", "issuer-default-mode.yaml")),
		"the default program":     issuerManifest("no-program", group, "{}"),
		"every allowed variable":  issuerManifest("all-variables", group, "{program: nsupdate, env: {NSUPDATE_SERVER: {secretKeyRef: {name: a, key: b}}, NSUPDATE_PORT: {secretKeyRef: {name: a, key: c}}, NSUPDATE_ZONE: {secretKeyRef: {name: a, key: d}}, TSIG_KEY_NAME: {secretKeyRef: {name: a, key: e}}, TSIG_ALGORITHM: {secretKeyRef: {name: a, key: f}}, TSIG_SECRET: {secretKeyRef: {name: a, key: g}}}}"),
		"another webhook's typos": issuerManifest("other-webhook", "other.example.com", "{Program: x}"),
		"solverName Exec":         strings.Replace(issuerManifest("solver-exec", group, "{program: nsupdate}"), "solverName: exec", "solverName: Exec", 1),
		"another webhook's solverName exce": strings.Replace(issuerManifest("other-solver", "other.example.com", "{}"),
			"solverName: exec", "solverName: exce", 1),
	}
	for name, manifest := range good {
		t.Run(name, func(t *testing.T) {
			if out, stderr, err := applyManifest(t, kubectl, dir, "good.yaml", manifest); err != nil || stderr != "" {
				t.Errorf("kubectl apply: %v\n%s\n%s", err, out, stderr)
			}
		})
	}

	bad := map[string]struct{ manifest, want string }{
		"program misspelled": {issuerManifest("misspelled", group, "{program: nsupdte}"),
			`issuer config: program "nsupdte" is not configured; choose one of: nsupdate`},
		"secretKeyRef misspelled": {issuerManifest("secretkeyref", group, "{env: {TSIG_SECRET: {secretKeyref: {name: tsig, key: secret}}}}"),
			`issuer config: env TSIG_SECRET: unknown key "secretKeyref"; a variable is set only by secretKeyRef with name and key`},
		"variable the program does not allow": {issuerManifest("api-token", group, "{program: nsupdate, env: {API_TOKEN: {secretKeyRef: {name: t, key: k}}}}"),
			`issuer config: env API_TOKEN is not allowed for program "nsupdate"; allowed: NSUPDATE_SERVER, NSUPDATE_PORT, NSUPDATE_ZONE, TSIG_KEY_NAME, TSIG_ALGORITHM, TSIG_SECRET`},
		"key Program": {issuerManifest("capital", group, "{Program: nsupdate}"),
			`issuer config: unknown key "Program"; an Issuer may set only "program" and "env", spelled exactly`},
		"config a string": {issuerManifest("string", group, "nsupdate"),
			`issuer config: expected a mapping, got a string`},
		"two exec solvers, the second bad": {issuerManifest("second-bad", group, secondSolver("{program: nsupdate}", group, "{program: nsupdte}")),
			`issuer config: program "nsupdte" is not configured; choose one of: nsupdate`},
		"two exec solvers, both bad": {issuerManifest("both-bad", group, secondSolver("{Program: nsupdate}", group, "{program: nsupdte}")),
			`issuer config: unknown key "Program"; an Issuer may set only "program" and "env", spelled exactly; issuer config: program "nsupdte" is not configured; choose one of: nsupdate`},
		"solverName the release's name": {strings.Replace(issuerManifest("solver-release", group, "{program: nsupdate}"), "solverName: exec", "solverName: exec-webhook", 1),
			`solverName "exec-webhook" is not served by this webhook (groupName acme.example.com), whose one solver is "exec"; ` + notFound},
		"deploy/examples ClusterIssuer, whose RAW program the defaults lack": {
			readFile(t, filepath.Join(testbed.RepoRoot(t), "deploy", "examples", "clusterissuer-raw-mode.yaml")),
			`issuer config: program "nsupdate-raw" is not configured; choose one of: nsupdate`},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			_, stderr, err := applyManifest(t, kubectl, dir, "bad.yaml", tc.manifest)
			if err == nil || !strings.Contains(stderr, " denied request: "+tc.want+"\n") && !strings.HasSuffix(stderr, " denied request: "+tc.want) {
				t.Errorf("kubectl apply: %v\n%s\nwant the policy's refusal: %s", err, stderr, tc.want)
			}
		})
	}

	t.Run("docs example", func(t *testing.T) {
		manifest := configurationBlock(t, "# issuer.yaml")
		command, want, _ := strings.Cut(configurationBlock(t, "$ kubectl apply -f issuer.yaml\n"), "\n")
		if command != "$ kubectl apply -f issuer.yaml" {
			t.Fatalf("docs/configuration.md's command %q", command)
		}
		_, stderr, err := applyManifest(t, kubectl, dir, "issuer.yaml", manifest)
		if err == nil || stderr != strings.TrimSpace(want) {
			t.Errorf("kubectl apply -f issuer.yaml: %v\n got: %s\nwant: %s (docs/configuration.md)", err, stderr, strings.TrimSpace(want))
		}
	})
}

// testPolicyWarn checks validationActions [Warn]: a bad Issuer is created,
// and kubectl prints the policy's message as a warning.
func testPolicyWarn(t *testing.T, kubectl policyKubectl, dir string) {
	out, stderr, err := applyManifest(t, kubectl, dir, "warn.yaml", issuerManifest("warned", warnRelease.group, "{program: nsupdte}"))
	if err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, stderr)
	}
	policy := warnRelease.name + "-cert-manager-webhook-exec." + warnRelease.group
	want := "Warning: Validation failed for ValidatingAdmissionPolicy '" + policy + "' with binding '" + policy +
		`': issuer config: program "nsupdte" is not configured; choose one of: nsupdate`
	if stderr != want || out != "issuer.cert-manager.io/warned created" {
		t.Errorf("kubectl apply printed\n%s\n%s\nwant the warning\n%s", out, stderr, want)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
