package solver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
)

// fakeClock is the guards' clock in tests.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) advance(d time.Duration) { c.now = c.now.Add(d) }

func newFakeGuards() (*guards, *fakeClock) {
	clock := &fakeClock{now: time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)}
	return newGuards(logr.Discard(), clock.Now), clock
}

var failedRun = &runner.RunError{Program: "dns", Action: ActionPresent, ExitCode: 1, Tail: "error: 403"}

// step is one request through a program's guard: admitted or refused, and
// when admitted, how its run ended.
type step struct {
	namespace string
	advance   time.Duration
	run       error // the run's outcome when admitted
	stderr    []string
	wantErr   string // the refusal, or "" when admitted
}

func runSteps(t *testing.T, p *Program, steps []step) {
	t.Helper()
	g, clock := newFakeGuards()
	for i, st := range steps {
		clock.advance(st.advance)
		turn, err := g.admit(context.Background(), p, st.namespace)
		if got := errString(err); got != st.wantErr {
			t.Fatalf("step %d (%s): admit error = %q, want %q", i, st.namespace, got, st.wantErr)
		}
		if err == nil {
			// A run answers with an error exactly when it failed.
			if answer := turn.ran(runner.Result{Stderr: st.stderr}, st.run); (answer == nil) != (st.run == nil) {
				t.Fatalf("step %d (%s): the run's outcome %v answered %v", i, st.namespace, st.run, answer)
			}
		}
	}
}

func TestBreakerTransitions(t *testing.T) {
	p := &Program{Name: "dns", Timeout: 30 * time.Second, Breaker: Breaker{Failures: 3, Pause: 10 * time.Second, MaxPause: 30 * time.Second}}
	last := `program "dns" present exited with status 1: error: 403`
	// The same text through every pause: see TestRefusalTextStaysTheSame.
	paused := fmt.Sprintf(`program "dns" is paused for namespace "team-a" after 3 failed runs in a row (last: %s); one run is let through after each pause (10s, doubling up to 30s); cert-manager will retry`, last)
	tests := map[string][]step{
		"closed until the third failure in a row; other namespaces unaffected": {
			{namespace: "team-a", run: failedRun},
			{namespace: "team-a", run: failedRun},
			{namespace: "team-b", run: failedRun},
			{namespace: "team-a", run: failedRun},
			{namespace: "team-a", wantErr: paused},
			{namespace: "team-b", run: nil},
			{namespace: "team-a", advance: 4 * time.Second, wantErr: paused},
		},
		"a success in between starts the count again": {
			{namespace: "team-a", run: failedRun},
			{namespace: "team-a", run: failedRun},
			{namespace: "team-a", run: nil},
			{namespace: "team-a", run: failedRun},
			{namespace: "team-a", run: failedRun},
			{namespace: "team-a", run: nil},
		},
		"after a pause one run decides; a failure pauses twice as long, up to maxPause": {
			{namespace: "team-a", run: failedRun},
			{namespace: "team-a", run: failedRun},
			{namespace: "team-a", run: failedRun},
			{namespace: "team-a", advance: 10 * time.Second, run: failedRun},
			{namespace: "team-a", wantErr: paused},
			{namespace: "team-a", advance: 20 * time.Second, run: failedRun},
			{namespace: "team-a", wantErr: paused},
			{namespace: "team-a", advance: 30 * time.Second, run: failedRun},
			{namespace: "team-a", wantErr: paused},
			{namespace: "team-a", advance: 30 * time.Second, run: nil},
			{namespace: "team-a", run: failedRun},
			{namespace: "team-a", run: nil},
		},
		"not the program's failure: the runner's connection": {
			{namespace: "team-a", run: errors.New("the connection to the runner failed")},
			{namespace: "team-a", run: errors.New("the connection to the runner failed")},
			{namespace: "team-a", run: errors.New("the connection to the runner failed")},
			{namespace: "team-a", run: nil},
		},
		"exit status 75 asks to slow down": {
			{namespace: "team-a", run: &runner.RunError{Program: "dns", Action: ActionPresent, ExitCode: exitTempFail}},
			{namespace: "team-a", wantErr: `program "dns" is paused for namespace "team-a": it asked to slow down for 10s (program "dns" present exited with status 75); cert-manager will retry`},
			{namespace: "team-a", advance: 10 * time.Second, run: nil},
		},
		"retry-after on stderr asks to slow down for that long": {
			{namespace: "team-a", run: &runner.RunError{Program: "dns", Action: ActionPresent, ExitCode: 1, Tail: "429 Too Many Requests | retry-after: 120"}, stderr: []string{"429 Too Many Requests", "retry-after: 120"}},
			{namespace: "team-a", advance: time.Minute, wantErr: `program "dns" is paused for namespace "team-a": it asked to slow down for 2m0s (program "dns" present exited with status 1: 429 Too Many Requests | retry-after: 120); cert-manager will retry`},
			{namespace: "team-b", run: nil},
		},
		"retry-after after a success": {
			{namespace: "team-a", run: nil, stderr: []string{"Retry-After: 5"}},
			{namespace: "team-a", wantErr: `program "dns" is paused for namespace "team-a": it asked to slow down for 5s (retry-after: 5); cert-manager will retry`},
		},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) { runSteps(t, p, steps) })
	}
}

