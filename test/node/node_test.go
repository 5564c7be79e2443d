//go:build node

// Package node installs the webhook as users do: the image built by
// `make image`, `helm install` into cert-manager's namespace on a real
// Kubernetes node with cert-manager's controllers and cainjector as Pods, and
// certificates issued by Pebble through the webhook Pod. `make e2e-node` runs
// it in a network namespace of its own.
package node

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

const (
	zone      = "example.com"
	release   = "exec-webhook"
	groupName = "acme.example.com"
	namespace = "cert-manager"
	// fullname is the chart's name for the release's objects.
	fullname = release + "-cert-manager-webhook-exec"
	// webhookUser is the webhook's identity on the API server.
	webhookUser = "system:serviceaccount:" + namespace + ":" + fullname
)

// cluster is the node with cert-manager, BIND, Pebble and the webhook's
// release, shared by the scenarios, which run in order.
type cluster struct {
	*testbed.Node
	root   string
	helm   string
	bind   *testbed.BIND
	pebble *testbed.Pebble
	// webhookRepo and webhookTag name the image `make image` built.
	webhookRepo, webhookTag string
	vars                    map[string]string
	// tmp holds rendered manifests.
	tmp string
	// installed is when helm install started; installOutput is what it
	// printed, the NOTES among it.
	installed     time.Time
	installOutput string
	// scrapes counts scrape Pods, for their names.
	scrapes int
	// registryPath (host:port/cert-manager-webhook-exec) is where the
	// releases made into the node's registry are, each ending in releases;
	// registryCA is its CA's PEM file.
	registryPath, registryCA string
	releases                 chan published
	// cosign signs and verifies them with cosignKeys.
	cosign     string
	cosignKeys testbed.CosignKeyPair
}

func TestNode(t *testing.T) {
	root := testbed.RepoRoot(t)
	// The logs outlive a failed run (a t.TempDir would not), for its
	// post-mortem; a passing run removes them unless NODE_LOG_DIR named them.
	logDir := os.Getenv("NODE_LOG_DIR")
	if logDir == "" {
		dir, err := os.MkdirTemp("", "node-test-logs-")
		if err != nil {
			t.Fatal(err)
		}
		logDir = dir
		t.Cleanup(func() {
			if !t.Failed() {
				_ = os.RemoveAll(dir)
			}
		})
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs of every component: %s", logDir)
		}
	})
	images := nodeImages(t)
	n := testbed.StartNode(t, testbed.NodeOptions{
		RepoRoot:   root,
		LogDir:     logDir,
		Images:     []string{images["pause"].archive, images["cert-manager"].archive, images["webhook"].archive},
		PauseImage: images["pause"].ref,
		Step:       t.Logf,
	})
	c := &cluster{Node: n, root: root, helm: testbed.Asset(t, root, "helm"), tmp: t.TempDir()}
	// The releases are made into it while the scenarios before the last run.
	c.startRegistry(t)
	t.Cleanup(func() {
		if t.Failed() {
			c.savePodLogs(t, logDir)
		}
	})
	c.webhookRepo, c.webhookTag, _ = strings.Cut(images["webhook"].ref, ":")
	// On port 53: the README's Issuer, as users copy it, names no port.
	c.bind = testbed.StartBINDOnPort(t, zone, n.IP, 53)
	c.pebble = testbed.StartPebbleOn(t, testbed.Asset(t, root, "pebble"), c.bind.Addr, logDir, "0.0.0.0", "pebble")
	c.vars = map[string]string{
		"NODE_IP":       n.IP,
		"BIND_PORT":     fmt.Sprint(c.bind.Port),
		"TSIG_KEY_NAME": c.bind.KeyName,
		"TSIG_SECRET":   c.bind.KeySecret,
		"PEBBLE_URL":    c.pebble.DirectoryURL,
		"PEBBLE_CA_B64": base64.StdEncoding.EncodeToString(c.pebble.CABundle),
		"GROUP_NAME":    groupName,
	}
	c.installCertManager(t, images["cert-manager"].ref)

	// The scenarios run in order, each on what the ones before left. The
	// first Certificate waits two minutes for cert-manager's sleeps after
	// its self checks; the scenarios that do not need it run meanwhile.
	steps := []scenario{
		{"install", c.install},
		{"while the first Certificate is issued", func(t *testing.T) {
			inParallel(t,
				scenario{"Issuer with its own TSIG Secret: a name and its wildcard", c.issuerWithOwnSecret},
				scenario{"RAW mode then an upgrade then check", func(t *testing.T) {
					inOrder(t,
						scenario{"RAW mode through a ClusterIssuer", c.rawClusterIssuer},
						scenario{"helm upgrade adds a program without a restart; a broken config keeps the last good one", c.upgradeAddsProgram},
						scenario{"check in the runner container against BIND", c.checkInRunner})
				}},
				scenario{"copied as it is: the NOTES' Issuer and Secret", c.notesIssuer},
				scenario{"copied as it is: the documented Issuer and ClusterIssuer", c.documentedIssuers},
				scenario{"copied as it is: deploy/examples", c.deployExamples},
				scenario{"copied as it is: the README's admin credential from a mounted Secret, rotated by kubectl apply alone", c.adminCredential})
		}},
		{"metrics scraped as the ServiceMonitor does", c.metricsThroughAPIServer},
		{"a program sees only its own run: a spy beside another tenant's run, under check, and in the old layout", c.spy},
		{"two replicas: an eviction and a rolling upgrade during issuance", c.highAvailability},
		{"no request of the webhook was forbidden", c.noForbidden},
		{"helm uninstall leaves nothing behind", c.uninstall},
		{"from a registry as the README shows: verified, installed, upgraded and rolled back", c.fromRegistry},
	}
	inOrder(t, steps...)
}

