package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// testInvocation runs program with env; secrets are redacted as a tenant's.
func testInvocation(t *testing.T, program string, env map[string]string, secrets ...string) job {
	t.Helper()
	p := &Program{Name: strings.TrimSuffix(program, ".sh"), Path: testProgram(t, program), Env: env}
	e := mustBuildEnvironment(t, p, Invocation{Action: ActionPresent}, nil)
	e.tenantSecrets = append(e.tenantSecrets, secrets...)
	return job{program: p, action: ActionPresent, args: []string{"present", "_acme-challenge.example.com.", "value"}, env: e, runsDir: t.TempDir(), log: logr.Discard()}
}

func TestRunDeadlineKillsProcessGroup(t *testing.T) {
	pidLog := filepath.Join(t.TempDir(), "pids")
	inv := testInvocation(t, "hang.sh", map[string]string{"PID_LOG": pidLog})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := runProgram(ctx, inv)
	want := `program "hang" present did not finish within 1s and was killed`
	if errString(err) != want {
		t.Fatalf("error = %q, want %q", errString(err), want)
	}
	for _, pid := range testbed.ReadPIDs(t, pidLog) {
		if !testbed.ExitsSoon(pid) {
			t.Errorf("process %d outlived the run", pid)
		}
	}
}

func TestRunCancelledRequestKillsProgram(t *testing.T) {
	pidLog := filepath.Join(t.TempDir(), "pids")
	inv := testInvocation(t, "hang.sh", map[string]string{"PID_LOG": pidLog})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	_, err := runProgram(ctx, inv)
	want := `program "hang" present was killed because its request ended`
	if errString(err) != want {
		t.Fatalf("error = %q, want %q", errString(err), want)
	}
	for _, pid := range testbed.ReadPIDs(t, pidLog) {
		if !testbed.ExitsSoon(pid) {
			t.Errorf("process %d outlived the run", pid)
		}
	}
}

func TestRunBackgroundChildIsKilled(t *testing.T) {
	pidLog := filepath.Join(t.TempDir(), "pids")
	inv := testInvocation(t, "background-child.sh", map[string]string{"PID_LOG": pidLog})
	res, err := runProgram(context.Background(), inv)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stdout) != 1 || res.Stdout[0] != "presented" {
		t.Errorf("stdout = %q", res.Stdout)
	}
	if res.Duration > 10*time.Second {
		t.Errorf("run waited %s for its background child", res.Duration)
	}
	for _, pid := range testbed.ReadPIDs(t, pidLog) {
		if !testbed.ExitsSoon(pid) {
			t.Errorf("background child %d outlived the run", pid)
		}
	}
}

func TestRunExitStatusAndTail(t *testing.T) {
	inv := testInvocation(t, "fail.sh", map[string]string{"FAIL_STATUS": "7", "API_TOKEN": "tok-SECRET-42"}, "tok-SECRET-42")
	res, err := runProgram(context.Background(), inv)
	want := `program "fail" present exited with status 7: warning: retrying | error: API said 403 for token [REDACTED]`
	if errString(err) != want {
		t.Fatalf("error = %q, want %q", errString(err), want)
	}
	var runErr *RunError
	if !errors.As(err, &runErr) || runErr.ExitCode != 7 {
		t.Errorf("error is %#v", err)
	}
	if got := strings.Join(res.Stdout, "\n"); got != "calling the DNS API for _acme-challenge.example.com." {
		t.Errorf("stdout = %q", got)
	}
}

