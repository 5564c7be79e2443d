//go:build integration

package integration

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmwebhook "github.com/cert-manager/cert-manager/pkg/issuer/acme/dns/webhook"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// TestMisnamedSolver pins what cert-manager's own webhook client reports, as
// a Challenge's status, when an Issuer names this webhook wrongly: a group no
// APIService serves (misspelt, or in another case), or a solverName the
// webhook does not serve (in any case: client-go asks for it in lower case).
// The call never reaches the solver, so the README's troubleshooting and the
// admission policy quote this text; and what it reports while the webhook is
// down.
func TestMisnamedSolver(t *testing.T) {
	const group = "acme.example.com"
	cp := testbed.StartControlPlane(t, testbed.ControlPlaneOptions{Aggregation: true})
	root := testbed.RepoRoot(t)
	dir := t.TempDir()
	config := testbed.WriteFile(t, dir, "config.yaml", []byte("programs:\n- name: p\n  path: "+filepath.Join(root, "testdata", "programs", "record-argv.sh")+"\n"))
	w := testbed.StartWebhook(t, cp, testbed.BuildWebhook(t, root, dir), group, "cert-manager", dir, testbed.WebhookEnv{Config: []string{"EXEC_CONFIG=" + config}})
	stop := make(chan struct{})
	defer close(stop)
	var client cmwebhook.Webhook
	if err := client.Initialize(cp.Config, stop); err != nil {
		t.Fatal(err)
	}
	// present calls the solver as cert-manager does for a Challenge.
	present := func(groupName, solverName string) error {
		solver, err := json.Marshal(cmacme.ACMEIssuerDNS01ProviderWebhook{
			GroupName: groupName, SolverName: solverName,
			Config: &apiextensionsv1.JSON{Raw: []byte(`{"program": "nope"}`)},
		})
		if err != nil {
			t.Fatal(err)
		}
		return client.Present(&whapi.ChallengeRequest{
			Type: "dns-01", DNSName: "app.example.com", Key: "k", ResourceNamespace: "team-a",
			ResolvedFQDN: "_acme-challenge.app.example.com.", ResolvedZone: "example.com.",
			Config: &apiextensionsv1.JSON{Raw: solver},
		})
	}
	const refused = `issuer config: program "nope" is not configured; choose one of: p`
	tests := map[string]struct{ groupName, solverName, want string }{
		"groupName misspelt":      {"acme.exmaple.com", "exec", `the server could not find the requested resource (post exec.acme.exmaple.com)`},
		"groupName in upper case": {"ACME.example.com", "exec", `the server could not find the requested resource (post exec.ACME.example.com)`},
		// The webhook's own 404 carries a status, which says no more.
		"solverName misspelt":         {group, "exce", `the server could not find the requested resource`},
		"solverName the chart's name": {group, "cert-manager-webhook-exec", `the server could not find the requested resource`},
		// The call reaches the solver, which refuses the config: client-go
		// puts a resource name in lower case.
		"solverName Exec": {group, "Exec", refused},
		"both right":      {group, "exec", refused},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := errString(present(tc.groupName, tc.solverName)); got != tc.want {
				t.Errorf("cert-manager reports\n  %s\nwant\n  %s", got, tc.want)
			}
		})
	}

	// Named right, with the webhook down (a Pod crash-looping on its config):
	// the APIService is there but unavailable.
	w.Stop()
	const unavailable = `the server is currently unable to handle the request (post exec.acme.example.com)`
	got := ""
	for deadline := time.Now().Add(time.Minute); got != unavailable && time.Now().Before(deadline); time.Sleep(time.Second) {
		got = errString(present(group, "exec"))
	}
	if got != unavailable {
		t.Errorf("with the webhook down, cert-manager reports\n  %s\nwant\n  %s", got, unavailable)
	}
}
