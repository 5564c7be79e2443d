//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// breakerConfig is the same provider stand-in as two programs, one with the
// default breaker and one without, so one stack measures both.
const breakerConfig = `programs:
- name: provider
  path: ${REPO}/testdata/programs/counted-provider.sh
  timeout: 20s
  env: &env
    CALL_LOG: ${CALL_LOG}
    MISCONFIGURED: ${MISCONFIGURED}
    NSUPDATE_PROGRAM: ${REPO}/examples/nsupdate.sh
    NSUPDATE_SERVER: "127.0.0.1"
    NSUPDATE_PORT: "${BIND_PORT}"
    TSIG_KEY_NAME: ${TSIG_KEY_NAME}
    TSIG_SECRET: ${TSIG_SECRET}
- name: provider-no-breaker
  path: ${REPO}/testdata/programs/counted-provider.sh
  timeout: 20s
  env: *env
  breaker: {failures: 0}
`

// TestBreakerSparesProvider measures what the breaker spares a provider whose
// credential has expired (issue 22): 20 Certificates in each of two
// namespaces, one whose program has the default breaker and one whose program
// has none (cert-manager's own backoff alone), created at once while every
// provider call fails; the misconfiguration is fixed after a fixed window.
// It counts the provider calls in the window and times the fix to the last
// Ready Certificate in each namespace.
func TestBreakerSparesProvider(t *testing.T) {
	// Beside the other long scenario: each runs its own stack on free ports.
	t.Parallel()
	const (
		certificates = 20
		// Long enough for cert-manager's backoff (5 s doubling) to retry
		// each Challenge four times and the breaker to pause three times.
		window = 90 * time.Second
		// Without the breaker the Challenges retry within 80 s of the fix.
		// With it, the fix may land in a pause of up to 80 s, and
		// Challenges refused in it retry 160 s later.
		recoveryBudget = 5 * time.Minute
	)
	root := testbed.RepoRoot(t)
	callLog := filepath.Join(t.TempDir(), "calls")
	misconfigured := testbed.WriteFile(t, t.TempDir(), "misconfigured", nil)
	stack := testbed.StartStack(t, testbed.StackOptions{
		RepoRoot: root,
		LogDir:   t.TempDir(),
		Zone:     "example.com",
		SolverConfig: func(bind *testbed.BIND) string {
			return testbed.Expand(t, breakerConfig, map[string]string{
				"REPO": root, "BIND_PORT": strconv.Itoa(bind.Port), "CALL_LOG": callLog, "MISCONFIGURED": misconfigured,
				"TSIG_KEY_NAME": bind.KeyName, "TSIG_SECRET": bind.KeySecret,
			})
		},
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range []*testbed.Process{stack.Webhook.Process, stack.Webhook.Runner, stack.CertManager} {
				t.Logf("=== %s log (last 60 lines):\n%s", p.Name, testbed.Tail(p.Log(), 60))
			}
		}
	})

	namespaces := map[string]string{"breaker-on": "provider", "breaker-off": "provider-no-breaker"}
	for ns, program := range namespaces {
		spec := stack.IssuerSpec("exec-account", fmt.Sprintf(`{"program":%q}`, program))
		// nsupdate.sh returns once BIND serves the record, so the ACME server
		// is asked at once, without the self check's 60 s sleep: what is
		// measured is the provider's calls and cert-manager's backoff.
		spec.ACME.Solvers[0].WaitInsteadOfSelfCheck = &metav1.Duration{}
		stack.CreateIssuerWithSpec(t, ns, "exec", spec)
	}
	start := time.Now()
	for ns := range namespaces {
		for i := range certificates {
			name := fmt.Sprintf("c%02d", i)
			stack.CreateCertificate(t, ns, name, cmmeta.IssuerReference{Name: "exec", Kind: "Issuer"}, name+"."+ns+".example.com")
		}
	}
	t.Logf("created %d Certificates in each of %d namespaces in %s", certificates, len(namespaces), time.Since(start).Round(100*time.Millisecond))

	// The Challenges say why while it lasts: the program's failure, and the
	// pause in the namespace with the breaker.
	stack.WaitChallengeReason(t, "breaker-off", "API said 401 unauthorized", window)
	stack.WaitChallengeReason(t, "breaker-on", `program "provider" is paused for namespace "breaker-on" after 5 failed runs in a row`, window)
	time.Sleep(time.Until(start.Add(window)))
	inWindow := countCalls(t, callLog)
	if err := os.Remove(misconfigured); err != nil {
		t.Fatal(err)
	}
	fixed := time.Now()

	last := waitAllReady(t, stack, namespaces, certificates, recoveryBudget)
	all := countCalls(t, callLog)
	firstAfterFix := firstCallSince(t, callLog, fixed)
	metrics := stack.Webhook.Metrics(t)
	pauses := testbed.MetricValue(metrics, `cert_manager_webhook_exec_program_pauses_total{program="provider",reason="failures"}`)

	on, off := inWindow["breaker-on"], inWindow["breaker-off"]
	t.Logf("MEASURED provider calls in the %s window, %d Certificates per namespace: with the breaker %d (paused %v times), without %d (cert-manager's backoff alone)",
		window, certificates, on, pauses, off)
	for _, ns := range []string{"breaker-on", "breaker-off"} {
		t.Logf("MEASURED %s: fix -> first provider call %s, -> all %d Certificates Ready %s; provider calls from the fix to the last Ready %d (presents and cleanups)",
			ns, firstAfterFix[ns].Sub(fixed.Truncate(time.Second)), certificates, last[ns].Sub(fixed).Round(time.Second), all[ns]-inWindow[ns])
	}
	// cert-manager retried each Challenge in the window: the comparison
	// measures its backoff, not Challenges that never got to run.
	if off < 2*certificates {
		t.Errorf("without the breaker the provider was called %d times in %s, fewer than twice per Challenge", off, window)
	}
	if on == 0 || 2*on > off {
		t.Errorf("with the breaker the provider was called %d times in %s, without %d: want some and at most half", on, window, off)
	}
}

