package solver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
)

// A program's guard protects the provider its program calls. cert-manager
// retries each failing Challenge on its own schedule, so N failing Challenges
// call the provider N times as often as one; this webhook sees every run, so
// it is where runs can be coordinated:
//
//   - a rate limit per program (a token bucket of rateLimit.runs per
//     rateLimit.per) and a cap on its runs at once (maxConcurrent): the
//     admin's bound on what the provider is asked, for all namespaces;
//   - a breaker per program and namespace: after breaker.failures failed runs
//     in a row, the program is paused for that namespace, requests answer at
//     once without running it, and one run after the pause decides whether it
//     stays paused (for twice as long) or runs again. Per namespace, because
//     a failing run is often the namespace's own doing (its Secret holds a
//     wrong key, its zone is misconfigured) and must not pause the program
//     for everyone; a provider that fails for everyone pauses each namespace
//     after its own few failures. A ClusterIssuer's namespace is cert-manager's.
//   - a program may ask to slow down: exit status 75 (EX_TEMPFAIL) or a line
//     `retry-after: <seconds>` on stderr pauses it for that namespace.
//
// A refusal's text stays the same while the failure behind it does: no
// countdown, no running count of failures. cert-manager writes it to the
// Challenge's status.reason, and a changed reason makes it reconcile the
// Challenge again at once, another request that its backoff counts as
// another failure; a text that changed at each retry doubled cert-manager's
// backoff twice per retry, so Challenges waited up to its 30 min cap after
// the provider worked again, against 30-65 s without the breaker, in an e2e
// measurement.
//
// State is per replica: with N replicas the provider sees up to N times the
// rate limit and each replica's breaker counts its own runs.

// exitTempFail is sysexits.h's EX_TEMPFAIL: a program's way to say "slow down".
const exitTempFail = 75

// maxRetryAfter bounds the pause a program may ask for.
const maxRetryAfter = time.Hour

// guards holds every program's guard. Each config load starts them afresh:
// an admin who fixes a program's config wants it run at once.
type guards struct {
	now func() time.Time
	log logr.Logger

	mu       sync.Mutex
	programs map[string]*programGuard
}

func newGuards(log logr.Logger, now func() time.Time) *guards {
	return &guards{now: now, log: log, programs: map[string]*programGuard{}}
}

// programGuard is one program's rate limit, run cap and breakers.
type programGuard struct {
	// config is the program the guard was made for, from one config load.
	config    *Program
	program   string
	rateLimit RateLimit
	breaker   Breaker
	limiter   *rate.Limiter // nil: no rate limit
	slots     chan struct{} // nil: no cap beyond maxConcurrentRuns

	mu       sync.Mutex
	breakers map[string]*breakerState // by namespace
}

// breakerState is the breaker of one program for one namespace.
type breakerState struct {
	failures    int // failed runs in a row
	pausedUntil time.Time
	nextPause   time.Duration
	lastFailure string
	slowDown    time.Duration // the pause a program asked for, if that paused it
	// trial is set while the one run after a pause is in flight.
	trial bool
}

// guardFor returns p's guard, new when p comes from another config load.
func (g *guards) guardFor(p *Program) *programGuard {
	g.mu.Lock()
	defer g.mu.Unlock()
	pg := g.programs[p.Name]
	if pg != nil && pg.config == p {
		return pg
	}
	pg = &programGuard{config: p, program: p.Name, rateLimit: p.RateLimit, breaker: p.Breaker, breakers: map[string]*breakerState{}}
	if p.RateLimit.Runs > 0 {
		pg.limiter = rate.NewLimiter(rate.Limit(float64(p.RateLimit.Runs)/p.RateLimit.Per.Seconds()), p.RateLimit.Runs)
	}
	if p.MaxConcurrent > 0 {
		pg.slots = make(chan struct{}, p.MaxConcurrent)
	}
	g.programs[p.Name] = pg
	return pg
}

// turn is one request's pass through a program's guard: a place in the
// breaker, a reserved start in the rate limit, a run slot.
type turn struct {
	g         *guards
	pg        *programGuard
	namespace string
	trial     bool
	start     time.Time // when the rate limit lets the run start
	reserved  *rate.Reservation
	started   bool // a run took the reserved start
	slot      bool
}

