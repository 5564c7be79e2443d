//go:build e2e

// Package e2e issues certificates with cert-manager from a real ACME server
// (Pebble) through this webhook, running as its webhook and runner processes
// behind an APIService, with BIND9 as the DNS server Pebble validates against.
package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	"golang.org/x/crypto/acme"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

const readyTimeout = 5 * time.Minute

func TestEndToEnd(t *testing.T) {
	// Beside the other long scenario: each runs its own stack on free ports.
	t.Parallel()
	root := testbed.RepoRoot(t)
	logDir := t.TempDir()
	argvLog := filepath.Join(t.TempDir(), "raw-argv")
	var vars map[string]string
	stack := testbed.StartStack(t, testbed.StackOptions{
		RepoRoot: root,
		LogDir:   logDir,
		Zone:     "example.com",
		SolverConfig: func(bind *testbed.BIND) string {
			vars = map[string]string{
				"REPO": root, "BIND_PORT": strconv.Itoa(bind.Port), "ARGV_LOG": argvLog,
				"TSIG_KEY_NAME": bind.KeyName, "TSIG_SECRET": bind.KeySecret,
				"FLAKY_PATH": filepath.Join(root, "testdata", "programs", "fail.sh"),
			}
			return testbed.Expand(t, readConfigTemplate(t, root), vars)
		},
		RunnerEnv: func(bind *testbed.BIND) []string { return []string{"TSIG_SECRET=" + bind.KeySecret} },
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range []*testbed.Process{stack.Webhook.Process, stack.Webhook.Runner, stack.CertManager, stack.Pebble.Process} {
				t.Logf("=== %s log (last 60 lines):\n%s", p.Name, testbed.Tail(p.Log(), 60))
			}
			t.Logf("=== named log:\n%s", testbed.Tail(stack.BIND.Log(), 40))
		}
	})

	t.Run("scenarios", func(t *testing.T) { scenarios(t, stack, root, argvLog, vars) })
	t.Run("metrics", func(t *testing.T) { checkMetrics(t, stack) })
}

