//go:build e2e

package e2e

import (
	"testing"
	"time"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// TestOldestCertManager backs the compatibility table's oldest cert-manager
// row: that release's controllers and CRDs issue a certificate for a name and
// its wildcard through this webhook, and the records are cleaned up. Every
// other end-to-end and node scenario runs the release go.mod requires.
func TestOldestCertManager(t *testing.T) {
	// Beside the other long scenarios: each runs its own stack on free ports.
	t.Parallel()
	root := testbed.RepoRoot(t)
	release := testbed.OldestCertManager(t, root)
	stack := testbed.StartStack(t, testbed.StackOptions{
		RepoRoot:     root,
		LogDir:       t.TempDir(),
		Zone:         "example.com",
		CertManager:  release,
		SolverConfig: func(bind *testbed.BIND) string { return testbed.NsupdateConfig(t, root, bind) },
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("=== cert-manager %s log (last 60 lines):\n%s", release.Version, testbed.Tail(stack.CertManager.Log(), 60))
			t.Logf("=== webhook log (last 60 lines):\n%s", testbed.Tail(stack.Webhook.Log(), 60))
		}
	})
	t.Logf("cert-manager %s", release.Version)

	stack.CreateIssuer(t, "team-oldest", "exec", `{"program":"nsupdate"}`)
	stack.CreateCertificate(t, "team-oldest", "oldest", cmmeta.IssuerReference{Name: "exec", Kind: "Issuer"},
		"oldest.example.com", "*.oldest.example.com")
	cert := stack.WaitCertificateReady(t, "team-oldest", "oldest", readyTimeout)
	if got, want := cert.DNSNames, []string{"oldest.example.com", "*.oldest.example.com"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("certificate names %q, want %q", got, want)
	}
	stack.WaitNoTXT(t, "_acme-challenge.oldest.example.com.", time.Minute)
}