// admit lets a request of namespace for p proceed, or refuses it at once: a
// paused program, or a rate limit that would not give it a start before its
// budget leaves too little for the run.
func (g *guards) admit(ctx context.Context, p *Program, namespace string) (*turn, error) {
	pg := g.guardFor(p)
	now := g.now()
	t := &turn{g: g, pg: pg, namespace: namespace, start: now}
	if err := pg.enter(t, now); err != nil {
		return nil, err
	}
	if pg.limiter != nil {
		r := pg.limiter.ReserveN(now, 1)
		delay := r.DelayFrom(now)
		if deadline, ok := ctx.Deadline(); ok && delay > 0 && now.Add(delay+p.Timeout).After(deadline) {
			r.CancelAt(now)
			t.leave()
			rateLimitRefusals.WithLabelValues(p.Name).Inc()
			return nil, fmt.Errorf("program %q is rate limited: %s; cert-manager will retry", p.Name, p.RateLimit)
		}
		t.reserved, t.start = r, now.Add(delay)
	}
	return t, nil
}

// enter refuses a request while the namespace's breaker holds p paused, and
// lets one request through when a pause has ended.
func (pg *programGuard) enter(t *turn, now time.Time) error {
	if pg.breaker.Failures == 0 {
		return nil
	}
	pg.mu.Lock()
	defer pg.mu.Unlock()
	b := pg.breakers[t.namespace]
	if b == nil || b.pausedUntil.IsZero() {
		return nil
	}
	// While the run after a pause is in flight, the pause holds for the rest.
	if now.Before(b.pausedUntil) || b.trial {
		return pg.pausedError(t.namespace, b)
	}
	b.trial, t.trial = true, true
	return nil
}

func (pg *programGuard) pausedError(namespace string, b *breakerState) error {
	if b.slowDown > 0 {
		return fmt.Errorf("program %q is paused for namespace %q: it asked to slow down for %s (%s); cert-manager will retry",
			pg.program, namespace, b.slowDown, b.lastFailure)
	}
	return fmt.Errorf("program %q is paused for namespace %q after %d failed runs in a row (last: %s); one run is let through after each pause (%s, doubling up to %s); cert-manager will retry",
		pg.program, namespace, pg.breaker.Failures, b.lastFailure, pg.breaker.Pause, pg.breaker.MaxPause)
}

// takeSlot waits for one of the program's maxConcurrent slots.
func (t *turn) takeSlot(ctx context.Context, p *Program) error {
	if t.pg.slots == nil {
		return nil
	}
	select {
	case t.pg.slots <- struct{}{}:
		t.slot = true
		return nil
	case <-ctx.Done():
		return fmt.Errorf("program %q found no free run: all %d (maxConcurrent) stayed taken for the whole request budget (%s); cert-manager will retry: %w",
			p.Name, p.MaxConcurrent, RequestBudget, ctx.Err())
	}
}

// waitStart waits until the rate limit's start for this run.
func (t *turn) waitStart(ctx context.Context) error {
	delay := t.start.Sub(t.g.now())
	if delay <= 0 {
		t.started = true
		return nil
	}
	rateLimitWaits.WithLabelValues(t.pg.program).Observe(delay.Seconds())
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		t.started = true
		return nil
	case <-ctx.Done():
		return fmt.Errorf("program %q waited for its rate limit (%s) past the request's budget: %w", t.pg.program, t.pg.rateLimit, ctx.Err())
	}
}

// leave gives back what the turn holds: its slot, its reserved start when no
// run took it, and its trial. It may be called more than once.
func (t *turn) leave() {
	if t.slot {
		<-t.pg.slots
		t.slot = false
	}
	if t.reserved != nil && !t.started {
		t.reserved.CancelAt(t.g.now())
	}
	t.reserved = nil
	if t.trial {
		t.pg.mu.Lock()
		if b := t.pg.breakers[t.namespace]; b != nil {
			b.trial = false
		}
		t.pg.mu.Unlock()
		t.trial = false
	}
}