// TestRefusalTextStaysTheSame: while a program keeps failing alike, every
// refusal says the same, through a pause, its end, a trial in flight, a
// failed trial and the longer pause after it, and so do the failed runs that
// paused it; so does the rate limit's refusal while its next start draws
// nearer. cert-manager reconciles a Challenge again at once when its
// status.reason changes and counts each reconcile as a failure: a changing
// text would double its backoff.
func TestRefusalTextStaysTheSame(t *testing.T) {
	p := &Program{Name: "dns", Timeout: 10 * time.Second, Breaker: Breaker{Failures: 2, Pause: 10 * time.Second, MaxPause: time.Minute}}
	g, clock := newFakeGuards()
	answers := map[string]bool{}
	refuse := func(what string) {
		t.Helper()
		if _, err := g.admit(context.Background(), p, "team-a"); err != nil {
			answers[err.Error()] = true
		} else {
			t.Fatalf("%s: admitted, want a refusal", what)
		}
	}
	// answered records what a request that ran answered, which still
	// carries the run's error.
	answered := func(err error) {
		t.Helper()
		var runErr *runner.RunError
		if !errors.As(err, &runErr) {
			t.Fatalf("answer %v does not carry the run's error", err)
		}
		answers[err.Error()] = true
	}
	run := func() error {
		t.Helper()
		turn, err := g.admit(context.Background(), p, "team-a")
		if err != nil {
			t.Fatal(err)
		}
		return turn.ran(runner.Result{}, failedRun)
	}
	if err := run(); err == nil || err.Error() != failedRun.Error() {
		t.Fatalf("the first failed run answered %v, want its own error", err)
	}
	answered(run())
	refuse("as the pause starts")
	clock.advance(7 * time.Second)
	refuse("3s before the pause ends")
	for _, toPauseEnd := range []time.Duration{3 * time.Second, 20 * time.Second} {
		clock.advance(toPauseEnd)
		trial, err := g.admit(context.Background(), p, "team-a")
		if err != nil {
			t.Fatalf("after a pause: %v", err)
		}
		refuse("beside the trial")
		answered(trial.ran(runner.Result{}, failedRun))
		refuse("after a failed trial")
		clock.advance(time.Second)
	}
	if len(answers) != 1 {
		t.Errorf("the breaker's answers said %d different things: %q", len(answers), slices.Sorted(maps.Keys(answers)))
	}

	limited := &Program{Name: "dns", Timeout: 10 * time.Second, RateLimit: RateLimit{Runs: 1, Per: 10 * time.Minute}}
	budget, cancel := context.WithDeadline(context.Background(), clock.now.Add(time.Hour))
	defer cancel()
	if _, err := g.admit(budget, limited, "team-a"); err != nil {
		t.Fatal(err)
	}
	answers = map[string]bool{}
	for range 3 {
		ctx, cancel := context.WithDeadline(context.Background(), clock.now.Add(RequestBudget))
		if _, err := g.admit(ctx, limited, "team-a"); err != nil {
			answers[err.Error()] = true
		} else {
			t.Fatal("admitted past the rate limit")
		}
		cancel()
		clock.advance(time.Minute)
	}
	if len(answers) != 1 {
		t.Errorf("the rate limit's refusals said %d different things: %q", len(answers), slices.Sorted(maps.Keys(answers)))
	}
}

