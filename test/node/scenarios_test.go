//go:build node

package node

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// rawClusterIssuer: scenario 3. A ClusterIssuer whose program runs in RAW
// mode, with the permissions the chart grants RAW mode.
func (c *cluster) rawClusterIssuer(t *testing.T) {
	start := time.Now()
	c.apply(t, "clusterissuer-raw.yaml", nil)
	names := c.waitCertificateReady(t, "team-raw", "raw", 4*time.Minute)
	t.Logf("ClusterIssuer (RAW mode) -> Certificate Ready in %s, names %v", time.Since(start).Round(100*time.Millisecond), names)
	c.waitNoTXT(t, "_acme-challenge.raw.example.com")
	// RAW mode read the ClusterIssuer's ACME account key with the chart's grant.
	if !slices.ContainsFunc(c.AuditedRequests(t, webhookUser), func(e testbed.AuditEvent) bool {
		return e.Verb == "get" && strings.HasSuffix(e.RequestURI, "/namespaces/cert-manager/secrets/pebble-raw-account") && e.ResponseStatus.Code == 200
	}) {
		t.Error("the webhook never read the ClusterIssuer's account key Secret in cert-manager's namespace")
	}
}

// upgradeAddsProgram: scenario 4. A program added by `helm upgrade` reaches
// the running Pod through the ConfigMap volume, with no restart; a broken
// config is refused, the last good one kept, and the metrics say so.
func (c *cluster) upgradeAddsProgram(t *testing.T) {
	before := podRestarts(c.webhookPods(t))
	c.Kubectl(t, "create", "namespace", "team-b")
	c.Helm(t, "upgrade", release, c.chart(), "--namespace", namespace, "--reuse-values", "--wait",
		"--values", c.render(t, "values-team-b.yaml", nil))
	// The admission policy the upgrade changed reaches the API server's
	// admission a moment later; until then it refuses the new program.
	waitUntil(t, "the admission policy to admit team-b's Issuer", 30*time.Second, func() error {
		return c.tryApply(t, "issuer-team-b.yaml", nil)
	})
	c.apply(t, "certificate.yaml", map[string]string{"NAMESPACE": "team-b", "NAME": "added", "DNS_NAME": "added.team-b.example.com"})
	c.waitCertificateReady(t, "team-b", "added", 4*time.Minute)
	if after := podRestarts(c.webhookPods(t)); !maps.Equal(before, after) {
		t.Fatalf("webhook Pods (name: restarts) changed across the upgrade: before %v, after %v", before, after)
	}

	configMap, err := c.Kube.CoreV1().ConfigMaps(namespace).Get(context.Background(), fullname+"-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	good := configMap.Data["config.yaml"]
	configMap.Data["config.yaml"] = good + "\nprogramz: []\n"
	if _, err := c.Kube.CoreV1().ConfigMaps(namespace).Update(context.Background(), configMap, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the metrics to show the refused reload", 2*time.Minute, func() error {
		metrics, ok := c.scrape(t, "prometheus")
		if !ok {
			return fmt.Errorf("scrape failed: %s", metrics)
		}
		if v := testbed.MetricValue(metrics, "cert_manager_webhook_exec_config_last_reload_successful"); v != 0 {
			return fmt.Errorf("config_last_reload_successful = %v", v)
		}
		if v := testbed.MetricValue(metrics, `cert_manager_webhook_exec_config_reloads_total{result="invalid"}`); v < 1 {
			return fmt.Errorf(`config_reloads_total{result="invalid"} = %v`, v)
		}
		return nil
	})
	// The program exists only in the last good config.
	c.apply(t, "certificate.yaml", map[string]string{"NAMESPACE": "team-b", "NAME": "kept", "DNS_NAME": "kept.team-b.example.com"})
	c.waitCertificateReady(t, "team-b", "kept", 4*time.Minute)
	// The runner, which ran the program, refused the file too.
	for _, pod := range c.webhookPods(t) {
		for _, container := range []string{"webhook", "runner"} {
			logs := c.Kubectl(t, "-n", namespace, "logs", pod.Name, "-c", container)
			if !strings.Contains(logs, "programz") {
				t.Errorf("the %s log of %s does not name the unknown key:\n%s", container, pod.Name, testbed.Tail(logs, 20))
			}
		}
	}
	// Fixed as an admin fixes a hand edit: helm upgrade puts the chart's
	// config back. Helm 4 applies server-side and refuses to overwrite a
	// field another manager (the edit above) set, until told to.
	if out, err := c.TryHelm("upgrade", release, c.chart(), "--namespace", namespace, "--reuse-values", "--wait"); err == nil ||
		!strings.Contains(out, "conflict occurred while applying object "+namespace+"/"+fullname+"-config") {
		t.Fatalf("helm upgrade over a hand-edited ConfigMap: %v\n%s\nwant Helm 4's conflict (docs/troubleshooting.md)", err, out)
	}
	c.Helm(t, "upgrade", release, c.chart(), "--namespace", namespace, "--reuse-values", "--wait", "--force-conflicts")
	if configMap, err = c.Kube.CoreV1().ConfigMaps(namespace).Get(context.Background(), fullname+"-config", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	} else if configMap.Data["config.yaml"] != good {
		t.Fatalf("after helm upgrade --force-conflicts the solver config is\n%s\nwant\n%s", configMap.Data["config.yaml"], good)
	}
	waitUntil(t, "the metrics to show a good reload", 2*time.Minute, func() error {
		metrics, _ := c.scrape(t, "prometheus")
		if v := testbed.MetricValue(metrics, "cert_manager_webhook_exec_config_last_reload_successful"); v != 1 {
			return fmt.Errorf("config_last_reload_successful = %v", v)
		}
		return nil
	})
}

