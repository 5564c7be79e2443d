//go:build integration

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// TestExamplePrograms runs `check` on each example program against a real
// server: PowerDNS's HTTP API, an acme.sh-style hook through the adapter, and
// a lego rfc2136 script configured only by lego's variables (EXEC_PATH).
func TestExamplePrograms(t *testing.T) {
	root := testbed.RepoRoot(t)
	bind := testbed.StartBIND(t, zone)
	pdns := testbed.StartPowerDNS(t, "example.net", t.TempDir())
	dir := testbed.Render(t, filepath.Join(root, "testdata", "examples"), map[string]string{
		"REPO": root, "BIND_PORT": strconv.Itoa(bind.Port), "TSIG_KEY_NAME": bind.KeyName, "PDNS_API_URL": pdns.APIURL,
	})
	bin := testbed.BuildWebhook(t, root, t.TempDir())
	config := filepath.Join(dir, "config.yaml")
	tests := map[string]struct {
		args   []string
		env    []string
		secret string
	}{
		"powerdns-api.sh": {
			args:   []string{"--config", config, "--program", "powerdns", "--domain", "www.example.net", "--nameserver", pdns.DNSAddr},
			env:    []string{"PDNS_API_KEY=" + pdns.APIKey},
			secret: pdns.APIKey,
		},
		"acme-sh-dnsapi.sh": {
			args:   []string{"--config", config, "--program", "acme-sh", "--domain", "acmesh.example.com", "--nameserver", bind.Addr},
			env:    []string{"TESTBIND_KEY=" + bind.KeySecret},
			secret: bind.KeySecret,
		},
		"lego-rfc2136.sh with lego's variables": {
			args: []string{"--domain", "lego.example.com", "--nameserver", bind.Addr},
			env: []string{
				"EXEC_PATH=" + filepath.Join(root, "examples", "lego-rfc2136.sh"),
				"EXEC_PROPAGATION_TIMEOUT=10", "EXEC_POLLING_INTERVAL=1",
				"RFC2136_NAMESERVER=" + bind.Addr, "RFC2136_TSIG_KEY=" + bind.KeyName, "RFC2136_TSIG_SECRET=" + bind.KeySecret,
			},
			secret: bind.KeySecret,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"check"}, tc.args...)...)
			cmd.Env = append(withoutExecVars(os.Environ()), tc.env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("check failed: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "PASS: program") {
				t.Errorf("no PASS in:\n%s", out)
			}
			if strings.Contains(string(out), tc.secret) {
				t.Errorf("the secret appears in the report:\n%s", out)
			}
		})
	}
}

// withoutExecVars drops the webhook's own settings from the environment.
func withoutExecVars(environ []string) []string {
	var out []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "EXEC_") {
			out = append(out, kv)
		}
	}
	return out
}
