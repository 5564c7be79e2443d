//go:build integration

package integration

import (
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// TestRefusedConfigAtStart checks what each of the webhook's two processes
// does with a solver config it refuses when it starts: it exits, and its log
// holds one error line saying why, so that its container crash-loops (a
// rollout stalls while the old Pods serve; helm --wait fails). Serving
// instead, not Ready, would answer nothing: a Pod that is not Ready gets no
// calls. Only the runner sees a program missing from its file system; the
// webhook, which waits for it, gives up within the chart's probe windows,
// saying where to look.
func TestRefusedConfigAtStart(t *testing.T) {
	cp := testbed.StartControlPlane(t, testbed.ControlPlaneOptions{Aggregation: true})
	dir := t.TempDir()
	bin := testbed.BuildWebhook(t, testbed.RepoRoot(t), dir)
	kubeconfig := testbed.WriteKubeconfig(t, cp.UserConfig(t, "exec-webhook", "system:masters"), filepath.Join(dir, "kubeconfig"))
	const (
		missing = "/etc/cert-manager-webhook-exec/scripts/my-dns"
		exits   = " (its container restarts until the config is fixed)"
	)
	tests := map[string]struct {
		config string
		// runner and webhook are each process's one error line without
		// klog's header; CONFIG and SOCKET stand for the paths.
		runner  string
		webhook string
	}{
		"not valid YAML": {
			config:  "programs: [",
			runner:  `"INVALID solver config; the runner exits` + exits + `" err="solver config CONFIG: not valid YAML: yaml: line 1: did not find expected node content" logger="runner"`,
			webhook: `PostStartHook "solver-exec-init" failed: exec solver: INVALID solver config; the webhook exits` + exits + `: solver config CONFIG: not valid YAML: yaml: line 1: did not find expected node content`,
		},
		"a program missing from the runner's file system": {
			config: "programs:\n- name: my-dns\n  path: " + missing + "\n",
			runner: `"INVALID solver config; the runner exits` + exits + `" err="solver config CONFIG: programs[0] (\"my-dns\"): path: ` + missing + ` does not exist" logger="runner"`,
			webhook: `PostStartHook "solver-exec-init" failed: exec solver: no runner after 20s: the runner does not answer on SOCKET: dial unix SOCKET: connect: no such file or directory; ` +
				`if the runner exits at start, its log says why (kubectl logs webhook-pod -c runner): an INVALID solver config, such as a program missing from its file system`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			logDir := t.TempDir()
			config := testbed.WriteFile(t, logDir, "config.yaml", []byte(tc.config))
			socket := filepath.Join(t.TempDir(), "runner.sock")
			env := []string{"EXEC_CONFIG=" + config, "EXEC_RUNNER_SOCKET=" + socket}
			runner := testbed.StartProcess(t, logDir, "runner", env, bin, "runner")
			webhook := testbed.StartProcess(t, logDir, "webhook", append(env, "GROUP_NAME=acme.example.com", "POD_NAME=webhook-pod"), bin,
				"--kubeconfig="+kubeconfig, "--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig,
				"--bind-address=127.0.0.1", "--secure-port="+freePort(t), "--cert-dir="+t.TempDir())
			expand := strings.NewReplacer("CONFIG", config, "SOCKET", socket)

			if !runner.WaitExit(30 * time.Second) {
				t.Fatalf("the runner still runs after 30s:\n%s", runner.Log())
			}
			checkErrorLines(t, runner, expand.Replace(tc.runner))
			if !webhook.WaitExit(time.Minute) {
				t.Fatalf("the webhook still runs after a minute:\n%s", webhook.Log())
			}
			checkErrorLines(t, webhook, expand.Replace(tc.webhook))
		})
	}
}

// klogError matches klog's header of an error or fatal line.
var klogError = regexp.MustCompile(`^[EF]\d{4} [\d:.]+ +\d+ [^ ]+\] `)

// checkErrorLines requires p's log to hold exactly one error or fatal line,
// want after klog's header.
func checkErrorLines(t *testing.T, p *testbed.Process, want string) {
	t.Helper()
	var got []string
	for _, line := range strings.Split(p.Log(), "\n") {
		if loc := klogError.FindStringIndex(line); loc != nil {
			got = append(got, line[loc[1]:])
		}
	}
	if len(got) != 1 || got[0] != want {
		t.Errorf("%s logged the error lines\n  %s\nwant one\n  %s\nlog:\n%s", p.Name, strings.Join(got, "\n  "), want, p.Log())
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close() //nolint:errcheck // only its port was wanted.
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