func podRestarts(pods []corev1.Pod) map[string]int32 {
	out := map[string]int32{}
	for _, p := range pods {
		for _, s := range p.Status.ContainerStatuses {
			out[p.Name] += s.RestartCount
		}
	}
	return out
}

// metrics: scenario 6. Prometheus's service account, bound by the chart to
// its metrics-reader ClusterRole, scrapes; another account is refused.
func (c *cluster) metricsThroughAPIServer(t *testing.T) {
	metrics, ok := c.scrape(t, "prometheus")
	if !ok {
		t.Fatalf("scrape as monitoring/prometheus failed:\n%s", metrics)
	}
	for _, series := range []string{
		`cert_manager_webhook_exec_program_runs_total{action="present",outcome="success",program="nsupdate"}`,
		`cert_manager_webhook_exec_program_runs_total{action="cleanup",outcome="success",program="nsupdate"}`,
		`cert_manager_webhook_exec_program_runs_total{action="present",outcome="success",program="nsupdate-raw"}`,
		`cert_manager_webhook_exec_program_runs_total{action="present",outcome="success",program="nsupdate-team-b"}`,
		`cert_manager_webhook_exec_config_reloads_total{result="success"}`,
	} {
		if v := testbed.MetricValue(metrics, series); v < 1 {
			t.Errorf("%s = %v, want at least 1", series, v)
		}
	}
	if strings.Contains(metrics, c.bind.KeySecret) {
		t.Error("the TSIG secret appears in the metrics")
	}
	if out, ok := c.scrape(t, "default"); ok || !strings.Contains(out, "403") {
		t.Errorf("monitoring/default, without the metrics-reader binding, was not refused:\n%s", out)
	}
	monitor := c.Kubectl(t, "-n", namespace, "get", "servicemonitor", fullname, "-o", "jsonpath={.spec.endpoints[0].port} {.spec.selector.matchLabels}")
	if !strings.HasPrefix(monitor, "https ") {
		t.Errorf("ServiceMonitor endpoint/selector = %q", monitor)
	}
}

// checkInRunner: scenario 7. `check` as the chart's README has the admin run
// it: kubectl exec into the runner container, with the release's solver
// config, the values an Issuer's Secret would give in its environment.
func (c *cluster) checkInRunner(t *testing.T) {
	out, err := c.TryKubectl(append([]string{"-n", namespace, "exec", "deploy/" + fullname, "-c", "runner", "--"},
		c.checkCommand("nsupdate", "check.example.com")...)...)
	if err != nil {
		t.Errorf("check failed: %v", err)
	}
	want := `PASS: program "nsupdate" presents and cleans up _acme-challenge.check.example.com. as cert-manager needs`
	if !strings.Contains(out, want) {
		t.Errorf("check's report lacks %q:\n%s", want, out)
	}
	if strings.Contains(out, c.bind.KeySecret) {
		t.Error("the TSIG secret appears in check's report")
	}
	c.waitNoTXT(t, "_acme-challenge.check.example.com")
}

// checkCommand is `check` of program against BIND, with the values an
// Issuer's Secret would give as the README passes them, through env.
func (c *cluster) checkCommand(program, domain string, flags ...string) []string {
	return append([]string{"env",
		"NSUPDATE_SERVER=" + c.IP, "NSUPDATE_PORT=" + c.vars["BIND_PORT"], "NSUPDATE_ZONE=" + zone,
		"TSIG_KEY_NAME=" + c.bind.KeyName, "TSIG_SECRET=" + c.bind.KeySecret,
		"cert-manager-webhook-exec", "check", "--program", program, "--domain", domain, "--nameserver", c.bind.Addr}, flags...)
}

