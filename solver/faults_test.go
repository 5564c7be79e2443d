package solver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// interval is one run recorded by testdata/programs/intervals.sh.
type interval struct {
	zone       string
	start, end int64
}

func (a interval) overlaps(b interval) bool { return a.start < b.end && b.start < a.end }

// checkZoneOverlaps requires want runs of which none in one zone overlap
// and, with crossZone, some in different zones do.
func checkZoneOverlaps(t *testing.T, runs []interval, want int, crossZone bool) {
	t.Helper()
	if len(runs) != want {
		t.Fatalf("%d runs recorded, want %d", len(runs), want)
	}
	overlappedAcrossZones := false
	for i, a := range runs {
		for _, b := range runs[i+1:] {
			if a.overlaps(b) && a.zone == b.zone {
				t.Errorf("runs in zone %s overlapped", a.zone)
			}
			overlappedAcrossZones = overlappedAcrossZones || (a.overlaps(b) && a.zone != b.zone)
		}
	}
	if crossZone && !overlappedAcrossZones {
		t.Error("runs in different zones never overlapped")
	}
}

func readIntervals(t *testing.T, path string) []interval {
	t.Helper()
	data, err := os.ReadFile(path)
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
	return runs
}

// presentAll runs Present for every name at once and returns the errors.
func presentAll(s *Solver, names []string) []error {
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, name := range names {
		wg.Go(func() { errs[i] = s.Present(request(name, fmt.Sprintf("value-%d", i), "")) })
	}
	wg.Wait()
	return errs
}

// Test60ConcurrentPresents is cert-manager's default ceiling of 60 challenges
// at once, spread over 30 zones and then within one zone.
func Test60ConcurrentPresents(t *testing.T) {
	tests := map[string]struct {
		zones int
	}{
		"30 zones": {30},
		"one zone": {1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			intervalLog := filepath.Join(t.TempDir(), "intervals")
			s, _ := newTestSolver(t, `
programs:
- name: p
  path: `+testProgram(t, "intervals.sh")+`
  env: {INTERVAL_LOG: `+intervalLog+`, RUN_SECONDS: "0.2"}
`)
			var names []string
			for i := range 60 {
				names = append(names, fmt.Sprintf("host%d.zone%d.example", i, i%tc.zones))
			}
			for i, err := range presentAll(s, names) {
				if err != nil {
					t.Errorf("Present %s: %v", names[i], err)
				}
			}
			checkZoneOverlaps(t, readIntervals(t, intervalLog), 60, tc.zones > 1)
		})
	}
}

// TestSerializeNone lets a program opt out of per-zone serialisation.
func TestSerializeNone(t *testing.T) {
	intervalLog := filepath.Join(t.TempDir(), "intervals")
	s, _ := newTestSolver(t, `
programs:
- name: p
  path: `+testProgram(t, "intervals.sh")+`
  serialize: none
  env: {INTERVAL_LOG: `+intervalLog+`, RUN_SECONDS: "0.5"}
`)
	for i, err := range presentAll(s, []string{"a.example.com", "b.example.com", "c.example.com"}) {
		if err != nil {
			t.Fatalf("Present %d: %v", i, err)
		}
	}
	runs := readIntervals(t, intervalLog)
	if len(runs) != 3 || !runs[0].overlaps(runs[1]) {
		t.Errorf("runs in one zone did not overlap with serialize: none: %+v", runs)
	}
}

func TestRepeatedPresentAndCleanUp(t *testing.T) {
	argvLog := filepath.Join(t.TempDir(), "argv")
	s, _ := newTestSolver(t, `
programs:
- name: p
  path: `+testProgram(t, "record-argv.sh")+`
  env: {ARGV_LOG: `+argvLog+`}
`)
	req := request("example.com", "value", "")
	for _, call := range []func() error{
		func() error { return s.Present(req) }, func() error { return s.Present(req) },
		func() error { return s.CleanUp(req) }, func() error { return s.CleanUp(req) },
	} {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	// Without a propagation wait every call runs the program: it must be idempotent.
	if calls := readArgvLog(t, argvLog); len(calls) != 4 {
		t.Errorf("program ran %d times, want 4", len(calls))
	}
}

// TestHangingProgramReturnsWithinDeadline checks the call returns after the
// program's deadline with a clear error and leaves no goroutine behind.
func TestHangingProgramReturnsWithinDeadline(t *testing.T) {
	pidLog := filepath.Join(t.TempDir(), "pids")
	s, _ := newTestSolver(t, `
programs:
- name: hang
  path: `+testProgram(t, "hang.sh")+`
  timeout: 1s
  env: {PID_LOG: `+pidLog+`}
`)
	before := runtime.NumGoroutine()
	err := s.Present(request("example.com", "value", ""))
	want := `program "hang" present did not finish within 1s and was killed`
	if errString(err) != want {
		t.Fatalf("error = %q, want %q", errString(err), want)
	}
	for _, pid := range testbed.ReadPIDs(t, pidLog) {
		if !testbed.ExitsSoon(pid) {
			t.Errorf("process %d outlived the call", pid)
		}
	}
	var after int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if after = runtime.NumGoroutine(); after <= before {
			return
		}
	}
	t.Errorf("goroutines: %d before the call, %d after", before, after)
}

