package solver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

func testInvocation(t *testing.T, program string, env map[string]string, secrets ...string) invocation {
	t.Helper()
	p := &Program{Name: strings.TrimSuffix(program, ".sh"), Path: testProgram(t, program), Env: env}
	e := buildEnvironment(p, t.TempDir(), runContext{Action: ActionPresent}, nil, nil)
	e.secrets = append(e.secrets, secrets...)
	return invocation{program: p, action: ActionPresent, args: []string{"present", "_acme-challenge.example.com.", "value"}, env: e, dir: t.TempDir(), log: logr.Discard()}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// exitsSoon waits for a killed process to be gone; kill(2) returns before
// the target has died.
func exitsSoon(pid int) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !alive(pid) {
			return true
		}
	}
	return false
}

func readPIDs(t *testing.T, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	return pids
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
	for _, pid := range readPIDs(t, pidLog) {
		if !exitsSoon(pid) {
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
	for _, pid := range readPIDs(t, pidLog) {
		if !exitsSoon(pid) {
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
	for _, pid := range readPIDs(t, pidLog) {
		if !exitsSoon(pid) {
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
	if last := res.Stdout[len(res.Stdout)-1]; last != "[output truncated]" {
		t.Errorf("last kept line = %q, want the truncation mark", last)
	}
	if res.Truncated < 1000000 {
		t.Errorf("truncated = %d bytes, want more than the 1 MB line", res.Truncated)
	}
}

func TestRunLongLineTruncatedWithoutLeakingSecret(t *testing.T) {
	const secret = "straddling-secret-value"
	var out strings.Builder
	out.WriteString(strings.Repeat("x", maxLineBytes-10))
	out.WriteString(secret)
	capture := &streamCapture{name: "stdout", redact: newRedactor([]string{secret}), log: logr.Discard()}
	capture.consume(strings.NewReader(out.String() + "\nnext\n"))
	if len(capture.lines) != 2 || capture.lines[1] != "next" {
		t.Fatalf("lines = %d, %q", len(capture.lines), capture.lines[len(capture.lines)-1])
	}
	if strings.Contains(capture.lines[0], secret[:10]) {
		t.Error("a truncated line kept the start of a secret")
	}
	if !strings.HasSuffix(capture.lines[0], "more bytes]") {
		t.Errorf("truncated line not marked: ...%s", capture.lines[0][len(capture.lines[0])-40:])
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
	}{
		"deleted after load": {filepath.Join(dir, "gone.sh"), `program "p" present could not start: ` + filepath.Join(dir, "gone.sh") + ` does not exist (was it removed after the config was loaded?)`},
		"not executable":     {testProgram(t, "not-executable.sh"), `program "p" present could not start: ` + testProgram(t, "not-executable.sh") + ` is not executable`},
		"not a valid binary": {noShebang, `program "p" present could not start: ` + noShebang + ` is not a valid executable (a script needs a #! line)`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			inv := invocation{program: &Program{Name: "p", Path: tc.path}, action: ActionPresent, args: []string{"present"}, dir: dir, log: logr.Discard()}
			_, err := runProgram(context.Background(), inv)
			if errString(err) != tc.want {
				t.Errorf("error = %q, want %q", errString(err), tc.want)
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

// TestSerialisedPerZone runs Presents for two zones at once: runs in one zone
// never overlap, runs in different zones do.
func TestSerialisedPerZone(t *testing.T) {
	intervalLog := filepath.Join(t.TempDir(), "intervals")
	s, _ := newTestSolver(t, `
programs:
- name: p
  path: `+testProgram(t, "intervals.sh")+`
  env: {INTERVAL_LOG: `+intervalLog+`, RUN_SECONDS: "0.3"}
`)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 3 {
		for _, zone := range []string{"a.example", "b.example"} {
			wg.Go(func() {
				errs <- s.Present(request(fmt.Sprintf("host%d.%s", i, zone), fmt.Sprintf("v%d", i), ""))
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	type interval struct {
		zone       string
		start, end int64
	}
	data, err := os.ReadFile(intervalLog)
	if err != nil {
		t.Fatal(err)
	}
	var runs []interval
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var iv interval
		if _, err := fmt.Sscan(line, &iv.zone, &iv.start, &iv.end); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		runs = append(runs, iv)
	}
	if len(runs) != 6 {
		t.Fatalf("%d runs recorded, want 6", len(runs))
	}
	crossZoneOverlap := false
	for i, a := range runs {
		for _, b := range runs[i+1:] {
			overlap := a.start < b.end && b.start < a.end
			if overlap && a.zone == b.zone {
				t.Errorf("runs in zone %s overlapped: %v and %v", a.zone, a, b)
			}
			if overlap && a.zone != b.zone {
				crossZoneOverlap = true
			}
		}
	}
	if !crossZoneOverlap {
		t.Error("runs in different zones never overlapped")
	}
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
