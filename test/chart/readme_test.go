//go:build integration

package chart

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/solver"
)

// readmeBlock returns the body of the README's one fenced code block whose
// text starts with prefix, so the README's examples are the tests' input.
func readmeBlock(t *testing.T, prefix string) string {
	t.Helper()
	return testbed.FencedBlock(t, "README.md", prefix)
}

// configurationBlock is readmeBlock for docs/configuration.md.
func configurationBlock(t *testing.T, prefix string) string {
	t.Helper()
	return testbed.FencedBlock(t, "docs/configuration.md", prefix)
}

// The README's Issuer and docs/configuration.md's ClusterIssuer, each in a block with the Secret it reads.
const (
	readmeIssuerPrefix  = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: rfc2136\n  namespace: team-a\n"
	clusterIssuerPrefix = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: rfc2136\n  namespace: cert-manager "
)

// anyPath accepts every program path: the documented paths are in a cluster's image.
func anyPath(string) error { return nil }

var readmeDefaults = solver.Propagation{Timeout: time.Minute, Interval: 2 * time.Second}

// TestDocsSolverConfig checks that docs/configuration.md's solver config
// reference is a valid solver config meaning what its comments say, and that
// its error example is the error the solver gives.
func TestDocsSolverConfig(t *testing.T) {
	reference := configurationBlock(t, "# "+solver.DefaultConfigPath)
	cfg, err := solver.ParseConfig([]byte(reference), readmeDefaults, anyPath)
	if err != nil {
		t.Fatalf("docs/configuration.md's config reference does not load: %v", err)
	}
	p := cfg.Programs["nsupdate"]
	if p == nil || cfg.DefaultProgram != "nsupdate" || cfg.MaxConcurrentRuns != 60 {
		t.Fatalf("config reference loaded as %+v", cfg)
	}
	if p.Timeout != 30*time.Second || p.Mode != solver.ModeDefault || !p.SerializePerZone ||
		!slices.Equal(p.SecretEnv, []string{"TSIG_SECRET"}) || !slices.Equal(p.PassEnv, []string{"DNS_API_TOKEN"}) ||
		p.Propagation.Timeout != 2*time.Minute || p.Propagation.Interval != 5*time.Second ||
		p.RateLimit != (solver.RateLimit{Runs: 10, Per: time.Minute}) || p.MaxConcurrent != 4 || p.Breaker != solver.DefaultBreaker {
		t.Errorf("program nsupdate loaded as %+v", p)
	}

	bad := strings.Replace(reference, "timeout: 30s ", `timeout: "30 seconds"`, 1)
	if bad == reference {
		t.Fatal("the config reference no longer has `timeout: 30s`; update this test's error example")
	}
	_, err = solver.ParseConfig([]byte(bad), readmeDefaults, anyPath)
	if err == nil {
		t.Fatal("a timeout of 30 seconds loaded")
	}
	want := strings.TrimSpace(configurationBlock(t, "solver config "))
	if got := "solver config " + solver.DefaultConfigPath + ": " + err.Error(); got != want {
		t.Errorf("error example:\n got: %s\nwant: %s (docs/configuration.md)", got, want)
	}
}