// scenario is a named step of the node test.
type scenario struct {
	name string
	run  func(*testing.T)
}

// inOrder runs scenarios one after the other, stopping at the first failure.
func inOrder(t *testing.T, scenarios ...scenario) {
	for _, s := range scenarios {
		if !t.Run(s.name, s.run) {
			t.FailNow()
		}
	}
}

// inParallel runs scenarios side by side, as subtests of t; t ends when
// they all have.
func inParallel(t *testing.T, scenarios ...scenario) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			s.run(t)
		})
	}
}

// image is a docker-archive tarball and the reference it holds.
type image struct{ archive, ref string }

// nodeImages reads the images make e2e-node built: NODE_IMAGES holds
// hack/node-images.sh's "name=archive ref" lines, WEBHOOK_IMAGE the webhook's.
func nodeImages(t *testing.T) map[string]image {
	t.Helper()
	images := map[string]image{}
	lines := os.Getenv("NODE_IMAGES") + "\n" + os.Getenv("WEBHOOK_IMAGE")
	for _, line := range strings.Split(lines, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		archive, ref, _ := strings.Cut(rest, " ")
		images[name] = image{archive: archive, ref: ref}
	}
	for _, name := range []string{"pause", "cert-manager", "webhook"} {
		if images[name].ref == "" {
			t.Fatalf("image %q missing from NODE_IMAGES/WEBHOOK_IMAGE: run the test with `make e2e-node`", name)
		}
	}
	return images
}

// render expands a file under testdata with the cluster's vars and extra
// into a temporary file, and returns its path.
func (c *cluster) render(t *testing.T, name string, extra map[string]string) string {
	t.Helper()
	vars := maps.Clone(c.vars)
	maps.Copy(vars, extra)
	return c.writeTemp(t, name, testbed.Expand(t, string(readFile(t, filepath.Join("testdata", name))), vars))
}

// writeTemp writes text to a new file called name and returns its path.
func (c *cluster) writeTemp(t *testing.T, name, text string) string {
	t.Helper()
	// Not in t.TempDir(): a subtest's name may hold a comma, which kubectl -f
	// and helm --values split on.
	dir, err := os.MkdirTemp(c.tmp, "file-")
	if err != nil {
		t.Fatal(err)
	}
	return testbed.WriteFile(t, dir, name, []byte(text))
}

// tryApply renders a manifest under testdata and applies it server-side,
// returning kubectl's complaint if it fails.
func (c *cluster) tryApply(t *testing.T, manifest string, extra map[string]string) error {
	t.Helper()
	_, err := c.TryKubectl("apply", "--server-side", "-f", c.render(t, manifest, extra))
	return err
}

