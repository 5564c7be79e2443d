package solver

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	dnsutil "github.com/cert-manager/cert-manager/pkg/issuer/acme/dns/util"
	"github.com/go-logr/logr"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
)

// timeoutQueryDeadline bounds `program timeout` at config load.
const timeoutQueryDeadline = 5 * time.Second

// propagationSettings are a program's propagation timeout and polling
// interval, and where each came from.
type propagationSettings struct {
	Timeout        time.Duration
	Interval       time.Duration
	TimeoutSource  string
	IntervalSource string
}

// timeoutAnswer is what `program timeout` prints: seconds, as lego documented.
type timeoutAnswer struct {
	Timeout  *float64 `json:"timeout"`
	Interval *float64 `json:"interval"`
}

// parseTimeoutAnswer reads the program's answer; each value that is missing or
// not positive falls back to its default.
func parseTimeoutAnswer(stdout string, defaults propagationSettings) (propagationSettings, error) {
	settings := defaults
	var answer timeoutAnswer
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout)), &answer); err != nil {
		return defaults, fmt.Errorf("output is not {\"timeout\": N, \"interval\": M}: %w", err)
	}
	var problems []string
	if d, ok := positiveSeconds(answer.Timeout); ok {
		settings.Timeout, settings.TimeoutSource = d, "program"
	} else {
		problems = append(problems, "timeout missing or not positive")
	}
	if d, ok := positiveSeconds(answer.Interval); ok {
		settings.Interval, settings.IntervalSource = d, "program"
	} else {
		problems = append(problems, "interval missing or not positive")
	}
	if len(problems) > 0 {
		return settings, fmt.Errorf("%s", strings.Join(problems, ", "))
	}
	return settings, nil
}

// timeoutSettings turns a run of `program timeout` into the settings the
// program's propagation wait uses, and says why defaults were used, if they were.
func timeoutSettings(p *Program, res runner.Result, runErr error) (propagationSettings, error) {
	defaults := configuredPropagation(p)
	if runErr != nil {
		return defaults, runErr
	}
	return parseTimeoutAnswer(strings.Join(res.Stdout, "\n"), defaults)
}

// configuredPropagation is p's propagation settings without its `timeout`
// answer: the solver config's, else EXEC_PROPAGATION_TIMEOUT and
// EXEC_POLLING_INTERVAL, else the defaults.
func configuredPropagation(p *Program) propagationSettings {
	return propagationSettings{
		Timeout: p.Propagation.Timeout, TimeoutSource: p.Propagation.TimeoutSource,
		Interval: p.Propagation.Interval, IntervalSource: p.Propagation.IntervalSource,
	}
}

func positiveSeconds(v *float64) (time.Duration, bool) {
	if v == nil || *v <= 0 || *v > float64(24*time.Hour/time.Second) {
		return 0, false
	}
	return time.Duration(*v * float64(time.Second)), true
}

// presentedRecords remembers records presented recently, so that a retried
// Present continues the propagation wait instead of running the program again.
// Each record keeps its own program's window: programs' windows differ.
type presentedRecords struct {
	mu      sync.Mutex
	records map[string]presentedRecord
}

// presentedRecord is when a record was presented and when its window closes.
type presentedRecord struct {
	at, windowEnd time.Time
}

func newPresentedRecords() *presentedRecords {
	return &presentedRecords{records: map[string]presentedRecord{}}
}

func recordKey(program, fqdn, value string) string {
	return program + "\x00" + strings.ToLower(fqdn) + "\x00" + value
}

// since returns when the record was presented, if its window is still open at
// now; records whose window has closed are forgotten.
func (r *presentedRecords) since(key string, now time.Time) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, rec := range r.records {
		if now.After(rec.windowEnd) {
			delete(r.records, k)
		}
	}
	rec, ok := r.records[key]
	return rec.at, ok
}

// add remembers a record presented at at, for window.
func (r *presentedRecords) add(key string, at time.Time, window time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records[key] = presentedRecord{at: at, windowEnd: at.Add(window)}
}

func (r *presentedRecords) forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.records, key)
}

// recordVisible reports whether value is served at fqdn by the configured
// nameservers, or by all of the zone's authoritative ones when none are
// configured (cert-manager's own propagation check).
type recordVisible func(ctx context.Context, fqdn, value string, nameservers []string) (bool, error)

func checkRecord(ctx context.Context, fqdn, value string, nameservers []string) (bool, error) {
	if len(nameservers) > 0 {
		return dnsutil.PreCheckDNS(ctx, fqdn, value, nameservers, false)
	}
	return dnsutil.PreCheckDNS(ctx, fqdn, value, dnsutil.RecursiveNameservers, true)
}

// waitVisible polls until the record is visible, ctx ends, or the propagation
// window that began at presentedAt closes.
func waitVisible(ctx context.Context, check recordVisible, settings propagationSettings, p *Program, fqdn, value string, presentedAt time.Time, log logr.Logger) error {
	windowEnd := presentedAt.Add(settings.Timeout)
	for {
		visible, err := check(ctx, fqdn, value, p.Propagation.Nameservers)
		if visible {
			return nil
		}
		if err != nil {
			log.V(1).Info("propagation check failed", "error", err.Error())
		}
		next := time.Now().Add(settings.Interval)
		if next.After(windowEnd) {
			return fmt.Errorf("program %q presented the record, but %s did not show it within the propagation timeout %s", p.Name, fqdn, settings.Timeout)
		}
		select {
		case <-ctx.Done():
			return &notYetVisibleError{program: p.Name, fqdn: fqdn, timeout: settings.Timeout}
		case <-time.After(settings.Interval):
		}
	}
}

// notYetVisibleError ends a Present call whose budget ran out while the
// record is still propagating; cert-manager retries and the wait continues.
type notYetVisibleError struct {
	program string
	fqdn    string
	timeout time.Duration
}

func (e *notYetVisibleError) Error() string {
	return fmt.Sprintf("program %q presented the record; waiting for %s to become visible (propagation timeout %s); cert-manager will retry and the wait continues", e.program, e.fqdn, e.timeout)
}
