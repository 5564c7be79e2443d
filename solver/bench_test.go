package solver

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// BenchmarkPresentOverhead compares a Present of /bin/true through the solver
// (Issuer config, validation, environment, zone lock, process group, output
// capture, logging, metrics) with a bare exec.Command("/bin/true").Run(), the
// solver running the program in its own process, and in a runner process over
// its Unix socket as the chart runs it (the invocation's round trip, the
// runner's lookup of its config), alternating the three in one run on one
// machine. Target: each ratio <= 1.2.
// Each run's private directory is made on tmpfs, as in the chart's
// memory-backed /tmp: on a disk file system the directory alone can cost more
// than the run (2 ms per mkdir and remove on this project's VMs, whose root
// file system is mounted with online discard).
func BenchmarkPresentOverhead(b *testing.B) {
	const cfg = "programs:\n- name: bin-true\n  path: /bin/true\n"
	runsDir := memoryBackedDir(b)
	inProcess, _ := newTestSolver(b, cfg)
	// newTestSolver's runner took the runs directory it was made with.
	inProcess.runsDir = runsDir
	inProcess.runner = inProcess.inProcessRunner()
	viaRunner, _ := newTestSolver(b, cfg)
	withRunnerProcess(b, viaRunner, cfg, runsDir)
	req := request("example.com", "value", "")
	timed := func(run func() error) time.Duration {
		start := time.Now()
		if err := run(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var bare, local, split time.Duration
	for i := 0; i < b.N; i++ {
		bare += timed(exec.Command("/bin/true").Run)
		local += timed(func() error { return inProcess.Present(req) })
		split += timed(func() error { return viaRunner.Present(req) })
	}
	perRun := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) }
	b.ReportMetric(perRun(bare), "bare-ns/run")
	b.ReportMetric(perRun(local), "in-process-ns/run")
	b.ReportMetric(perRun(split), "via-runner-ns/run")
	b.ReportMetric(float64(local)/float64(bare), "in-process/bare-ratio")
	b.ReportMetric(float64(split)/float64(bare), "via-runner/bare-ratio")
}

// Benchmark60ConcurrentPresents runs cert-manager's ceiling of 60 concurrent
// Presents, one per zone, of a program that takes 0.5s, through the solver
// running programs in its own process and in a runner process (all 60 over its
// one connection), alternating each round with 60 bare concurrent exec.Command
// runs of the same program, argv and variables. The bare round is the
// machine's floor for 60 such processes, which under load is several times one
// run; the solver's wall should stay close to it, with no failure. Target:
// each ratio <= 1.2.
func Benchmark60ConcurrentPresents(b *testing.B) {
	const runSeconds = 0.5
	program := testProgram(b, "intervals.sh")
	intervalLog := filepath.Join(b.TempDir(), "intervals")
	cfg := fmt.Sprintf(`
programs:
- name: p
  path: %s
  env: {INTERVAL_LOG: %s, RUN_SECONDS: "%v"}
`, program, intervalLog, runSeconds)
	inProcess, _ := newTestSolver(b, cfg)
	viaRunner, _ := newTestSolver(b, cfg)
	withRunnerProcess(b, viaRunner, cfg, b.TempDir())
	zoneRequest := func(round, zone int) *whapi.ChallengeRequest {
		return request(fmt.Sprintf("www.zone%d.example", zone), fmt.Sprintf("v%d-%d", round, zone), "")
	}
	var bare, local, split time.Duration
	for i := 0; i < b.N; i++ {
		bare += wallOf60Concurrent(b, "bare runs", func(zone int) error {
			req := zoneRequest(i, zone)
			cmd := exec.Command(program, string(ActionPresent), req.ResolvedFQDN, req.Key)
			cmd.Env = []string{"INTERVAL_LOG=" + intervalLog, fmt.Sprintf("RUN_SECONDS=%v", runSeconds),
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", runner.EnvResolvedZone + "=" + req.ResolvedZone}
			return cmd.Run()
		})
		local += wallOf60Concurrent(b, "Presents in-process", func(zone int) error {
			return inProcess.Present(zoneRequest(i, zone))
		})
		split += wallOf60Concurrent(b, "Presents via the runner", func(zone int) error {
			return viaRunner.Present(zoneRequest(i, zone))
		})
	}
	var usage syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	perRound := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	b.ReportMetric(perRound(bare), "bare-wall-s/60-runs")
	b.ReportMetric(perRound(local), "in-process-wall-s/60-presents")
	b.ReportMetric(perRound(split), "via-runner-wall-s/60-presents")
	b.ReportMetric(float64(local)/float64(bare), "in-process/bare-ratio")
	b.ReportMetric(float64(split)/float64(bare), "via-runner/bare-ratio")
	b.ReportMetric(perRound(local)/runSeconds, "in-process-wall/one-run-ratio")
	b.ReportMetric(float64(usage.Maxrss)/1024, "peak-rss-MiB")
}

// wallOf60Concurrent starts run for zones 0 to 59 at once and returns the wall
// time until the last one ends; any failure fails the benchmark.
func wallOf60Concurrent(b *testing.B, what string, run func(zone int) error) time.Duration {
	b.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	var failures atomic.Int32
	for zone := range 60 {
		wg.Go(func() {
			if err := run(zone); err != nil {
				failures.Add(1)
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	if n := failures.Load(); n > 0 {
		b.Fatalf("%d of 60 %s failed", n, what)
	}
	return wall
}

// memoryBackedDir returns a fresh directory on tmpfs, as the chart's /tmp
// is, or skips the benchmark where there is none.
func memoryBackedDir(b *testing.B) string {
	b.Helper()
	dir, ok := testbed.MemoryBackedDir(b)
	if !ok {
		b.Skip("no tmpfs at /dev/shm to make run directories on, as the chart's memory-backed /tmp")
	}
	return dir
}