// countCalls counts the provider stand-in's calls by namespace.
func countCalls(t *testing.T, callLog string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, call := range readCallLog(t, callLog) {
		counts[call.namespace]++
	}
	return counts
}

// firstCallSince returns each namespace's first call at or after since, to
// the second the stand-in writes.
func firstCallSince(t *testing.T, callLog string, since time.Time) map[string]time.Time {
	t.Helper()
	first := map[string]time.Time{}
	for _, call := range readCallLog(t, callLog) {
		if _, seen := first[call.namespace]; !seen && !call.at.Before(since.Truncate(time.Second)) {
			first[call.namespace] = call.at
		}
	}
	return first
}

type providerCall struct {
	at        time.Time
	namespace string
}

// readCallLog reads the lines "<unix seconds> <namespace> <action>" of
// testdata/programs/counted-provider.sh.
func readCallLog(t *testing.T, callLog string) []providerCall {
	t.Helper()
	data, err := os.ReadFile(callLog)
	if err != nil {
		t.Fatal(err)
	}
	var calls []providerCall
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 3 {
			t.Fatalf("call log line %q is not <unix seconds> <namespace> <action>", line)
		}
		seconds, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			t.Fatalf("call log line %q: %v", line, err)
		}
		calls = append(calls, providerCall{at: time.Unix(seconds, 0), namespace: fields[1]})
	}
	return calls
}

// waitAllReady waits until the n Certificates of each namespace are Ready and
// returns when the last of each became Ready, seen by polling each second.
func waitAllReady(t *testing.T, stack *testbed.Stack, namespaces map[string]string, n int, timeout time.Duration) map[string]time.Time {
	t.Helper()
	last := map[string]time.Time{}
	for deadline := time.Now().Add(timeout); len(last) < len(namespaces); time.Sleep(time.Second) {
		for ns := range namespaces {
			if _, done := last[ns]; done {
				continue
			}
			list, err := stack.CP.CM.CertmanagerV1().Certificates(ns).List(context.Background(), metav1.ListOptions{})
			if err != nil {
				continue
			}
			ready := 0
			for _, cert := range list.Items {
				for _, c := range cert.Status.Conditions {
					if c.Type == cmapi.CertificateConditionReady && c.Status == cmmeta.ConditionTrue {
						ready++
					}
				}
			}
			if ready == n {
				last[ns] = time.Now()
			}
		}
		if len(last) < len(namespaces) && time.Now().After(deadline) {
			t.Fatalf("Certificates not all Ready %s after the fix (done: %v); challenges:\n%s", timeout, last, stack.DescribeChallenges(t))
		}
	}
	return last
}
