package runner

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// startRunner starts the test binary as a runner process serving socket with
// programs; the admin's API_TOKEN is in its environment only.
func startRunner(t testing.TB, socket string, programs map[string]Program) *exec.Cmd {
	t.Helper()
	table, err := json.Marshal(programs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envServeHelper+"="+socket, envHelperPrograms+"="+string(table), "API_TOKEN=tok-SECRET-42")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func dialRunner(t testing.TB, socket string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, err := Dial(ctx, socket, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// TestChannel runs invocations in a runner process, as the webhook does in the
// chart: results and errors arrive as a run in the webhook's process would
// give them, the admin's value comes from the runner's environment and is
// redacted there, and the runner refuses what its config does not allow.
func TestChannel(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "runner.sock")
	argvLog := filepath.Join(dir, "argv")
	startRunner(t, socket, map[string]Program{
		"recorder": {Name: "recorder", Path: testProgram(t, "record-argv.sh"), Env: map[string]string{"ARGV_LOG": argvLog}, SecretEnv: []string{"TSIG_SECRET"}},
		"fail":     {Name: "fail", Path: testProgram(t, "fail.sh"), Env: map[string]string{"FAIL_STATUS": "7"}, PassEnv: []string{"API_TOKEN"}},
		"dial":     {Name: "dial", Path: testProgram(t, "dial-runner.sh"), Env: map[string]string{"RUNNER_SOCKET": socket}},
	})
	client := dialRunner(t, socket)
	defer client.Close() //nolint:errcheck // the runner ends with the test.

	present := func(program string, secrets map[string]string) Invocation {
		return Invocation{Program: program, Action: ActionPresent, Args: []string{"present", "_acme-challenge.example.com.", "value"}, Secrets: secrets,
			Context: Context{DNSName: "example.com", ResolvedFQDN: "_acme-challenge.example.com.", ResolvedZone: "example.com.", ResourceNamespace: "team-a"}}
	}
	tests := map[string]struct {
		inv        Invocation
		wantErr    string
		wantStdout []string
	}{
		"present with a tenant's value": {inv: present("recorder", map[string]string{"TSIG_SECRET": "tenant-value"})},
		"failing program, the admin's value redacted in the runner": {inv: present("fail", nil),
			wantErr:    `program "fail" present exited with status 7: warning: retrying | error: API said 403 for token [REDACTED]`,
			wantStdout: []string{"calling the DNS API for _acme-challenge.example.com."}},
		"program not in the runner's config": {inv: present("nope", nil),
			wantErr: `the runner has no program "nope" in its solver config (was the config changed a moment ago? cert-manager will retry)`},
		"variable the program does not allow": {inv: present("recorder", map[string]string{"LD_PRELOAD": "/tmp/x.so"}),
			wantErr: `the runner refuses variable LD_PRELOAD for program "recorder": not in its secretEnv`},
		"argv that does not start with the action": {inv: Invocation{Program: "recorder", Action: ActionPresent, Args: []string{"cleanup"}},
			wantErr: `the runner refuses program "recorder" present: its first argument must be the action`},
		"a run that asks the runner for runs": {inv: present("dial", nil), wantStdout: []string{"could not connect to the runner"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := client.Run(ctx, tc.inv)
			if got := errString(err); got != tc.wantErr {
				t.Errorf("error = %q, want %q", got, tc.wantErr)
			}
			if tc.wantStdout != nil && !slices.Equal(res.Stdout, tc.wantStdout) {
				t.Errorf("stdout = %q, want %q", res.Stdout, tc.wantStdout)
			}
		})
	}
	var runErr *RunError
	if _, err := client.Run(context.Background(), present("fail", nil)); !errors.As(err, &runErr) || runErr.ExitCode != 7 {
		t.Errorf("a failed run's error arrives as %#v, want a *RunError with exit code 7", err)
	}
	if data, err := os.ReadFile(argvLog); err != nil || !strings.Contains(string(data), "present\x00_acme-challenge.example.com.\x00value\x00") {
		t.Errorf("the program did not run with its argv: %q, %v", data, err)
	}

	// The socket is gone once the webhook connected: no second client. One
	// connect, not Dial, which retries until its deadline and then reports
	// the deadline rather than the missing socket.
	if conn, err := net.Dial("unix", socket); !errors.Is(err, syscall.ENOENT) {
		if conn != nil {
			_ = conn.Close()
		}
		t.Errorf("a second client: %v, want the socket gone (ENOENT)", err)
	}
}

// TestChannelEndStopsRunner closes the webhook's connection while a program
// runs: the run's processes are killed and the runner exits.
func TestChannelEndStopsRunner(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "runner.sock")
	pidLog := filepath.Join(dir, "pids")
	cmd := startRunner(t, socket, map[string]Program{
		"hang": {Name: "hang", Path: testProgram(t, "hang.sh"), Env: map[string]string{"PID_LOG": pidLog}},
	})
	client := dialRunner(t, socket)
	go func() {
		_, _ = client.Run(context.Background(), Invocation{Program: "hang", Action: ActionPresent, Args: []string{"present"}})
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if data, _ := os.ReadFile(pidLog); len(data) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the program did not start")
		}
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("runner exited with %v, want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the runner did not stop when the webhook's connection ended")
	}
	for _, pid := range testbed.ReadPIDs(t, pidLog) {
		if !testbed.ExitsSoon(pid) {
			t.Errorf("process %d of the run outlived the runner", pid)
		}
	}
}

// TestAcceptRefusesDescendant: a process this runner started (as a run's
// would be) is refused, however it reaches the socket.
func TestAcceptRefusesDescendant(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "runner.sock")
	logs := &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	accepted := make(chan error, 1)
	go func() {
		conn, err := AcceptWebhook(ctx, socket, logs.logger())
		if conn != nil {
			_ = conn.Close()
		}
		accepted <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(socket); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the runner did not listen")
		}
	}
	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(), envDialHelper+"="+socket)
	out, err := child.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "the runner closed the connection" {
		t.Errorf("a descendant's connection: %q, want it closed", got)
	}
	if !strings.Contains(logs.String(), "is a process a run started") {
		t.Errorf("the refusal was not logged:\n%s", logs)
	}
	cancel()
	if err := <-accepted; !errors.Is(err, context.Canceled) {
		t.Errorf("AcceptWebhook = %v, want it still waiting for the webhook until cancelled", err)
	}
}