// apply renders a manifest under testdata and applies it server-side.
func (c *cluster) apply(t *testing.T, manifest string, extra map[string]string) {
	t.Helper()
	c.Kubectl(t, "apply", "--server-side", "-f", c.render(t, manifest, extra))
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// installCertManager installs cert-manager's CRDs and runs its controllers and
// cainjector as Pods, checking DNS-01 records with BIND only.
func (c *cluster) installCertManager(t *testing.T, ref string) {
	t.Helper()
	start := time.Now()
	c.Kubectl(t, "apply", "--server-side", "-f", testbed.CertManagerCRDs(t))
	// The Prometheus Operator's own ServiceMonitor CRD, for the chart's
	// ServiceMonitor, from its module (make e2e-node names the file).
	crd := os.Getenv("SERVICEMONITOR_CRD")
	if crd == "" {
		t.Fatal("SERVICEMONITOR_CRD is not set: run the test with `make e2e-node`")
	}
	c.Kubectl(t, "apply", "--server-side", "-f", crd)
	c.apply(t, "cert-manager.yaml", map[string]string{"IMAGE": ref, "NAMESERVER": c.bind.Addr})
	c.Kubectl(t, "-n", namespace, "rollout", "status", "--timeout=120s", "deployment/cert-manager", "deployment/cert-manager-cainjector")
	t.Logf("cert-manager's controllers and cainjector Ready in %s", time.Since(start).Round(100*time.Millisecond))
}

// savePodLogs writes the log of every container in cert-manager's namespace
// (cert-manager's, the webhook's and its runner's) to logDir, for a failure's
// post-mortem: the node's own components log there already.
func (c *cluster) savePodLogs(t *testing.T, logDir string) {
	pods, err := c.Kube.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Logf("listing Pods for their logs: %v", err)
		return
	}
	for _, pod := range pods.Items {
		for _, container := range pod.Spec.Containers {
			out, err := c.TryKubectl("-n", namespace, "logs", pod.Name, "-c", container.Name)
			if err != nil {
				out += "\n(kubectl logs: " + err.Error() + ")"
			}
			testbed.WriteFile(t, logDir, "pod-"+pod.Name+"-"+container.Name+".log", []byte(out))
			if pod.Labels["app"] == "cert-manager" {
				t.Logf("the end of %s's log:\n%s", pod.Name, testbed.Tail(out, 30))
			}
		}
		// In the test's output too, which is all CI keeps: restarts, and
		// why each container last ended.
		for _, status := range pod.Status.ContainerStatuses {
			last := ""
			if ended := status.LastTerminationState.Terminated; ended != nil {
				last = fmt.Sprintf(", last ended %s (%s, exit %d): %s", ended.FinishedAt.Format(time.TimeOnly), ended.Reason, ended.ExitCode, testbed.Tail(ended.Message, 5))
			}
			t.Logf("Pod %s container %s: ready %v, %d restarts%s", pod.Name, status.Name, status.Ready, status.RestartCount, last)
		}
	}
	// A node under pressure (a full disk: kubelet evicts below 1% free)
	// evicts or refuses Pods, which looks like anything but.
	if nodes, err := c.Kube.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{}); err == nil {
		for _, node := range nodes.Items {
			for _, cond := range node.Status.Conditions {
				if cond.Type != corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					t.Logf("node %s: %s: %s", node.Name, cond.Type, cond.Message)
				}
			}
		}
	}
}