func TestBreakerOff(t *testing.T) {
	p := &Program{Name: "dns", Breaker: Breaker{Failures: 0}}
	var steps []step
	for range 20 {
		steps = append(steps, step{namespace: "team-a", run: failedRun})
	}
	steps = append(steps, step{namespace: "team-a", run: &runner.RunError{ExitCode: exitTempFail}}, step{namespace: "team-a", run: nil})
	runSteps(t, p, steps)
}

// TestBreakerOneTrialAfterPause: when a pause ends, one request runs; the
// others answer at once until it has.
func TestBreakerOneTrialAfterPause(t *testing.T) {
	p := &Program{Name: "dns", Timeout: 30 * time.Second, Breaker: Breaker{Failures: 1, Pause: 10 * time.Second, MaxPause: time.Minute}}
	g, clock := newFakeGuards()
	first, err := g.admit(context.Background(), p, "team-a")
	if err != nil {
		t.Fatal(err)
	}
	if err := first.ran(runner.Result{}, failedRun); !errors.Is(err, failedRun) {
		t.Fatalf("the failed run answered %v", err)
	}
	clock.advance(10 * time.Second)
	trial, err := g.admit(context.Background(), p, "team-a")
	if err != nil {
		t.Fatalf("after the pause: %v", err)
	}
	want := `program "dns" is paused for namespace "team-a" after 1 failed runs in a row (last: program "dns" present exited with status 1: error: 403); one run is let through after each pause (10s, doubling up to 1m0s); cert-manager will retry`
	if _, err := g.admit(context.Background(), p, "team-a"); errString(err) != want {
		t.Errorf("beside the trial: %q, want %q", errString(err), want)
	}
	// A trial that never ran (its zone stayed busy) lets the next one through.
	trial.leave()
	next, err := g.admit(context.Background(), p, "team-a")
	if err != nil {
		t.Fatalf("after a trial that did not run: %v", err)
	}
	if err := next.ran(runner.Result{}, nil); err != nil {
		t.Fatalf("the successful trial answered %v", err)
	}
	if _, err := g.admit(context.Background(), p, "team-a"); err != nil {
		t.Errorf("after a successful trial: %v", err)
	}
}

func TestRateLimit(t *testing.T) {
	p := &Program{Name: "dns", Timeout: 10 * time.Second, RateLimit: RateLimit{Runs: 2, Per: time.Minute}}
	g, clock := newFakeGuards()
	budget := func() context.Context {
		ctx, cancel := context.WithDeadline(context.Background(), clock.now.Add(RequestBudget))
		t.Cleanup(cancel)
		return ctx
	}
	for i := range 2 {
		turn, err := g.admit(budget(), p, "team-a")
		if err != nil || !turn.start.Equal(clock.now) {
			t.Fatalf("run %d of the burst: %v, start %v", i, err, turn.start)
		}
		turn.started = true
		turn.leave()
	}
	// The next start is 30s away: within the 50s budget with 10s to run.
	waiting, err := g.admit(budget(), p, "team-b")
	if err != nil || waiting.start.Sub(clock.now) != 30*time.Second {
		t.Fatalf("third run: %v, starts in %v, want 30s", err, waiting.start.Sub(clock.now))
	}
	// The one after is 60s away: refused at once.
	want := `program "dns" is rate limited: 2 runs per 1m; cert-manager will retry`
	if _, err := g.admit(budget(), p, "team-a"); errString(err) != want {
		t.Errorf("fourth run: %q, want %q", errString(err), want)
	}
	// A reserved start no run took goes back: the next request gets it.
	waiting.leave()
	again, err := g.admit(budget(), p, "team-a")
	if err != nil || again.start.Sub(clock.now) != 30*time.Second {
		t.Errorf("after a reservation was given back: %v, starts in %v, want 30s", err, again.start.Sub(clock.now))
	}
}

