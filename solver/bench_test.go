package solver

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPresentOverhead compares a Present of /bin/true through the solver
// (Issuer config, validation, environment, zone lock, process group, output
// capture, logging, metrics) with a bare exec.Command("/bin/true").Run(),
// alternating the two in one run on one machine. Target: ratio <= 1.2.
func BenchmarkPresentOverhead(b *testing.B) {
	s, _ := newTestSolver(b, "programs:\n- name: bin-true\n  path: /bin/true\n")
	req := request("example.com", "value", "")
	var bare, solver time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
		bare += time.Since(start)
		start = time.Now()
		if err := s.Present(req); err != nil {
			b.Fatal(err)
		}
		solver += time.Since(start)
	}
	b.ReportMetric(float64(bare.Nanoseconds())/float64(b.N), "bare-ns/run")
	b.ReportMetric(float64(solver.Nanoseconds())/float64(b.N), "solver-ns/run")
	b.ReportMetric(float64(solver)/float64(bare), "solver/bare-ratio")
}

// Benchmark60ConcurrentPresents runs cert-manager's ceiling of 60 concurrent
// Presents, one per zone, of a program that takes 0.5s: the wall time should
// be close to one run, not 60 of them, with no failure.
func Benchmark60ConcurrentPresents(b *testing.B) {
	const runSeconds = 0.5
	s, _ := newTestSolver(b, fmt.Sprintf(`
programs:
- name: p
  path: %s
  env: {INTERVAL_LOG: %s, RUN_SECONDS: "%v"}
`, testProgram(b, "intervals.sh"), filepath.Join(b.TempDir(), "intervals"), runSeconds))
	var wall time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		failures := 0
		for z := range 60 {
			wg.Go(func() {
				if err := s.Present(request(fmt.Sprintf("www.zone%d.example", z), fmt.Sprintf("v%d-%d", i, z), "")); err != nil {
					mu.Lock()
					failures++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		wall += time.Since(start)
		if failures > 0 {
			b.Fatalf("%d of 60 Presents failed", failures)
		}
	}
	var usage syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	perRound := wall.Seconds() / float64(b.N)
	b.ReportMetric(perRound, "wall-s/60-presents")
	b.ReportMetric(perRound/runSeconds, "wall/one-run-ratio")
	b.ReportMetric(60/perRound, "presents/s")
	b.ReportMetric(float64(usage.Maxrss)/1024, "peak-rss-MiB")
}