// TryHelm runs helm as the cluster admin and returns its output and how it ended.
func (c *cluster) TryHelm(args ...string) (string, error) {
	cmd := exec.Command(c.helm, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Helm runs helm as the cluster admin and returns its output.
func (c *cluster) Helm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.TryHelm(args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// waitAPIServiceAvailable waits until the release's APIService is
// Available and returns it.
func (c *cluster) waitAPIServiceAvailable(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	name := "v1alpha1." + groupName
	var available *unstructured.Unstructured
	waitUntil(t, "APIService "+name+" Available", 3*time.Minute, func() error {
		obj, err := c.Dynamic.Resource(apiServices).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if conditions := apiServiceConditions(obj.Object); conditions["Available"] != "True" {
			return fmt.Errorf("conditions %v", conditions)
		}
		available = obj
		return nil
	})
	return available
}

var apiServices = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// waitUntil polls cond every second until it returns nil or timeout passes.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(time.Second) {
		if err = cond(); err == nil {
			return
		}
	}
	t.Fatalf("waiting for %s: %v (after %s)", what, err, timeout)
}

// install: scenario 1. The README's helm install, into a namespace that
// enforces the restricted Pod Security Standard: the webhook Pod runs under
// the chart's ServiceAccount and the APIService is Available, verifying the
// webhook with the CA cainjector put there.
func (c *cluster) install(t *testing.T) {
	// The namespace enforces the restricted standard.
	if _, err := c.TryKubectl("-n", namespace, "run", "psa-probe", "--restart=Never", "--image-pull-policy=Never",
		"--image", c.webhookRepo+":"+c.webhookTag); err == nil || !strings.Contains(err.Error(), `violates PodSecurity "restricted:latest"`) {
		t.Fatalf("a Pod without the restricted securityContext in %s: %v, want a PodSecurity refusal", namespace, err)
	}
	// The namespaces whose Secrets the webhook may read exist first: the
	// chart puts a Role in each.
	c.Kubectl(t, "create", "namespace", "team-a")
	// Prometheus's account, which the chart binds to its metrics-reader role.
	c.Kubectl(t, "create", "namespace", "monitoring")
	c.Kubectl(t, "-n", "monitoring", "create", "serviceaccount", "prometheus")
	// The README's command as it is, with docs/configuration.md's
	// values-raw.yaml, and the test's image and ServiceMonitor.
	commands := testbed.ShellCommands(t, testbed.FencedBlock(t, "README.md", "helm install "))
	if len(commands) != 1 {
		t.Fatalf("the README's helm install block holds %q, want one command", commands)
	}
	args := c.helmArgs(t, commands[0])
	if want := []string{"install", release, c.chart(), "--namespace", namespace, "--set", "groupName=" + groupName}; !slices.Equal(args[:len(want)], want) {
		t.Fatalf("the README's helm command is %q; this test's constants say %q", args, want)
	}
	args = append(args,
		"--values", c.writeTemp(t, "values-raw.yaml", testbed.FencedBlock(t, "docs/configuration.md", "# values-raw.yaml")),
		"--values", filepath.Join("testdata", "values.yaml"),
		"--set", "image.repository="+c.webhookRepo, "--set", "image.tag="+c.webhookTag)
	start := time.Now()
	c.installed = start
	c.installOutput = c.Helm(t, args...)
	caBundle, _, _ := unstructured.NestedString(c.waitAPIServiceAvailable(t).Object, "spec", "caBundle")
	t.Logf("MEASURED helm install -> APIService Available: %s", time.Since(start).Round(100*time.Millisecond))

	serving, err := c.Kube.CoreV1().Secrets(namespace).Get(context.Background(), fullname+"-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.StdEncoding.EncodeToString(serving.Data["ca.crt"]); caBundle == "" || caBundle != want {
		t.Errorf("APIService caBundle is not the CA of the serving certificate (cainjector's injection)")
	}
	for _, pod := range c.webhookPods(t) {
		if pod.Spec.ServiceAccountName != fullname {
			t.Errorf("webhook Pod %s runs as %q, want the chart's ServiceAccount %q", pod.Name, pod.Spec.ServiceAccountName, fullname)
		}
		// Programs run in the runner container, not in the webhook's process.
		waitUntil(t, "the webhook of "+pod.Name+" connected to its runner", time.Minute, func() error {
			webhook := c.Kubectl(t, "-n", namespace, "logs", pod.Name, "-c", "webhook")
			runner := c.Kubectl(t, "-n", namespace, "logs", pod.Name, "-c", "runner")
			if !strings.Contains(webhook, `"programs run in the runner container"`) || !strings.Contains(runner, `"the webhook connected; running its programs"`) {
				return fmt.Errorf("webhook log:\n%s\nrunner log:\n%s", testbed.Tail(webhook, 10), testbed.Tail(runner, 10))
			}
			return nil
		})
	}
}

// helmArgs returns the arguments of a helm command copied from the README,
// the published chart replaced by this checkout's.
func (c *cluster) helmArgs(t *testing.T, command []string) []string {
	t.Helper()
	if len(command) < 2 || command[0] != "helm" {
		t.Fatalf("%q is not a helm command", command)
	}
	return testbed.WithChartDir(t, command[1:], c.chart())
}

// apiServiceConditions maps an APIService's condition types to their status.
func apiServiceConditions(obj map[string]any) map[string]string {
	list, _, _ := unstructured.NestedSlice(obj, "status", "conditions")
	out := map[string]string{}
	for _, item := range list {
		cond, _ := item.(map[string]any)
		typ, _ := cond["type"].(string)
		status, _ := cond["status"].(string)
		out[typ] = status
	}
	return out
}

func (c *cluster) issuerWithOwnSecret(t *testing.T) {
	start := time.Now()
	c.apply(t, "issuer-team-a.yaml", nil)
	cert := c.waitCertificateReady(t, "team-a", "site", 4*time.Minute)
	t.Logf("MEASURED first Issuer applied -> Certificate Ready: %s; helm install -> first Certificate Ready: %s",
		time.Since(start).Round(100*time.Millisecond), time.Since(c.installed).Round(100*time.Millisecond))
	if want := []string{"site.example.com", "*.site.example.com"}; !slices.Equal(cert, want) {
		t.Errorf("issued for %q, want %q", cert, want)
	}
	c.waitNoTXT(t, "_acme-challenge.site.example.com")
}

// waitCertificateReady waits for the Certificate's Ready condition and returns
// the names of the issued certificate.
func (c *cluster) waitCertificateReady(t *testing.T, ns, name string, timeout time.Duration) []string {
	t.Helper()
	waitUntil(t, "Certificate "+ns+"/"+name+" Ready", timeout, func() error {
		cert, err := c.CM.CertmanagerV1().Certificates(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range cert.Status.Conditions {
			if cond.Type == "Ready" && cond.Status == cmmeta.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("not Ready; challenges:\n%s", testbed.DescribeChallenges(c.CM))
	})
	secret, err := c.Kube.CoreV1().Secrets(ns).Get(context.Background(), name+"-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(secret.Annotations["cert-manager.io/alt-names"], ",")
}
