package solver

import (
	"errors"
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
)

// Metrics are registered with the API server's own registry, so they are
// served on the webhook's /metrics, behind its authentication, on the port it
// already listens on.
const metricsNamespace = "cert_manager_webhook_exec"

var (
	programRuns = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: metricsNamespace, Name: "program_runs_total",
		Help:           "Program runs by program, action and outcome (success, failure, timeout, start_error).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"program", "action", "outcome"})
	programRunDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: metricsNamespace, Name: "program_run_duration_seconds",
		Help:           "Duration of program runs by program and action.",
		Buckets:        []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 50},
		StabilityLevel: metrics.ALPHA,
	}, []string{"program", "action"})
	programRunsInFlight = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: metricsNamespace, Name: "program_runs_in_flight",
		Help:           "Programs running now.",
		StabilityLevel: metrics.ALPHA,
	})
	challengeCalls = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: metricsNamespace, Name: "challenge_calls_total",
		Help:           "Present and CleanUp calls by action and result (success or error), including calls refused before any program ran.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"action", "result"})
	propagationChecks = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: metricsNamespace, Name: "propagation_waits_total",
		Help:           "Propagation waits by program and outcome (visible, pending: the call's budget ended first, expired: the propagation timeout passed).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"program", "outcome"})
	configReloads = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: metricsNamespace, Name: "config_reloads_total",
		Help:           "Solver config loads after a change, by result (success, invalid).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	leaseWaits = metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace: metricsNamespace, Name: "zone_lease_wait_seconds",
		Help:           "Time spent waiting for a zone's Lease (several replicas only).",
		Buckets:        []float64{0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 50},
		StabilityLevel: metrics.ALPHA,
	})
	rateLimitRefusals = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: metricsNamespace, Name: "rate_limit_refusals_total",
		Help:           "Requests answered at once because the program's rate limit had no start for them within their budget, by program.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"program"})
	rateLimitWaits = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: metricsNamespace, Name: "rate_limit_wait_seconds",
		Help:           "Time runs waited for their program's rate limit, by program.",
		Buckets:        []float64{0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 50},
		StabilityLevel: metrics.ALPHA,
	}, []string{"program"})
	programPauses = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: metricsNamespace, Name: "program_pauses_total",
		Help:           "Times a program was paused for a namespace, by program and reason (failures: failed runs in a row; slow_down: the program asked).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"program", "reason"})
	programPaused = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: metricsNamespace, Name: "program_paused",
		Help:           "1 while a program is paused for a namespace (until a run succeeds again), else 0.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"program", "namespace"})
	configLoaded = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: metricsNamespace, Name: "config_last_reload_successful",
		Help:           "1 when the last solver config load succeeded, 0 while an invalid file is being ignored.",
		StabilityLevel: metrics.ALPHA,
	})
)

var registerMetrics sync.Once

func init() {
	registerMetrics.Do(func() {
		legacyregistry.MustRegister(programRuns, programRunDuration, programRunsInFlight, challengeCalls, propagationChecks, configReloads, configLoaded, leaseWaits,
			rateLimitRefusals, rateLimitWaits, programPauses, programPaused)
	})
}

// runOutcome classifies a run's error for program_runs_total.
func runOutcome(err error) string {
	var runErr *runner.RunError
	switch {
	case err == nil:
		return "success"
	case errors.As(err, &runErr) && runErr.Killed:
		return "timeout"
	case errors.As(err, &runErr) && runErr.StartErr != nil:
		return "start_error"
	}
	return "failure"
}
