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

// anyPath accepts every program path: the README's paths are in a cluster's image.
func anyPath(string) error { return nil }

var readmeDefaults = solver.Propagation{Timeout: time.Minute, Interval: 2 * time.Second}

// TestReadmeSolverConfig checks that the README's configuration reference is a
// valid solver config meaning what its comments say, and that its error
// example is the error the solver gives.
func TestReadmeSolverConfig(t *testing.T) {
	reference := readmeBlock(t, "# "+solver.DefaultConfigPath)
	cfg, err := solver.ParseConfig([]byte(reference), readmeDefaults, anyPath)
	if err != nil {
		t.Fatalf("the README's config reference does not load: %v", err)
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
	want := strings.TrimSpace(readmeBlock(t, "solver config "))
	if got := "solver config " + solver.DefaultConfigPath + ": " + err.Error(); got != want {
		t.Errorf("error example:\n got: %s\nwant: %s (README)", got, want)
	}
}

// readmeInstall runs the README's `helm install` command against the test API
// server, then applies its Issuer and ClusterIssuer with server-side
// validation and checks that the Issuer works with the installed config.
func readmeInstall(t *testing.T, cp *testbed.ControlPlane, kubeconfig string, kubectl func(*testing.T, ...string) (string, error)) {
	command := strings.ReplaceAll(readmeBlock(t, "helm install "), "\\\n", " ")
	var args []string
	for _, word := range strings.Fields(command) {
		word = strings.Trim(word, "'")
		if strings.ContainsAny(word, `'"\`) {
			t.Fatalf("the README's helm command has quoting this test does not parse: %s", word)
		}
		args = append(args, strings.Replace(word, "./charts/cert-manager-webhook-exec", chartDir(t), 1))
	}
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

	for _, kind := range []string{"Issuer", "ClusterIssuer"} {
		manifest := readmeBlock(t, "apiVersion: cert-manager.io/v1\nkind: "+kind+"\n")
		file := filepath.Join(t.TempDir(), kind+".yaml")
		if err := os.WriteFile(file, []byte(manifest), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := kubectl(t, "apply", "--dry-run=server", "-f", file)
		if kind == "ClusterIssuer" {
			// Its RAW program is the README's own example, not the chart
			// default: the chart's admission policy refuses it at apply time.
			refusal := ` denied request: issuer config: program "lego-raw" is not configured; choose one of: nsupdate`
			if err == nil || !strings.HasSuffix(out, refusal) {
				t.Errorf("the README's ClusterIssuer: %v: %s\nwant the admission policy's refusal:%s", err, out, refusal)
			}
		} else if err != nil {
			t.Fatalf("the README's %s: %v: %s", kind, err, out)
		}
		var issuer cmapi.Issuer
		if err := yaml.Unmarshal([]byte(manifest), &issuer); err != nil {
			t.Fatal(err)
		}
		webhook := issuer.Spec.ACME.Solvers[0].DNS01.Webhook
		if webhook.GroupName != "acme.example.com" || webhook.SolverName != "exec" {
			t.Errorf("the README's %s names group %q, solver %q", kind, webhook.GroupName, webhook.SolverName)
		}
		ic, err := solver.ParseIssuerConfig(webhook.Config.Raw)
		if err != nil {
			t.Fatalf("the README's %s config: %v", kind, err)
		}
		if kind != "Issuer" {
			continue // its RAW program is the README's own example, not the chart default
		}
		program := installed.Programs[ic.Program]
		if program == nil {
			t.Fatalf("the README's Issuer names program %q; the chart installs %v", ic.Program, installed.ProgramNames())
		}
		for name := range ic.Env {
			if !slices.Contains(program.SecretEnv, name) {
				t.Errorf("the README's Issuer sets %s, which the installed program %q does not allow (secretEnv %v)", name, ic.Program, program.SecretEnv)
			}
		}
	}
}