func TestMaxConcurrent(t *testing.T) {
	p := &Program{Name: "dns", MaxConcurrent: 1}
	g, _ := newFakeGuards()
	first, err := g.admit(context.Background(), p, "team-a")
	if err != nil {
		t.Fatal(err)
	}
	if err := first.takeSlot(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	second, err := g.admit(context.Background(), p, "team-b")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	want := `program "dns" found no free run: all 1 (maxConcurrent) stayed taken for the whole request budget (50s); cert-manager will retry: context deadline exceeded`
	if err := second.takeSlot(ctx, p); errString(err) != want {
		t.Errorf("second run: %q, want %q", errString(err), want)
	}
	first.leave()
	if err := second.takeSlot(context.Background(), p); err != nil {
		t.Errorf("after the first left: %v", err)
	}
}

// TestBreakerIgnoresTenantFailures: requests refused before anything runs
// (a bad Issuer config, a namespace the program does not allow) never pause
// the program; its runs do.
func TestBreakerIgnoresTenantFailures(t *testing.T) {
	argvLog := filepath.Join(t.TempDir(), "argv")
	s, _ := newTestSolver(t, fmt.Sprintf(`
programs:
- name: recorder
  path: %s
  env: {ARGV_LOG: %s}
  secretEnv: [TSIG_SECRET]
  allowedNamespaces: [team-a]
  breaker: {failures: 2}
`, testProgram(t, "record-argv.sh"), argvLog))
	for range 5 {
		if err := s.Present(request("www.example.com", "k", `{"env": {"LD_PRELOAD": {"secretKeyRef": {"name": "x", "key": "y"}}}}`)); err == nil {
			t.Fatal("a bad Issuer config was admitted")
		}
		other := request("www.example.com", "k", "")
		other.ResourceNamespace = "team-b"
		if err := s.Present(other); err == nil {
			t.Fatal("a namespace the program does not allow was admitted")
		}
	}
	if err := s.Present(request("www.example.com", "k", "")); err != nil {
		t.Fatalf("after the tenant's refusals: %v", err)
	}
	if calls := readArgvLog(t, argvLog); len(calls) != 1 {
		t.Errorf("program ran %d times, want once", len(calls))
	}
}

func TestParseGuardSettings(t *testing.T) {
	ok := testProgram(t, "record-argv.sh")
	tests := map[string]struct {
		yaml        string
		wantRate    RateLimit
		wantMax     int
		wantBreaker Breaker
		wantErr     string
	}{
		"defaults: no rate limit, no cap, the default breaker": {yaml: "", wantBreaker: DefaultBreaker},
		"all set": {yaml: "\n  rateLimit: {runs: 10, per: 1m}\n  maxConcurrent: 2\n  breaker: {failures: 3, pause: 5s, maxPause: 1m}",
			wantRate: RateLimit{Runs: 10, Per: time.Minute}, wantMax: 2, wantBreaker: Breaker{Failures: 3, Pause: 5 * time.Second, MaxPause: time.Minute}},
		"breaker off":            {yaml: "\n  breaker: {failures: 0}", wantBreaker: Breaker{Pause: 10 * time.Second, MaxPause: 10 * time.Minute}},
		"rate limit without per": {yaml: "\n  rateLimit: {runs: 10}", wantErr: `programs[0] ("a"): rateLimit.per: missing; say over how long, e.g. "1m"`},
		"rate limit of no runs":  {yaml: "\n  rateLimit: {runs: 0, per: 1m}", wantErr: `programs[0] ("a"): rateLimit.runs: 0 must be at least 1`},
		"maxConcurrent 0":        {yaml: "\n  maxConcurrent: 0", wantErr: `programs[0] ("a"): maxConcurrent: 0 must be at least 1; leave it out for no limit beyond maxConcurrentRuns`},
		"negative failures":      {yaml: "\n  breaker: {failures: -1}", wantErr: `programs[0] ("a"): breaker.failures: -1 must be 0 (off) or more`},
		"maxPause below pause":   {yaml: "\n  breaker: {pause: 1m, maxPause: 10s}", wantErr: `programs[0] ("a"): breaker.maxPause: 10s is shorter than breaker.pause (1m0s)`},
		"unknown breaker key":    {yaml: "\n  breaker: {failure: 3}", wantErr: `programs[0] ("a"): breaker: unknown key "failure"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte("programs:\n- name: a\n  path: "+ok+tc.yaml), testDefaults, checkExecutable)
			if got := errString(err); got != tc.wantErr {
				t.Fatalf("error = %q, want %q", got, tc.wantErr)
			}
			if err != nil {
				return
			}
			p := cfg.Programs["a"]
			if p.RateLimit != tc.wantRate || p.MaxConcurrent != tc.wantMax || p.Breaker != tc.wantBreaker {
				t.Errorf("got %+v, %d, %+v; want %+v, %d, %+v", p.RateLimit, p.MaxConcurrent, p.Breaker, tc.wantRate, tc.wantMax, tc.wantBreaker)
			}
		})
	}
}