func TestRunOutputBounded(t *testing.T) {
	inv := testInvocation(t, "flood.sh", map[string]string{"API_TOKEN": "flood-secret-99"}, "flood-secret-99")
	res, err := runProgram(context.Background(), inv)
	want := `program "flood" present exited with status 1: secret at the end: [REDACTED]`
	if errString(err) != want {
		t.Fatalf("error = %q, want %q", errString(err), want)
	}
	kept := 0
	for _, l := range res.Stdout {
		kept += len(l)
	}
	if kept > maxOutputBytes+maxLineBytes+100 {
		t.Errorf("kept %d bytes of stdout, bound is %d", kept, maxOutputBytes)
	}
	droppedBytes := len(strings.Repeat("x", 1000000)) + 1
	for i := maxOutputLines; i < 20000; i++ {
		droppedBytes += len(fmt.Sprintf("line %d of a flood of output\n", i))
	}
	wantMark := fmt.Sprintf("[output truncated: %d more lines, %d bytes, not kept]", 20000-maxOutputLines+1, droppedBytes)
	if last := res.Stdout[len(res.Stdout)-1]; last != wantMark {
		t.Errorf("last kept line = %q, want %q", last, wantMark)
	}
	if res.Truncated < 1000000 {
		t.Errorf("truncated = %d bytes, want more than the 1 MB line", res.Truncated)
	}
}

// TestRunOutputBoundedInLines is 5 MB of empty lines: each adds nothing to a
// byte count, so only a bound on lines keeps what is held and logged small.
func TestRunOutputBoundedInLines(t *testing.T) {
	logs := &logBuffer{}
	inv := testInvocation(t, "blank-flood.sh", nil)
	inv.log = logs.logger()
	res, err := runProgram(context.Background(), inv)
	want := `program "blank-flood" present exited with status 1: last words`
	if errString(err) != want {
		t.Fatalf("error = %q, want %q", errString(err), want)
	}
	if len(res.Stdout) != maxOutputLines+1 {
		t.Errorf("kept %d lines of stdout, want %d and the mark", len(res.Stdout), maxOutputLines)
	}
	wantMark := fmt.Sprintf("[output truncated: %d more lines, %d bytes, not kept]", 5000000-maxOutputLines, 5000000-maxOutputLines)
	if last := res.Stdout[len(res.Stdout)-1]; last != wantMark {
		t.Errorf("last kept line = %q, want %q", last, wantMark)
	}
	if logged := strings.Count(logs.String(), `"stream"="stdout"`); logged != maxOutputLines+1 {
		t.Errorf("logged %d lines of stdout, want %d and the mark", logged, maxOutputLines)
	}
}

func TestRunLongLineTruncatedWithoutLeakingSecret(t *testing.T) {
	const (
		admin  = "admin-token-much-longer-than-the-tenant-value"
		tenant = "TENANT-secret-1"
	)
	tests := map[string]struct {
		admin, tenant []string
		line          string
		hidden        string
	}{
		"admin's secret straddling the buffer's end": {
			[]string{"straddling-secret-value"}, nil,
			strings.Repeat("x", maxLineBytes-10) + "straddling-secret-value", "straddling",
		},
		"tenant's secret straddling the buffer's end": {
			nil, []string{"straddling-secret-value"},
			strings.Repeat("x", maxLineBytes-10) + "straddling-secret-value", "straddling",
		},
		"short secret straddling the cut made for the longest": {
			[]string{admin}, []string{tenant},
			strings.Repeat("x", maxLineBytes-len(admin)-8) + tenant + strings.Repeat("y", 100), "TENANT",
		},
		"tenant's secret straddling the cut right after an admin's": {
			[]string{"ADMIN-secret-1"}, []string{tenant, admin},
			strings.Repeat("x", maxLineBytes-len(admin)-20) + "ADMIN-secret-1" + tenant + strings.Repeat("y", 100), "TENANT",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			capture := &streamCapture{name: "stdout", redact: newRedactor(tc.admin, tc.tenant), log: logr.Discard()}
			capture.consume(strings.NewReader(tc.line + "\nnext\n"))
			if len(capture.lines) != 2 || capture.lines[1] != "next" {
				t.Fatalf("lines = %d, %q", len(capture.lines), capture.lines[len(capture.lines)-1])
			}
			if strings.Contains(capture.lines[0], tc.hidden) {
				t.Errorf("a truncated line kept the start of a secret: ...%s", capture.lines[0][len(capture.lines[0])-80:])
			}
			if !strings.HasSuffix(capture.lines[0], "more bytes]") {
				t.Errorf("truncated line not marked: ...%s", capture.lines[0][len(capture.lines[0])-40:])
			}
		})
	}
}