// highAvailability: scenario 5. Two replicas behind a PodDisruptionBudget
// and zone Leases: an eviction while Certificates are issued, then a rolling
// upgrade, and every Certificate still becomes Ready.
func (c *cluster) highAvailability(t *testing.T) {
	c.Helm(t, "upgrade", release, c.chart(), "--namespace", namespace, "--reuse-values", "--wait",
		"--set", "replicaCount=2", "--set", "podDisruptionBudget.enabled=true")
	names := []string{"ha-1", "ha-2", "ha-3", "ha-4"}
	for _, name := range names {
		c.apply(t, "certificate.yaml", map[string]string{"NAMESPACE": "team-a", "NAME": name, "DNS_NAME": name + ".example.com"})
	}
	// A record presented: the webhook is in the middle of these issuances
	// (cert-manager sleeps 60 s after its self check before it goes on).
	waitUntil(t, "a presented record", 2*time.Minute, func() error {
		for _, name := range names {
			if len(c.bind.TXT(t, "_acme-challenge."+name+".example.com")) > 0 {
				return nil
			}
		}
		return fmt.Errorf("none yet")
	})
	waitUntil(t, "the PodDisruptionBudget to allow one disruption", time.Minute, func() error {
		pdb, err := c.Kube.PolicyV1().PodDisruptionBudgets(namespace).Get(context.Background(), fullname, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pdb.Status.DisruptionsAllowed != 1 {
			return fmt.Errorf("disruptionsAllowed %d", pdb.Status.DisruptionsAllowed)
		}
		return nil
	})
	pods := c.webhookPods(t)
	if len(pods) != 2 {
		t.Fatalf("%d webhook Pods, want 2", len(pods))
	}
	evict := func(pod string) error {
		return c.Kube.PolicyV1().Evictions(namespace).Evict(context.Background(), &policyv1.Eviction{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: pod},
		})
	}
	if err := evict(pods[0].Name); err != nil {
		t.Fatalf("evicting %s: %v", pods[0].Name, err)
	}
	if err := evict(pods[1].Name); !apierrors.IsTooManyRequests(err) {
		t.Errorf("evicting the second Pod while the first is replaced: %v, want the PodDisruptionBudget's refusal (429)", err)
	}
	c.Helm(t, "upgrade", release, c.chart(), "--namespace", namespace, "--reuse-values", "--wait",
		"--set", "podAnnotations.rolled=again")
	for _, name := range names {
		c.waitCertificateReady(t, "team-a", name, 5*time.Minute)
	}
	for _, name := range names {
		c.waitNoTXT(t, "_acme-challenge."+name+".example.com")
	}
}

// noForbidden completes scenario 1: across every scenario, the API server
// refused none of the webhook's requests.
func (c *cluster) noForbidden(t *testing.T) {
	requests := c.AuditedRequests(t, webhookUser)
	if len(requests) == 0 {
		t.Fatalf("the audit log has no request of %s", webhookUser)
	}
	for _, e := range requests {
		if e.ResponseStatus.Code == 403 {
			t.Errorf("forbidden: %s %s: %s", e.Verb, e.RequestURI, e.ResponseStatus.Message)
		}
	}
	for _, pod := range c.webhookPods(t) {
		for _, container := range []string{"webhook", "runner"} {
			if logs := c.Kubectl(t, "-n", namespace, "logs", pod.Name, "-c", container); strings.Contains(logs, "forbidden") {
				t.Errorf("the %s log of %s mentions forbidden:\n%s", container, pod.Name, logs)
			}
		}
	}
	t.Logf("%d requests of the webhook, none forbidden", len(requests))
}

// uninstall: scenario 8. Nothing of the release is left, namespaced or
// cluster-scoped, except the two Secrets cert-manager keeps for the chart's
// Certificates (labelled, and documented).
func (c *cluster) uninstall(t *testing.T) {
	c.Helm(t, "uninstall", release, "--namespace", namespace, "--wait")
	kinds := strings.Join(strings.Fields(c.Kubectl(t, "api-resources", "--verbs=list", "-o", "name")), ",")
	want := []string{"secret/" + fullname + "-ca", "secret/" + fullname + "-tls"}
	// The Pods take their grace period to stop after their ReplicaSet goes.
	waitUntil(t, "nothing of the release but cert-manager's Secrets", 2*time.Minute, func() error {
		left := strings.Fields(c.Kubectl(t, "get", kinds, "--all-namespaces", "-l", "app.kubernetes.io/instance="+release, "-o", "name"))
		slices.Sort(left)
		if !slices.Equal(left, want) {
			return fmt.Errorf("left: %q, want only cert-manager's %q", left, want)
		}
		return nil
	})
	// Each zone Lease goes with its Pod, through the garbage collector.
	waitUntil(t, "no zone Lease", time.Minute, func() error {
		if leases := c.Kubectl(t, "-n", namespace, "get", "leases", "-l", "app.kubernetes.io/component=exec-zone-lock", "-o", "yaml"); strings.Contains(leases, "kind: Lease") {
			return fmt.Errorf("zone Leases left:\n%s", leases)
		}
		return nil
	})
	if out := c.Kubectl(t, "get", "apiservices", "-o", "name"); strings.Contains(out, groupName) {
		t.Errorf("APIService left: %s", out)
	}
}

func (c *cluster) waitNoTXT(t *testing.T, name string) {
	t.Helper()
	waitUntil(t, "no TXT at "+name, time.Minute, func() error {
		if v := c.bind.TXT(t, name); len(v) > 0 {
			return fmt.Errorf("TXT %q", v)
		}
		return nil
	})
}

func (c *cluster) chart() string { return filepath.Join(c.root, "charts", "cert-manager-webhook-exec") }