// ran records a run's outcome in the namespace's breaker, leaves, and
// returns the error to answer with: the run's, or when the failed run paused
// the program, the refusals' text, so that the Challenge's reason does not
// change between the failed run and the refusals after it.
func (t *turn) ran(res runner.Result, err error) error {
	defer t.leave()
	if t.pg.breaker.Failures == 0 {
		return err
	}
	pause, slowDown := t.slowDown(res, err)
	var runErr *runner.RunError
	if !slowDown && err != nil && !errors.As(err, &runErr) {
		return err // not the program's failure: the runner's connection, say.
	}
	pg := t.pg
	pg.mu.Lock()
	defer pg.mu.Unlock()
	b := pg.breakers[t.namespace]
	if b == nil {
		b = &breakerState{nextPause: pg.breaker.Pause}
		pg.breakers[t.namespace] = b
	}
	log := t.g.log.WithValues("program", pg.program, "namespace", t.namespace)
	now := t.g.now()
	switch {
	case slowDown:
		b.lastFailure, b.slowDown = lastFailure(err, pause), pause
		b.pausedUntil = now.Add(pause)
		programPauses.WithLabelValues(pg.program, "slow_down").Inc()
		programPaused.WithLabelValues(pg.program, t.namespace).Set(1)
		log.Info("program paused: it asked to slow down", "pause", pause)
	case err == nil:
		if b.failures > 0 || !b.pausedUntil.IsZero() {
			log.Info("program runs again: a run succeeded", "failedBefore", b.failures)
			programPaused.WithLabelValues(pg.program, t.namespace).Set(0)
		}
		delete(pg.breakers, t.namespace)
	default:
		b.failures++
		b.lastFailure, b.slowDown = err.Error(), 0
		if b.failures < pg.breaker.Failures && !t.trial {
			return err
		}
		b.pausedUntil = now.Add(b.nextPause)
		programPauses.WithLabelValues(pg.program, "failures").Inc()
		programPaused.WithLabelValues(pg.program, t.namespace).Set(1)
		log.Info("program paused after failed runs in a row", "failures", b.failures, "pause", b.nextPause, "lastFailure", b.lastFailure)
		b.nextPause = min(2*b.nextPause, pg.breaker.MaxPause)
	}
	if err != nil {
		return &explainedError{msg: pg.pausedError(t.namespace, b).Error(), cause: err}
	}
	return nil
}

// slowDown reports whether the run asked to slow down, and for how long: exit
// status 75 or a `retry-after: <seconds>` line on stderr (the last one wins).
func (t *turn) slowDown(res runner.Result, err error) (time.Duration, bool) {
	for i := len(res.Stderr) - 1; i >= 0; i-- {
		name, value, ok := strings.Cut(res.Stderr[i], ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "retry-after") {
			continue
		}
		if seconds, convErr := strconv.Atoi(strings.TrimSpace(value)); convErr == nil && seconds > 0 {
			return min(time.Duration(seconds)*time.Second, maxRetryAfter), true
		}
	}
	var runErr *runner.RunError
	if errors.As(err, &runErr) && runErr.StartErr == nil && !runErr.Killed && runErr.ExitCode == exitTempFail {
		return t.pg.breaker.Pause, true
	}
	return 0, false
}

func lastFailure(err error, pause time.Duration) string {
	if err == nil {
		return fmt.Sprintf("retry-after: %d", int(pause.Seconds()))
	}
	return err.Error()
}

// String says the rate limit as the admin wrote it: "10 runs per 1m".
func (r RateLimit) String() string {
	per := r.Per.String()
	if strings.HasSuffix(per, "m0s") {
		per = strings.TrimSuffix(per, "0s")
	}
	if strings.HasSuffix(per, "h0m") {
		per = strings.TrimSuffix(per, "0m")
	}
	return fmt.Sprintf("%d runs per %s", r.Runs, per)
}

// limits says what guards a program's runs, for check.
func (p *Program) limits() string {
	rateLimit, concurrent, breaker := "none", "maxConcurrentRuns only", "off"
	if p.RateLimit.Runs > 0 {
		rateLimit = p.RateLimit.String()
	}
	if p.MaxConcurrent > 0 {
		concurrent = strconv.Itoa(p.MaxConcurrent)
	}
	if p.Breaker.Failures > 0 {
		breaker = fmt.Sprintf("a namespace is paused after %d failed runs in a row, for %s doubling to %s",
			p.Breaker.Failures, p.Breaker.Pause, p.Breaker.MaxPause)
	}
	return fmt.Sprintf("rate limit: %s; runs at once: %s; breaker: %s (per replica)", rateLimit, concurrent, breaker)
}