// readmeInstall runs the README's `helm install` command against the test API
// server, then applies its Issuer, and its ClusterIssuer after its
// values-raw.yaml, with server-side validation, and checks each against the
// installed config; and the NOTES of the install.
func readmeInstall(t *testing.T, cp *testbed.ControlPlane, kubeconfig string, kubectl func(*testing.T, ...string) (string, error)) {
	block := readmeBlock(t, "helm install ")
	// The chart's README shows the same command.
	if chartREADME := testbed.FencedBlock(t, "charts/cert-manager-webhook-exec/README.md", "helm install "); chartREADME != block {
		t.Errorf("the chart README's install command\n%s\ndiffers from the README's\n%s", chartREADME, block)
	}
	commands := testbed.ShellCommands(t, block)
	if len(commands) != 1 {
		t.Fatalf("the README's helm install block holds %d commands, want 1", len(commands))
	}
	args := testbed.WithChartDir(t, commands[0], chartDir(t))
	out, err := helm(t, append(args[1:], "--kubeconfig", kubeconfig)...)
	if err != nil {
		t.Fatalf("the README's helm install: %v", err)
	}
	release := args[2]
	waitPolicyActive(t, cp, policyRelease{name: release, group: "acme.example.com"})
	checkNotes(t, cp, kubectl, release, "acme.example.com", out, notesWant{kind: "Issuer", namespace: "team-a", lines: []string{
		"The webhook may read Secrets only in: cert-manager, team-a.\n"}})
	sa := "system:serviceaccount:cert-manager:" + release + "-cert-manager-webhook-exec"
	if !canI(t, cp, sa, "get secrets -n team-a") || canI(t, cp, sa, "get secrets -n team-b") {
		t.Errorf("with secretsAccess.namespaces={team-a}, %s must read Secrets in team-a only", sa)
	}

	cm, err := cp.Kube.CoreV1().ConfigMaps("cert-manager").Get(context.Background(), release+"-cert-manager-webhook-exec-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	installed, err := solver.ParseConfig([]byte(cm.Data["config.yaml"]), readmeDefaults, anyPath)
	if err != nil {
		t.Fatalf("the installed solver config does not load: %v", err)
	}

	required := requiredVariables(t, filepath.Join(testbed.RepoRoot(t), "examples", "nsupdate.sh"))
	readmeIssuer(t, kubectl, installed, "Issuer", readmeBlock(t, readmeIssuerPrefix), required)
	// The ClusterIssuer's RAW program comes with the README's values-raw.yaml:
	// until then the chart's admission policy refuses it at apply time.
	refusal := ` denied request: issuer config: program "nsupdate-raw" is not configured; choose one of: nsupdate`
	if out, err := applyDryRun(t, kubectl, configurationBlock(t, clusterIssuerPrefix)); err == nil || !strings.HasSuffix(out, refusal) {
		t.Errorf("the README's ClusterIssuer before values-raw.yaml: %v: %s\nwant the admission policy's refusal:%s", err, out, refusal)
	}
	valuesRaw := filepath.Join(t.TempDir(), "values-raw.yaml")
	if err := os.WriteFile(valuesRaw, []byte(configurationBlock(t, "# values-raw.yaml")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := helm(t, "upgrade", release, chartDir(t), "--namespace", "cert-manager", "--reuse-values", "-f", valuesRaw, "--kubeconfig", kubeconfig); err != nil {
		t.Fatalf("helm upgrade with the README's values-raw.yaml: %v", err)
	}
	cm, err = cp.Kube.CoreV1().ConfigMaps("cert-manager").Get(context.Background(), release+"-cert-manager-webhook-exec-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if installed, err = solver.ParseConfig([]byte(cm.Data["config.yaml"]), readmeDefaults, anyPath); err != nil {
		t.Fatalf("the solver config with values-raw.yaml does not load: %v", err)
	}
	// The upgraded policy reaches the API server's admission a moment later.
	waitVerdict(t, "the admission policy to admit the README's ClusterIssuer", func() bool {
		_, err := applyDryRun(t, kubectl, configurationBlock(t, clusterIssuerPrefix))
		return err == nil
	})
	readmeIssuer(t, kubectl, installed, "ClusterIssuer", configurationBlock(t, clusterIssuerPrefix), required)
	readmeIssuer(t, kubectl, installed, "Issuer", readmeBlock(t, readmeIssuerPrefix), required)
}

// readmeIssuer checks the documented issuer of kind in manifest (a copyable
// block of the README or docs/configuration.md) against the installed solver config: the API server takes it, and
// it fills, from the Secret beside it, every variable the program requires
// and only variables the program allows.
func readmeIssuer(t *testing.T, kubectl func(*testing.T, ...string) (string, error), installed *solver.Config, kind, manifest string, required []string) {
	t.Helper()
	if out, err := applyDryRun(t, kubectl, manifest); err != nil {
		t.Fatalf("the documented %s: %v: %s", kind, err, out)
	}
	var secret corev1.Secret
	var issuer cmapi.ClusterIssuer // an Issuer's fields are the same
	for _, doc := range strings.Split(manifest, "\n---\n") {
		target := any(&issuer)
		if strings.Contains(doc, "\nkind: Secret\n") {
			target = &secret
		}
		if err := yaml.UnmarshalStrict([]byte(doc), target); err != nil {
			t.Fatalf("the documented %s block: %v", kind, err)
		}
	}
	if issuer.Kind != kind {
		t.Fatalf("the README's block holds a %q, want a %s", issuer.Kind, kind)
	}
	webhook := issuer.Spec.ACME.Solvers[0].DNS01.Webhook
	if webhook.GroupName != "acme.example.com" || webhook.SolverName != "exec" {
		t.Errorf("the documented %s names group %q, solver %q", kind, webhook.GroupName, webhook.SolverName)
	}
	ic, err := solver.ParseIssuerConfig(webhook.Config.Raw)
	if err != nil {
		t.Fatalf("the documented %s config: %v", kind, err)
	}
	program := installed.Programs[ic.Program]
	if program == nil {
		t.Fatalf("the documented %s names program %q; the chart installs %v", kind, ic.Program, installed.ProgramNames())
	}
	for name, source := range ic.Env {
		if !slices.Contains(program.SecretEnv, name) {
			t.Errorf("the documented %s sets %s, which the installed program %q does not allow (secretEnv %v)", kind, name, ic.Program, program.SecretEnv)
		}
		if ref := source.SecretKeyRef; ref.Name != secret.Name || secret.StringData[ref.Key] == "" {
			t.Errorf("the documented %s reads %s from Secret %s key %q, which the Secret beside it (%s) does not fill", kind, name, ref.Name, ref.Key, secret.Name)
		}
	}
	for _, name := range required {
		if _, ok := ic.Env[name]; !ok {
			t.Errorf("the documented %s does not set %s, which %s requires", kind, name, program.Path)
		}
	}
}

// requiredVariables lists the variables a shell script requires, by its
// `: "${NAME:?...}"` lines.
func requiredVariables(t *testing.T, script string) []string {
	t.Helper()
	data, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, `: "${`); ok {
			if name, _, ok := strings.Cut(rest, ":?"); ok {
				names = append(names, name)
			}
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s requires no variable by a `: \"${NAME:?` line", script)
	}
	return names
}

// applyDryRun submits manifest to the API server without creating it.
func applyDryRun(t *testing.T, kubectl func(*testing.T, ...string) (string, error), manifest string) (string, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(file, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	return kubectl(t, "apply", "--dry-run=server", "-f", file)
}
