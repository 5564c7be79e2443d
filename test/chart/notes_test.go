//go:build integration

package chart

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/solver"
)

// notesWant is what an install's NOTES must print: the kind and namespace of
// the issuer (empty kind: no manifest, as with a ConfigMap of the admin's),
// and lines naming each program's policy.
type notesWant struct {
	kind, namespace string
	lines           []string
}

// checkNotes reads the manifest the NOTES of an install print (helm's
// output) as an operator copies it, and checks that it works with that
// install: the issuer's Secret is the one it reads, in a namespace whose
// Secrets the webhook may read and that the program admits, it fills every
// variable the program takes from Secrets, and the API server (with the
// release's admission policy) accepts it.
func checkNotes(t *testing.T, cp *testbed.ControlPlane, kubectl func(*testing.T, ...string) (string, error), release, group, helmOutput string, want notesWant) {
	t.Helper()
	_, notes, _ := strings.Cut(helmOutput, "\nNOTES:\n")
	if first := `cert-manager-webhook-exec is installed: solver "exec" of API group ` + group + ".\n"; !strings.HasPrefix(notes, first) {
		t.Errorf("NOTES do not start with %q:\n%s", first, notes)
	}
	for _, line := range want.lines {
		if !strings.Contains(notes, line) {
			t.Errorf("NOTES lack %q:\n%s", line, notes)
		}
	}
	if want.kind == "" {
		if strings.Contains(notes, "\napiVersion: ") {
			t.Errorf("NOTES print a manifest, want none:\n%s", notes)
		}
		return
	}
	manifest := testbed.NotesManifest(t, helmOutput)
	var secret corev1.Secret
	var issuer cmapi.ClusterIssuer // an Issuer's fields are the same
	for _, doc := range strings.Split(manifest, "\n---\n") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("NOTES manifest: %v\n%s", err, doc)
		}
		var err error
		switch meta.Kind {
		case "Secret":
			err = yaml.UnmarshalStrict([]byte(doc), &secret)
		case "Issuer", "ClusterIssuer":
			err = yaml.UnmarshalStrict([]byte(doc), &issuer)
		default:
			t.Fatalf("NOTES manifest holds a %q:\n%s", meta.Kind, manifest)
		}
		if err != nil {
			t.Fatalf("NOTES %s: %v\n%s", meta.Kind, err, doc)
		}
	}
	if issuer.Kind != want.kind || issuer.Namespace != nsOf(want) || secret.Name != "" && secret.Namespace != want.namespace {
		t.Errorf("NOTES print a %s in %q with its Secret in %q, want a %s with its Secret in %q:\n%s",
			issuer.Kind, issuer.Namespace, secret.Namespace, want.kind, want.namespace, manifest)
	}

	cm, err := cp.Kube.CoreV1().ConfigMaps(releaseNamespace).Get(context.Background(), release+"-cert-manager-webhook-exec-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	installed, err := solver.ParseConfig([]byte(cm.Data["config.yaml"]), readmeDefaults, anyPath)
	if err != nil {
		t.Fatalf("the installed solver config does not load: %v", err)
	}
	webhook := issuer.Spec.ACME.Solvers[0].DNS01.Webhook
	if webhook.GroupName != group || webhook.SolverName != "exec" {
		t.Errorf("NOTES Issuer names group %q, solver %q; want %q, exec", webhook.GroupName, webhook.SolverName, group)
	}
	ic, err := solver.ParseIssuerConfig(webhook.Config.Raw)
	if err != nil {
		t.Fatalf("NOTES Issuer config: %v", err)
	}
	program := installed.Programs[ic.Program]
	if program == nil {
		t.Fatalf("NOTES Issuer names program %q; the install has %v", ic.Program, installed.ProgramNames())
	}
	if printed := secret.Name != ""; printed != (len(program.SecretEnv) > 0) {
		t.Errorf("NOTES print a Secret: %v; program %q takes variables from Secrets: %v", printed, program.Name, program.SecretEnv)
	}
	// The namespace the issuer's requests carry, whose Secrets they read.
	requests := issuer.Namespace
	if issuer.Kind == "ClusterIssuer" {
		requests = want.namespace
	}
	if len(program.AllowedNamespaces) > 0 && !slices.Contains(program.AllowedNamespaces, requests) {
		t.Errorf("NOTES Issuer's requests come from %s, which program %q does not allow (%v)", requests, program.Name, program.AllowedNamespaces)
	}
	var filled []string
	for name, source := range ic.Env {
		filled = append(filled, name)
		ref := source.SecretKeyRef
		if _, ok := secret.StringData[ref.Key]; ref.Name != secret.Name || !ok {
			t.Errorf("NOTES Issuer reads %s from Secret %s key %q, which the printed Secret %s (keys %v) does not hold",
				name, ref.Name, ref.Key, secret.Name, slices.Sorted(maps.Keys(secret.StringData)))
		}
	}
	slices.Sort(filled)
	if all := slices.Sorted(slices.Values(program.SecretEnv)); !slices.Equal(filled, all) {
		t.Errorf("NOTES Issuer fills %v, want every secretEnv variable of %q: %v", filled, program.Name, all)
	}
	sa := "system:serviceaccount:" + releaseNamespace + ":" + release + "-cert-manager-webhook-exec"
	if len(program.SecretEnv) > 0 && !canI(t, cp, sa, "get secrets -n "+requests) {
		t.Errorf("NOTES Issuer reads Secrets in %s, where the webhook may not read them", requests)
	}
	file := filepath.Join(t.TempDir(), "notes.yaml")
	if err := os.WriteFile(file, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := kubectl(t, "apply", "--dry-run=server", "-f", file); err != nil || strings.Contains(out, "Warning") {
		t.Errorf("the API server does not take the NOTES manifest as it is: %v: %s", err, out)
	}
}

// nsOf is the issuer's own namespace: none for a ClusterIssuer.
func nsOf(want notesWant) string {
	if want.kind == "ClusterIssuer" {
		return ""
	}
	return want.namespace
}

// readmeAdminCredential installs the README's example of an admin's
// credential (its helm command and values-corp-dns.yaml) and checks that its
// NOTES print an Issuer for it and say how extraEnv fills its passEnv: from
// the file, from the README's other way (the variable from a secretKeyRef),
// and neither.
func readmeAdminCredential(t *testing.T, cp *testbed.ControlPlane, kubeconfig string, kubectl func(*testing.T, ...string) (string, error)) {
	commands := testbed.ShellCommands(t, readmeBlock(t, "kubectl --namespace cert-manager create configmap dns-programs "))
	install := commands[len(commands)-1]
	if len(install) < 3 || install[0] != "helm" || install[1] != "install" {
		t.Fatalf("the README's block ends with %q, want helm install", install)
	}
	release := install[2]
	values := filepath.Join(t.TempDir(), "values-corp-dns.yaml")
	if err := os.WriteFile(values, []byte(readmeBlock(t, "# values-corp-dns.yaml")), 0o600); err != nil {
		t.Fatal(err)
	}
	otherWay := filepath.Join(t.TempDir(), "other-way.yaml")
	if err := os.WriteFile(otherWay, []byte(configurationBlock(t, "extraEnv:\n  - name: RFC2136_TSIG_SECRET\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, word := range testbed.WithChartDir(t, install[1:], chartDir(t)) {
		args = append(args, strings.Replace(word, "values-corp-dns.yaml", values, 1))
	}
	var group string
	for i, arg := range args {
		if g, ok := strings.CutPrefix(arg, "groupName="); ok && args[i-1] == "--set" {
			group = g
		}
	}
	steps := []struct {
		helm []string
		line string
	}{
		{args, "      passEnv RFC2136_TSIG_SECRET: the admin's, from the file extraEnv RFC2136_TSIG_SECRET_FILE names, read at each run\n"},
		{[]string{"upgrade", release, chartDir(t), "--namespace", releaseNamespace, "--reuse-values", "-f", otherWay},
			"      passEnv RFC2136_TSIG_SECRET: the admin's, from extraEnv RFC2136_TSIG_SECRET (a change needs a restart of the Pod)\n"},
		{[]string{"upgrade", release, chartDir(t), "--namespace", releaseNamespace, "--reuse-values", "--set-json", "extraEnv=[]"},
			"      passEnv RFC2136_TSIG_SECRET: WARNING: extraEnv sets neither RFC2136_TSIG_SECRET nor RFC2136_TSIG_SECRET_FILE, so the program runs without it\n"},
	}
	for _, step := range steps {
		out, err := helm(t, append(step.helm, "--kubeconfig", kubeconfig)...)
		if err != nil {
			t.Fatalf("helm %s: %v", strings.Join(step.helm, " "), err)
		}
		checkNotes(t, cp, kubectl, release, group, out, notesWant{kind: "Issuer", namespace: "team-a", lines: []string{
			"  - corp-dns (default mode; Issuers that name no program get it)\n      from the Issuer's Secret: nothing\n" +
				"      allowedNamespaces: team-a\n      allowedDomains: corp.example\n", step.line}})
	}
	if _, err := helm(t, "uninstall", release, "--namespace", releaseNamespace, "--kubeconfig", kubeconfig); err != nil {
		t.Fatal(err)
	}
}