// TestConfigReloadKeepsLastGood swaps the config file as the kubelet does: to
// invalid YAML (the last good config keeps serving), then to a fixed one.
func TestConfigReloadKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	argvLog := filepath.Join(t.TempDir(), "argv")
	write := func(n int, content string) {
		version := filepath.Join(dir, fmt.Sprintf("..v%d", n))
		if err := os.Mkdir(version, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(version, "config.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			if err := os.Symlink("..data/config.yaml", filepath.Join(dir, "config.yaml")); err != nil {
				t.Fatal(err)
			}
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(filepath.Base(version), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	program := func(name string) string {
		return "programs:\n- name: " + name + "\n  path: " + testProgram(t, "record-argv.sh") + "\n  env: {ARGV_LOG: " + argvLog + "}\n"
	}
	write(1, program("first"))
	logs := &logBuffer{}
	s := New(WithLogger(logs.logger()), WithEnviron(func() []string { return nil }),
		WithGetenv(func(k string) string { return map[string]string{EnvConfig: filepath.Join(dir, "config.yaml")}[k] }))
	stop := make(chan struct{})
	defer close(stop)
	if err := s.Initialize(&rest.Config{Host: "https://127.0.0.1:1"}, stop); err != nil {
		t.Fatal(err)
	}
	present := func(program string) error {
		return s.Present(request("example.com", "value", `{"program":"`+program+`"}`))
	}
	if err := present("first"); err != nil {
		t.Fatal(err)
	}

	write(2, "programs: [\n")
	waitFor(t, func() bool { return strings.Contains(logs.String(), "INVALID solver config") })
	if err := present("first"); err != nil {
		t.Errorf("the last good config stopped serving: %v", err)
	}

	write(3, program("second"))
	waitFor(t, func() bool { return present("second") == nil })
	if err := present("first"); errString(err) != `issuer config: program "first" is not configured; choose one of: second` {
		t.Errorf("after the fix: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 10s")
}

// TestSecretsNeverLogged runs a failing program that prints its secrets and
// checks every log line and the error.
func TestSecretsNeverLogged(t *testing.T) {
	const passed = "passed-through-secret-1234"
	s, logs := newTestSolver(t, `
programs:
- name: fail
  path: `+testProgram(t, "fail.sh")+`
  passEnv: [API_TOKEN]
`, WithEnviron(func() []string { return []string{"API_TOKEN=" + passed} }))
	err := s.Present(request("example.com", "value", ""))
	if err == nil || strings.Contains(err.Error(), passed) || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Errorf("error = %v", err)
	}
	if strings.Contains(logs.String(), passed) || !strings.Contains(logs.String(), "[REDACTED]") {
		t.Errorf("logs:\n%s", logs.String())
	}
}

// homeRecord is one run's HOME and its mode, as home-state.sh records them.
type homeRecord struct {
	dir, mode string
}

func readHomes(t *testing.T, path string) []homeRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var homes []homeRecord
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var h homeRecord
		if _, err := fmt.Sscan(line, &h.dir, &h.mode); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		homes = append(homes, h)
	}
	return homes
}

// TestRunsShareNoHome is a tool caching credentials in $HOME: a run for
// team-b must not find what team-a's run left, and each run's directory
// (HOME, TMPDIR and working directory) is private and gone after the run.
func TestRunsShareNoHome(t *testing.T) {
	dirLog := filepath.Join(t.TempDir(), "homes")
	s, _ := newTestSolver(t, `
programs:
- name: home
  path: `+testProgram(t, "home-state.sh")+`
  env: {DIR_LOG: `+dirLog+`}
`)
	for _, namespace := range []string{"team-a", "team-b"} {
		req := request("example.com", "value", "")
		req.ResourceNamespace = namespace
		if err := s.Present(req); err != nil {
			t.Errorf("Present from %s: %v", namespace, err)
		}
	}
	homes := readHomes(t, dirLog)
	if len(homes) != 2 || homes[0].dir == homes[1].dir {
		t.Fatalf("runs' HOMEs = %v, want two different directories", homes)
	}
	for _, h := range homes {
		if h.mode != "700" {
			t.Errorf("HOME %s has mode %s, want 700", h.dir, h.mode)
		}
		if _, err := os.Lstat(h.dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("HOME %s remains after its run (%v)", h.dir, err)
		}
	}
}

// TestRunDirRemovedAfterTimeout checks that a run killed at its deadline
// leaves no directory behind either.
func TestRunDirRemovedAfterTimeout(t *testing.T) {
	dirLog := filepath.Join(t.TempDir(), "homes")
	s, _ := newTestSolver(t, `
programs:
- name: home
  path: `+testProgram(t, "home-state.sh")+`
  timeout: 1s
  env: {DIR_LOG: `+dirLog+`, HANG: "1"}
`)
	err := s.Present(request("example.com", "value", ""))
	if want := `program "home" present did not finish within 1s and was killed`; errString(err) != want {
		t.Fatalf("error = %q, want %q", errString(err), want)
	}
	homes := readHomes(t, dirLog)
	if len(homes) != 1 {
		t.Fatalf("runs' HOMEs = %v, want one", homes)
	}
	if _, err := os.Lstat(homes[0].dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("HOME %s remains after its run (%v)", homes[0].dir, err)
	}
}
