//go:build integration

package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// TestCheckCommand runs `cert-manager-webhook-exec check` against BIND: a
// correct program passes in both modes; one whose cleanup deletes every
// record at the name fails with the hint for that mistake. The TSIG secret
// comes from the environment, as secretEnv values do for `check`.
func TestCheckCommand(t *testing.T) {
	root := testbed.RepoRoot(t)
	bind := testbed.StartBIND(t, zone)
	dir := testbed.Render(t, filepath.Join(root, "testdata", "check"), map[string]string{
		"REPO": root, "BIND_PORT": strconv.Itoa(bind.Port), "TSIG_KEY_NAME": bind.KeyName,
	})
	bin := testbed.BuildWebhook(t, root, t.TempDir())
	tests := map[string]struct {
		program   string
		wantExit  int
		want      []string
		namespace string
	}{
		"default mode": {program: "nsupdate", wantExit: 0, want: []string{
			"program \"nsupdate\": " + root + "/examples/nsupdate.sh (default mode, timeout 30s)",
			"$ " + root + "/examples/nsupdate.sh present _acme-challenge.check.example.com. ",
			"propagation timeout 10s (program), interval 200ms (program)",
			"only the cleaned-up value is gone: ok",
			"cleanup of a value already gone: ok (idempotent)",
			"PASS: program \"nsupdate\" presents and cleans up _acme-challenge.check.example.com. as cert-manager needs",
		}},
		"RAW mode": {program: "nsupdate-raw", wantExit: 0, want: []string{
			"$ " + root + "/examples/nsupdate.sh present -- check.example.com ",
			"PASS: program \"nsupdate-raw\"",
		}},
		"cleanup deletes every record": {program: "deletes-all", wantExit: 1, want: []string{
			"`timeout` not asked: the webhook asks it only of programs with propagation.wait: true (lego never does)\n" +
				"  propagation timeout 10s (solver config), interval 200ms (solver config)\n",
			"FAIL: cleanup of one value also removed the other",
			"hint: cleanup deletes every TXT record at the name: delete only the record with the given value",
		}},
		"policy admits the namespace and domain": {program: "team-a-only", namespace: "team-a", wantExit: 0, want: []string{
			`policy of program "team-a-only": namespaces: team-a; domains: check.example.com`,
			`PASS: program "team-a-only"`,
		}},
		"policy refuses another namespace": {program: "team-a-only", namespace: "team-b", wantExit: 1, want: []string{
			`policy of program "team-a-only": namespaces: team-a; domains: check.example.com`,
			`program "team-a-only" may not be used from namespace "team-b"; ask the cluster admin to add it to the program's allowedNamespaces`,
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(bin, "check", "--config", filepath.Join(dir, "config.yaml"), "--program", tc.program,
				"--domain", "check.example.com", "--nameserver", bind.Addr)
			if tc.namespace != "" {
				cmd.Args = append(cmd.Args, "--namespace", tc.namespace)
			}
			cmd.Env = append(os.Environ(), "TSIG_SECRET="+bind.KeySecret)
			out, err := cmd.CombinedOutput()
			exit := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				exit = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if exit != tc.wantExit {
				t.Errorf("exit status %d, want %d", exit, tc.wantExit)
			}
			for _, want := range tc.want {
				if !strings.Contains(string(out), want) {
					t.Errorf("output lacks %q", want)
				}
			}
			if strings.Contains(string(out), bind.KeySecret) {
				t.Error("the TSIG secret appears in the report")
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
	if left := bind.TXT(t, "_acme-challenge.check.example.com."); len(left) != 0 {
		t.Errorf("records left behind: %q", left)
	}
}

// TestWebhookNeedsGroupName: the server refuses to start without GROUP_NAME.
func TestWebhookNeedsGroupName(t *testing.T) {
	cmd := exec.Command(testbed.BuildWebhook(t, testbed.RepoRoot(t), t.TempDir()))
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("exit: %v", err)
	}
	want := "GROUP_NAME must be set to the API group the webhook serves (the Issuer's webhook.groupName), e.g. acme.example.com\n"
	if string(out) != want {
		t.Errorf("output = %q, want %q", out, want)
	}
}