func scenarios(t *testing.T, stack *testbed.Stack, root, argvLog string, vars map[string]string) {
	// A name and its wildcard through an Issuer in default mode is the node
	// suite's (test/node), through the webhook Pod as users install it.
	t.Run("RAW mode through a ClusterIssuer", func(t *testing.T) {
		t.Parallel()
		stack.CreateClusterIssuer(t, "exec-raw", `{"program":"nsupdate-raw"}`)
		stack.CreateCertificate(t, "team-raw", "raw", cmmeta.IssuerReference{Name: "exec-raw", Kind: "ClusterIssuer"}, "raw.example.com")
		stack.WaitCertificateReady(t, "team-raw", "raw", readyTimeout)
		stack.WaitNoTXT(t, "_acme-challenge.raw.example.com.", time.Minute)

		account, err := stack.CP.Kube.CoreV1().Secrets("cert-manager").Get(context.Background(), "exec-raw-account", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		key, err := pki.DecodePrivateKeyBytes(account.Data["tls.key"])
		if err != nil {
			t.Fatal(err)
		}
		thumb, err := acme.JWKThumbprint(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		var presents, cleanups int
		for _, call := range testbed.ReadCalls(t, argvLog) {
			if len(call) != 5 || call[1] != "--" || call[2] != "raw.example.com" {
				t.Errorf("unexpected RAW argv %q", call)
				continue
			}
			if token, keyAuth := call[3], call[4]; token == "" || keyAuth != token+"."+thumb {
				t.Errorf("keyAuth %q is not token %q + the account's thumbprint %q", keyAuth, token, thumb)
			}
			switch call[0] {
			case "present":
				presents++
			case "cleanup":
				cleanups++
			}
		}
		if presents == 0 || cleanups == 0 {
			t.Errorf("RAW program ran present %d and cleanup %d times", presents, cleanups)
		}
	})

	t.Run("failing program, fixed by a config reload", func(t *testing.T) {
		t.Parallel()
		stack.CreateIssuer(t, "team-flaky", "exec", `{"program":"flaky"}`)
		stack.CreateCertificate(t, "team-flaky", "flaky", cmmeta.IssuerReference{Name: "exec", Kind: "Issuer"}, "flaky.example.com")
		reason := stack.WaitChallengeReason(t, "team-flaky", `program "flaky" present exited with status 3`, readyTimeout)
		if !strings.Contains(reason, "error: API said 403 for token unset") {
			t.Errorf("reason %q lacks the program's stderr", reason)
		}
		fixed := map[string]string{}
		for k, v := range vars {
			fixed[k] = v
		}
		fixed["FLAKY_PATH"] = filepath.Join(root, "examples", "nsupdate.sh")
		stack.Config.Write(t, map[string]string{"config.yaml": testbed.Expand(t, readConfigTemplate(t, root), fixed)})
		stack.WaitCertificateReady(t, "team-flaky", "flaky", readyTimeout)
		if stack.Webhook.Exited() {
			t.Error("the webhook restarted")
		}
		if stack.Webhook.Runner.Exited() {
			t.Error("the runner exited")
		}
	})

	t.Run("credentials from the Issuer's namespace only", func(t *testing.T) {
		t.Parallel()
		issuerConfig := `{"program":"nsupdate-issuer-secret","env":{"TSIG_SECRET":{"secretKeyRef":{"name":"tsig","key":"secret"}}}}`
		stack.CreateIssuer(t, "team-secret", "exec", issuerConfig)
		tsig := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-secret", Name: "tsig"}, StringData: map[string]string{"secret": stack.BIND.KeySecret}}
		if _, err := stack.CP.Kube.CoreV1().Secrets("team-secret").Create(context.Background(), tsig, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		stack.CreateIssuer(t, "team-other", "exec", issuerConfig)
		stack.CreateCertificate(t, "team-secret", "secret", cmmeta.IssuerReference{Name: "exec", Kind: "Issuer"}, "secret.example.com")
		stack.CreateCertificate(t, "team-other", "other", cmmeta.IssuerReference{Name: "exec", Kind: "Issuer"}, "other.example.com")
		stack.WaitCertificateReady(t, "team-secret", "secret", readyTimeout)
		stack.WaitChallengeReason(t, "team-other", "env TSIG_SECRET: secret team-other/tsig not found", readyTimeout)
		if got := stack.BIND.TXT(t, "_acme-challenge.other.example.com."); len(got) != 0 {
			t.Errorf("a record was presented for team-other: %q", got)
		}
		for _, p := range []*testbed.Process{stack.Webhook.Process, stack.Webhook.Runner} {
			if strings.Contains(p.Log(), stack.BIND.KeySecret) {
				t.Errorf("the TSIG secret appears in the %s's log", p.Name)
			}
		}
	})

	t.Run("program policy: namespace and domain; admin credentials in the runner only", func(t *testing.T) {
		t.Parallel()
		config := `{"program":"nsupdate-policy"}`
		stack.CreateIssuer(t, "team-policy", "exec", config)
		stack.CreateIssuer(t, "team-stranger", "exec", config)
		stack.CreateCertificate(t, "team-policy", "allowed", cmmeta.IssuerReference{Name: "exec", Kind: "Issuer"}, "www.policy.example.com", "*.policy.example.com")
		stack.CreateCertificate(t, "team-policy", "stray", cmmeta.IssuerReference{Name: "exec", Kind: "Issuer"}, "stray.example.com")
		stack.CreateCertificate(t, "team-stranger", "stranger", cmmeta.IssuerReference{Name: "exec", Kind: "Issuer"}, "stranger.policy.example.com")
		reason := stack.WaitChallengeReason(t, "team-stranger",
			`program "nsupdate-policy" may not be used from namespace "team-stranger"; ask the cluster admin to add it to the program's allowedNamespaces`, readyTimeout)
		t.Logf("team-stranger's Challenge: %s", reason)
		reason = stack.WaitChallengeReason(t, "team-policy",
			`program "nsupdate-policy" may not be used for "stray.example.com"; ask the cluster admin to add it to the program's allowedDomains`, readyTimeout)
		t.Logf("team-policy's Challenge for stray.example.com: %s", reason)
		stack.WaitCertificateReady(t, "team-policy", "allowed", readyTimeout)
		// BIND took the program's updates signed with TSIG_SECRET, which
		// passEnv copied from the runner's environment: the webhook's has none.
		checkCredentialInRunnerOnly(t, stack, "TSIG_SECRET", stack.BIND.KeySecret)
		for _, name := range []string{"_acme-challenge.stray.example.com.", "_acme-challenge.stranger.policy.example.com."} {
			if got := stack.BIND.TXT(t, name); len(got) != 0 {
				t.Errorf("a record was presented at %s against the policy: %q", name, got)
			}
		}
	})
}

// checkCredentialInRunnerOnly checks that the variable name, with value, is
// in the runner process's environment and neither is in the webhook
// process's, as the chart splits them between its containers.
func checkCredentialInRunnerOnly(t *testing.T, stack *testbed.Stack, name, value string) {
	t.Helper()
	if !slices.Contains(stack.Webhook.Runner.Environ(t), name+"="+value) {
		t.Errorf("the runner process's environment lacks %s", name)
	}
	for _, kv := range stack.Webhook.Environ(t) {
		if strings.HasPrefix(kv, name+"=") || strings.Contains(kv, value) {
			key, _, _ := strings.Cut(kv, "=")
			t.Errorf("the webhook process's environment holds the program credential %s (in %s)", name, key)
		}
	}
}

// checkMetrics scrapes the running webhook after the scenarios.
func checkMetrics(t *testing.T, stack *testbed.Stack) {
	// cert-manager cleans up a certificate's Challenges once it is issued, so
	// a cleanup may still run as the scenarios end: wait for the runs to end
	// (a program's timeout is 20 s). A run left counted keeps the gauge up.
	const inFlight = "cert_manager_webhook_exec_program_runs_in_flight"
	metrics := stack.Webhook.Metrics(t)
	for deadline := time.Now().Add(30 * time.Second); testbed.MetricValue(metrics, inFlight) != 0 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		metrics = stack.Webhook.Metrics(t)
	}
	for _, series := range []string{
		`cert_manager_webhook_exec_program_runs_total{action="present",outcome="success",program="nsupdate-issuer-secret"}`,
		`cert_manager_webhook_exec_program_runs_total{action="cleanup",outcome="success",program="nsupdate-issuer-secret"}`,
		`cert_manager_webhook_exec_program_runs_total{action="present",outcome="failure",program="flaky"}`,
		`cert_manager_webhook_exec_program_runs_total{action="present",outcome="success",program="nsupdate-raw"}`,
		`cert_manager_webhook_exec_program_run_duration_seconds_count{action="present",program="nsupdate-issuer-secret"}`,
		`cert_manager_webhook_exec_challenge_calls_total{action="present",result="error"}`,
		`cert_manager_webhook_exec_config_reloads_total{result="success"}`,
		`cert_manager_webhook_exec_config_last_reload_successful`,
	} {
		if v := testbed.MetricValue(metrics, series); v < 1 {
			t.Errorf("%s = %v, want at least 1", series, v)
		}
	}
	if v := testbed.MetricValue(metrics, inFlight); v != 0 {
		t.Errorf("runs in flight = %v 30 s after the scenarios ended", v)
	}
	if strings.Contains(metrics, stack.BIND.KeySecret) {
		t.Error("the TSIG secret appears in the metrics")
	}
}

func readConfigTemplate(t testing.TB, root string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "testdata", "e2e", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
