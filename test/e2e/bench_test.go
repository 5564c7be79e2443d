//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/solver"
)

// BenchmarkWebhookProcess measures the webhook as cert-manager sees it, run as
// the chart runs it (a webhook process and a runner process): the webhook
// process's start-to-ready time, the idle RSS of both, and the latency a
// Present of /bin/true gains through kube-apiserver → aggregated API → webhook
// process → runner process, against the same solver called in-process. The
// webhook process's idle RSS is compared with a solver that does nothing on the
// same framework (cmd.RunWebhookServer), built alike and started alike against
// the same API server: most of the footprint is the framework's, which no
// solver on it avoids. The runner's, which serves no API, is reported beside
// it. Targets: ready <= 2s, the webhook process's idle RSS within 10 MiB of the
// do-nothing solver's, added p50 <= 10 ms. Run with -benchtime 1x: each run
// takes `samples` of each path.
func BenchmarkWebhookProcess(b *testing.B) {
	const samples = 300
	root := testbed.RepoRoot(b)
	cp := testbed.StartControlPlane(b, testbed.ControlPlaneOptions{Aggregation: true})
	cfgPath := filepath.Join(b.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgPath, []byte("programs:\n- name: bin-true\n  path: /bin/true\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	// Runs make their directories on tmpfs in both paths, as in the chart's
	// memory-backed /tmp: on this disk file system a directory alone can cost
	// more than the run.
	runsDir, ok := testbed.MemoryBackedDir(b)
	if !ok {
		b.Skip("no tmpfs at /dev/shm to make run directories on, as the chart's memory-backed /tmp")
	}
	webhook := testbed.StartWebhook(b, cp, testbed.BuildWebhook(b, root, b.TempDir()), "acme.bench.example", "cert-manager", b.TempDir(),
		testbed.WebhookEnv{Config: []string{"EXEC_CONFIG=" + cfgPath}, Runner: []string{"TMPDIR=" + runsDir}})
	nop := testbed.StartNopWebhook(b, cp, testbed.BuildNopWebhook(b, root, b.TempDir()), "acme.nop.example", "nop-webhook", b.TempDir())
	time.Sleep(3 * time.Second)
	idleRSS, idleAnon := webhook.Memory(b, "VmRSS"), webhook.Memory(b, "RssAnon")
	runnerRSS, runnerAnon := webhook.Runner.Memory(b, "VmRSS"), webhook.Runner.Memory(b, "RssAnon")
	floorRSS, floorAnon := nop.Memory(b, "VmRSS"), nop.Memory(b, "RssAnon")

	b.Setenv("TMPDIR", runsDir)
	inProcess := solver.New(solver.WithGetenv(func(k string) string { return map[string]string{solver.EnvConfig: cfgPath}[k] }))
	stop := make(chan struct{})
	defer close(stop)
	if err := inProcess.Initialize(cp.Config, stop); err != nil {
		b.Fatal(err)
	}
	req := &whapi.ChallengeRequest{
		Action: whapi.ChallengeActionPresent, Type: "dns-01", DNSName: "www.example.com", Key: "value",
		ResolvedFQDN: "_acme-challenge.www.example.com.", ResolvedZone: "example.com.", ResourceNamespace: "default",
		Config: &apiextensionsv1.JSON{Raw: []byte(`{}`)},
	}
	payload, err := json.Marshal(map[string]any{"apiVersion": whapi.SchemeGroupVersion.String(), "kind": "ChallengePayload", "request": req})
	if err != nil {
		b.Fatal(err)
	}
	rest := cp.Kube.CoreV1().RESTClient()
	viaAPI := func() {
		raw, err := rest.Post().AbsPath("/apis/acme.bench.example/v1alpha1/exec").SetHeader("Content-Type", "application/json").
			Body(payload).Do(context.Background()).Raw()
		if err != nil {
			b.Fatal(err)
		}
		var resp whapi.ChallengePayload
		if err := json.Unmarshal(raw, &resp); err != nil || resp.Response == nil || !resp.Response.Success {
			b.Fatalf("Present through the API server failed: %s", raw)
		}
	}
	direct := func() {
		if err := inProcess.Present(req); err != nil {
			b.Fatal(err)
		}
	}
	var api, local []time.Duration
	for i := 0; i < b.N; i++ {
		for range samples {
			start := time.Now()
			viaAPI()
			api = append(api, time.Since(start))
			start = time.Now()
			direct()
			local = append(local, time.Since(start))
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(webhook.StartToReady.Seconds(), "start-to-ready-s")
	b.ReportMetric(mib(idleRSS), "idle-rss-MiB")
	b.ReportMetric(mib(floorRSS), "nop-idle-rss-MiB")
	b.ReportMetric(mib(idleRSS-floorRSS), "idle-rss-above-nop-MiB")
	b.ReportMetric(mib(idleAnon), "idle-rss-anon-MiB")
	b.ReportMetric(mib(floorAnon), "nop-idle-rss-anon-MiB")
	b.ReportMetric(mib(runnerRSS), "runner-idle-rss-MiB")
	b.ReportMetric(mib(runnerAnon), "runner-idle-rss-anon-MiB")
	b.ReportMetric(ms(percentile(local, 50)), "in-process-p50-ms")
	b.ReportMetric(ms(percentile(api, 50)), "via-apiserver-p50-ms")
	b.ReportMetric(ms(percentile(api, 50)-percentile(local, 50)), "added-p50-ms")
	b.ReportMetric(ms(percentile(api, 99)-percentile(local, 99)), "added-p99-ms")
	b.ReportMetric(mib(webhook.Memory(b, "VmRSS")), "rss-after-MiB")
	b.ReportMetric(mib(webhook.Runner.Memory(b, "VmRSS")), "runner-rss-after-MiB")
}

func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }

func percentile(samples []time.Duration, p int) time.Duration {
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	return sorted[(len(sorted)-1)*p/100]
}