func TestRunStartErrors(t *testing.T) {
	dir := t.TempDir()
	noShebang := filepath.Join(dir, "no-shebang")
	if err := os.WriteFile(noShebang, []byte("\x7fELFgarbage"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		path, want string
		cause      error
	}{
		"deleted after load": {filepath.Join(dir, "gone.sh"), `program "p" present could not start: ` + filepath.Join(dir, "gone.sh") + ` does not exist (was it removed after the config was loaded?)`, os.ErrNotExist},
		"not executable":     {testProgram(t, "not-executable.sh"), `program "p" present could not start: ` + testProgram(t, "not-executable.sh") + ` is not executable`, os.ErrPermission},
		"not a valid binary": {noShebang, `program "p" present could not start: ` + noShebang + ` is not a valid executable (a script needs a #! line)`, syscall.ENOEXEC},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			runsDir := t.TempDir()
			inv := job{program: &Program{Name: "p", Path: tc.path}, action: ActionPresent, args: []string{"present"}, runsDir: runsDir, log: logr.Discard()}
			_, err := runProgram(context.Background(), inv)
			if left, _ := os.ReadDir(runsDir); len(left) > 0 {
				t.Errorf("run directories left: %v", left)
			}
			if errString(err) != tc.want {
				t.Errorf("error = %q, want %q", errString(err), tc.want)
			}
			if !errors.Is(err, tc.cause) {
				t.Errorf("error %q does not keep its cause %v", errString(err), tc.cause)
			}
		})
	}
}

func TestRunEnvironmentAndStdin(t *testing.T) {
	inv := testInvocation(t, "env-dump.sh", map[string]string{"SERVER": "ns1"})
	res, err := runProgram(context.Background(), inv)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range res.Stdout {
		name, _, _ := strings.Cut(l, "=")
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		switch name {
		case "PATH", "HOME", "TMPDIR", "SERVER", "PWD", "SHLVL", "_":
		default:
			if !strings.HasPrefix(name, "CERT_MANAGER_") {
				t.Errorf("unexpected variable %s in the program's environment", name)
			}
		}
	}
}

// TestRunLeavesNoDescendant runs programs whose daemons leave the process
// group (setsid, double fork) with a Secret value in their environment,
// several at once, beside a longer run whose exit status must survive the
// others' clean-up, and checks that no daemon outlives its run.
func TestRunLeavesNoDescendant(t *testing.T) {
	const runs = 4
	var wg sync.WaitGroup
	slow := testInvocation(t, "fail.sh", map[string]string{"FAIL_AFTER": "1", "FAIL_STATUS": "7"})
	var slowErr error
	wg.Go(func() { _, slowErr = runProgram(context.Background(), slow) })
	pidLogs := make([]string, runs)
	secrets := make([]string, runs)
	errs := make([]error, runs)
	for i := range runs {
		pidLogs[i] = filepath.Join(t.TempDir(), "pids")
		secrets[i] = fmt.Sprintf("daemon-secret-%d-%d", os.Getpid(), i)
		inv := testInvocation(t, "daemonize.sh", map[string]string{"PID_LOG": pidLogs[i], "TENANT_TOKEN": secrets[i]}, secrets[i])
		wg.Go(func() { _, errs[i] = runProgram(context.Background(), inv) })
	}
	wg.Wait()
	t.Cleanup(func() { killAll(t, pidLogs) })
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
	wantSlow := `program "fail" present exited with status 7: warning: retrying | error: API said 403 for token unset`
	if errString(slowErr) != wantSlow {
		t.Errorf("concurrent run: error = %q, want %q", errString(slowErr), wantSlow)
	}
	for _, log := range pidLogs {
		for _, pid := range testbed.ReadPIDs(t, log) {
			if testbed.Alive(pid) {
				t.Errorf("daemon %d outlived its run", pid)
			}
		}
	}
	if holders := processesWithEnvValue(t, secrets); len(holders) > 0 {
		t.Errorf("processes holding a run's Secret value after the run: %v", holders)
	}
	if n := countChildren(t); n != 0 {
		t.Errorf("%d child processes left after the runs", n)
	}
}

