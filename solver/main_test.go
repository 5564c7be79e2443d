package solver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
)

// envRunnerHelper makes the test binary a runner process, as the webhook
// binary's `runner` subcommand is: see withRunnerProcess.
const envRunnerHelper = "SOLVER_TEST_RUNNER"

func TestMain(m *testing.M) {
	if os.Getenv(envRunnerHelper) == "1" {
		os.Exit(runnerHelper())
	}
	os.Exit(m.Run())
}

// runnerHelper does what the `runner` subcommand does with its solver config,
// socket and TMPDIR, without its logging and signal handling.
func runnerHelper() int {
	cfg, err := LoadRunnerConfig(os.Getenv, logr.Discard())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	conn, err := runner.AcceptWebhook(context.Background(), os.Getenv(runner.EnvSocket), logr.Discard())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	runner.Serve(conn, &runner.Local{Programs: cfg.Program, Environ: os.Environ, RunsDir: os.TempDir(), Log: logr.Discard()})
	return 0
}

// withRunnerProcess makes s run its programs as the chart's webhook does: in
// a runner process (this test binary as runnerHelper) that reads cfgYAML from
// a file of its own and makes each run's directory in runsDir, over a Unix
// socket. The runner ends when the test does.
func withRunnerProcess(t testing.TB, s *Solver, cfgYAML, runsDir string) {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "runner.sock")
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{envRunnerHelper + "=1", EnvConfig + "=" + cfgPath, runner.EnvSocket + "=" + socket,
		"TMPDIR=" + runsDir, "PATH=" + os.Getenv("PATH")}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, err := runner.Dial(ctx, socket, logr.Discard())
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal(err)
	}
	// Closing the connection ends the runner; the kill is for a runner that
	// does not end.
	t.Cleanup(func() {
		_ = client.Close()
		done := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("the runner process did not end when its connection did")
		}
	})
	s.runner = client
}
