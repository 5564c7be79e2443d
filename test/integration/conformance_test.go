//go:build integration

// Package integration runs the solver against real parts: cert-manager's
// conformance suite, a real kube-apiserver and etcd, and BIND9.
package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	acmetest "github.com/cert-manager/cert-manager/test/acme"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/solver"
)

const zone = "example.com."

// renderSolverConfig writes the conformance solver config for bind and
// returns getenv for a solver that reads it.
func renderSolverConfig(t *testing.T, bind *testbed.BIND) (vars map[string]string, getenv func(string) string) {
	t.Helper()
	vars = map[string]string{
		"REPO":          testbed.RepoRoot(t),
		"BIND_PORT":     strconv.Itoa(bind.Port),
		"TSIG_KEY_NAME": bind.KeyName,
		"TSIG_SECRET":   bind.KeySecret,
	}
	dir := testbed.Render(t, filepath.Join(testbed.RepoRoot(t), "testdata", "conformance", "solver"), vars)
	env := map[string]string{solver.EnvConfig: filepath.Join(dir, "config.yaml")}
	return vars, func(name string) string { return env[name] }
}

// TestConformance runs cert-manager's DNS-01 webhook conformance suite in
// strict mode (two values at one name; deleting one keeps the other) against
// BIND, once with admin-fixed credentials and once with the TSIG secret read
// from the Issuer's own Secret.
func TestConformance(t *testing.T) {
	bind := testbed.StartBIND(t, zone)
	vars, getenv := renderSolverConfig(t, bind)
	for _, variant := range []string{"fixed-credentials", "issuer-secret"} {
		t.Run(variant, func(t *testing.T) {
			manifests := testbed.Render(t, filepath.Join(testbed.RepoRoot(t), "testdata", "conformance", variant), vars)
			fixture := acmetest.NewFixture(solver.New(solver.WithGetenv(getenv)),
				acmetest.SetResolvedZone(zone),
				acmetest.SetResolvedFQDN("_acme-challenge.conformance."+zone),
				acmetest.SetDNSName("conformance.example.com"),
				acmetest.SetDNSServer(bind.Addr),
				acmetest.SetUseAuthoritative(false),
				acmetest.SetStrict(true),
				acmetest.SetManifestPath(manifests),
				acmetest.SetPollInterval(200*time.Millisecond),
				acmetest.SetPropagationLimit(30*time.Second),
			)
			fixture.RunConformance(t)
		})
	}
	if t.Failed() {
		t.Logf("named log:\n%s", bind.Log())
	}
	if leftover := bind.TXT(t, "_acme-challenge.conformance."+zone); len(leftover) != 0 {
		t.Errorf("records left behind: %q", leftover)
	}
}

func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_CONTROLPLANE_START_TIMEOUT") == "" {
		// A loaded 2-core machine starts kube-apiserver slower than envtest's 20s default.
		_ = os.Setenv("KUBEBUILDER_CONTROLPLANE_START_TIMEOUT", "120s")
	}
	// cert-manager's conformance fixture starts envtest itself.
	testbed.QuietControllerRuntime()
	os.Exit(m.Run())
}