// killAll kills the processes recorded in the PID logs, so that a failing
// run of TestRunLeavesNoDescendant leaves nothing behind.
func killAll(t *testing.T, pidLogs []string) {
	for _, log := range pidLogs {
		if _, err := os.Stat(log); err != nil {
			continue
		}
		for _, pid := range testbed.ReadPIDs(t, log) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// processesWithEnvValue lists the processes whose environment contains any of values.
func processesWithEnvValue(t *testing.T, values []string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		environ, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, v := range values {
			if strings.Contains(string(environ), v) {
				cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				found = append(found, e.Name()+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
			}
		}
	}
	return found
}

func TestNoZombiesAfterManyRuns(t *testing.T) {
	pidLog := filepath.Join(t.TempDir(), "pids")
	inv := testInvocation(t, "background-child.sh", map[string]string{"PID_LOG": pidLog})
	for range 50 {
		if _, err := runProgram(context.Background(), inv); err != nil {
			t.Fatal(err)
		}
	}
	if n := countChildren(t); n != 0 {
		t.Errorf("%d child processes left after 50 runs", n)
	}
}

// countChildren counts this process's children, zombies included.
func countChildren(t *testing.T) int {
	t.Helper()
	self := strconv.Itoa(syscall.Getpid())
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
		if len(fields) > 1 && fields[1] == self {
			n++
		}
	}
	return n
}

// TestNoZombiesAsPID1 runs a program that leaves a background child 1,000
// times, then 40 runs, four at a time, of one whose daemons leave the process
// group, in a new PID namespace where the test binary is PID 1, as the webhook
// is in a container. It checks that no daemon holds a run's Secret value once
// its run has returned and that no process, zombie or orphan, remains.
func TestNoZombiesAsPID1(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a PID namespace needs root (CI runs as root)")
	}
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", os.Args[0], "-test.run=^TestPID1Helper$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envPID1Helper+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "runs=1000 daemonRuns=40 holders=0 leftover=0") {
		t.Fatalf("helper output:\n%s", out)
	}
}

// TestPID1Helper is the body of TestNoZombiesAsPID1, run inside the namespace.
func TestPID1Helper(t *testing.T) {
	if os.Getenv(envPID1Helper) != "1" {
		t.Skip("runs only inside TestNoZombiesAsPID1")
	}
	if os.Getppid() != 1 {
		t.Fatalf("parent is %d, want the init process (PID 1)", os.Getppid())
	}
	pidLog := filepath.Join(t.TempDir(), "pids")
	inv := testInvocation(t, "background-child.sh", map[string]string{"PID_LOG": pidLog})
	const runs = 1000
	for range runs {
		if _, err := runProgram(context.Background(), inv); err != nil {
			t.Fatal(err)
		}
	}
	// Daemons that leave the group, four runs at a time.
	const daemonRuns, parallel = 40, 4
	var secrets []string
	for round := range daemonRuns / parallel {
		var wg sync.WaitGroup
		for i := range parallel {
			pidLog := filepath.Join(t.TempDir(), "pids")
			secret := fmt.Sprintf("pid1-daemon-secret-%d-%d", round, i)
			secrets = append(secrets, secret)
			inv := testInvocation(t, "daemonize.sh", map[string]string{"PID_LOG": pidLog, "TENANT_TOKEN": secret}, secret)
			wg.Go(func() {
				if _, err := runProgram(context.Background(), inv); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	holders := processesWithEnvValue(t, secrets)
	if len(holders) > 0 {
		t.Errorf("processes holding a run's Secret value after the run: %v", holders)
	}
	// Descendants killed by the process group are reaped asynchronously.
	var leftover []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		leftover = otherProcesses(t)
		if len(leftover) == 0 {
			break
		}
	}
	t.Logf("runs=%d daemonRuns=%d holders=%d leftover=%d", runs, daemonRuns, len(holders), len(leftover))
	if len(leftover) > 0 {
		t.Errorf("processes left in the namespace: %q", leftover)
	}
}

// otherProcesses lists the namespace's processes other than PID 1 and this one.
func otherProcesses(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == 1 || pid == os.Getpid() {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err == nil {
			out = append(out, strings.TrimSpace(string(stat)))
		}
	}
	return out
}
