package testbed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Webhook is this project's webhook run as the chart runs it: two processes
// of one binary, as the two containers of its Pod. The webhook process serves
// the aggregated API that kube-apiserver proxies cert-manager's calls to; the
// runner process (the `runner` subcommand) runs the programs it asks for over
// a Unix socket, with the admin's program variables, which the webhook
// process never has.
type Webhook struct {
	// Process is the webhook process.
	*Process
	// Runner is the runner process; nil for StartNopWebhook's solver.
	Runner    *Process
	Port      int
	GroupName string
	// StartToReady is the time from starting the webhook process to its first
	// successful /readyz.
	StartToReady time.Duration
	ca           *CA
	client       *rest.Config
}

// WebhookEnv is the environment of the webhook's two processes, split as the
// chart splits it between its two containers; each also gets PATH, HOME and
// TMPDIR (StartProcess), and the runner socket.
type WebhookEnv struct {
	// Config goes to both, which each read the solver config: EXEC_CONFIG, or
	// lego's EXEC_PATH and its settings.
	Config []string
	// Webhook goes to the webhook process alone: its own settings, such as
	// EXEC_LEASE_NAMESPACE.
	Webhook []string
	// Runner goes to the runner process alone: the admin's program variables,
	// whose values passEnv (or lego's EXEC_PATH) copies into runs, and any
	// setting of its own (a TMPDIR, where runs get their directories, replaces
	// StartWebhook's).
	Runner []string
}

// envRunnerSocket is runner.EnvSocket; testbed cannot import internal/runner,
// whose tests import testbed.
const envRunnerSocket = "EXEC_RUNNER_SOCKET"

// BuildWebhook compiles the webhook binary into dir and returns its path.
func BuildWebhook(t TB, repoRoot, dir string) string {
	t.Helper()
	return buildCommand(t, repoRoot, ".", filepath.Join(dir, "cert-manager-webhook-exec"))
}

// BuildNopWebhook compiles a solver that does nothing on the webhook's own
// framework (./internal/testbed/nopwebhook) into dir and returns its path: the
// floor our webhook process's footprint is compared with. StartNopWebhook runs
// it as StartWebhook runs our webhook process.
func BuildNopWebhook(t TB, repoRoot, dir string) string {
	t.Helper()
	return buildCommand(t, repoRoot, "./internal/testbed/nopwebhook", filepath.Join(dir, "nopwebhook"))
}

// buildCommand runs go build for the main package pkg of the module at
// repoRoot, with the same flags for every binary so that they compare.
func buildCommand(t TB, repoRoot, pkg, out string) string {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = repoRoot
	if data, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, data)
	}
	return out
}

// StartWebhook runs our webhook binary against cp as its runner and webhook
// processes, and registers it as the chart would: a Service in namespace
// (ExternalName localhost, since it runs outside the cluster) and an
// APIService with the CA of its serving certificate.
func StartWebhook(t TB, cp *ControlPlane, bin, groupName, namespace, logDir string, env WebhookEnv) *Webhook {
	t.Helper()
	socket := envRunnerSocket + "=" + filepath.Join(t.TempDir(), "runner.sock")
	// The runner's runs get a TMPDIR of their own, as in its container.
	runnerEnv := append([]string{socket, "TMPDIR=" + t.TempDir()}, env.Config...)
	// Started first, it is stopped last: by then the webhook's exit has ended
	// its connection, which ends the runner; its Stop is only the fallback.
	runner := StartProcess(t, logDir, "runner", append(runnerEnv, env.Runner...), bin, "runner", "--v=1")
	webhookEnv := append([]string{socket}, env.Config...)
	return startWebhook(t, cp, bin, groupName, namespace, logDir, append(webhookEnv, env.Webhook...), runner)
}

// StartNopWebhook runs BuildNopWebhook's solver as StartWebhook runs our
// webhook process; it runs nothing, so it has no runner.
func StartNopWebhook(t TB, cp *ControlPlane, bin, groupName, namespace, logDir string) *Webhook {
	t.Helper()
	return startWebhook(t, cp, bin, groupName, namespace, logDir, nil, nil)
}

// startWebhook runs the webhook process of bin with env and registers it.
func startWebhook(t TB, cp *ControlPlane, bin, groupName, namespace, logDir string, env []string, runner *Process) *Webhook {
	t.Helper()
	const service = "cert-manager-webhook-exec"
	dir := t.TempDir()
	ca := NewCA(t, "webhook-ca")
	cert, key := ca.Issue(t, service+"."+namespace+".svc",
		[]string{service + "." + namespace + ".svc", "localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
	kubeconfig := WriteKubeconfig(t, cp.UserConfig(t, "exec-webhook", "system:masters"), filepath.Join(dir, "kubeconfig"))
	port := freePort(t)
	started := time.Now()
	w := &Webhook{Runner: runner, Port: port, GroupName: groupName, ca: ca, client: cp.UserConfig(t, "metrics-reader", "system:masters")}
	w.Process = StartProcess(t, logDir, "webhook", append([]string{"GROUP_NAME=" + groupName}, env...), bin,
		"--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
		"--tls-cert-file="+WriteFile(t, dir, "tls.crt", cert),
		"--tls-private-key-file="+WriteFile(t, dir, "tls.key", key),
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		"--v=1",
	)

	w.waitReady(t, started)

	ctx := context.Background()
	ensureNamespace(t, cp, namespace)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: service, Namespace: namespace},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "https", Port: int32(port)}},
		},
	}
	if _, err := cp.Kube.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the webhook Service: %v", err)
	}
	apiServices := dynamic.NewForConfigOrDie(cp.Config).Resource(schema.GroupVersionResource{
		Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"})
	name := "v1alpha1." + groupName
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"group": groupName, "version": "v1alpha1",
			"groupPriorityMinimum": int64(1000), "versionPriority": int64(15),
			"service":  map[string]any{"namespace": namespace, "name": service, "port": int64(port)},
			"caBundle": base64.StdEncoding.EncodeToString(ca.CertPEM),
		},
	}}
	if _, err := apiServices.Create(ctx, apiService, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the APIService: %v", err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		got, err := apiServices.Get(ctx, name, metav1.GetOptions{})
		if err == nil && apiServiceAvailable(got) {
			return w
		}
		w.failIfExited(t)
		if time.Now().After(deadline) {
			t.Fatalf("APIService %s did not become Available\n%s", name, w.Logs())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func apiServiceAvailable(obj *unstructured.Unstructured) bool {
	conditions, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conditions {
		cond, _ := c.(map[string]any)
		if cond["type"] == "Available" && cond["status"] == "True" {
			return true
		}
	}
	return false
}

// waitReady polls /readyz until the webhook answers 200.
func (w *Webhook) waitReady(t TB, started time.Time) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(w.ca.CertPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}, Timeout: time.Second}
	url := "https://localhost:" + strconv.Itoa(w.Port) + "/readyz"
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		w.failIfExited(t)
		resp, err := client.Get(url)
		if err != nil {
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			w.StartToReady = time.Since(started)
			return
		}
	}
	t.Fatalf("the webhook's /readyz did not answer 200 within 60s:\n%s", w.Logs())
}

// failIfExited fails t if the webhook process or its runner has ended: the
// webhook waits for a runner that is gone until its dial budget runs out.
func (w *Webhook) failIfExited(t TB) {
	t.Helper()
	if w.Exited() {
		t.Fatalf("the webhook exited:\n%s", w.Logs())
	}
	if w.Runner != nil && w.Runner.Exited() {
		t.Fatalf("the runner exited:\n%s", w.Logs())
	}
}

// Logs returns what the webhook process, and its runner, have written so far.
func (w *Webhook) Logs() string {
	logs := "webhook log:\n" + w.Log()
	if w.Runner != nil {
		logs += "\nrunner log:\n" + w.Runner.Log()
	}
	return logs
}

// Metrics scrapes the webhook's /metrics as an authorized client would.
func (w *Webhook) Metrics(t TB) string {
	t.Helper()
	tlsConfig, err := rest.TLSConfigFor(w.client)
	if err != nil {
		t.Fatalf("%v", err)
	}
	tlsConfig.RootCAs = x509.NewCertPool()
	tlsConfig.RootCAs.AppendCertsFromPEM(w.ca.CertPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}, Timeout: 10 * time.Second}
	resp, err := client.Get("https://localhost:" + strconv.Itoa(w.Port) + "/metrics")
	if err != nil {
		t.Fatalf("scraping the webhook: %v", err)
	}
	defer resp.Body.Close() //nolint:errcheck // read-only.
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping the webhook: %s %v\n%s", resp.Status, err, body)
	}
	return string(body)
}

func ensureNamespace(t TB, cp *ControlPlane, name string) {
	t.Helper()
	_, err := cp.Kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}

// ConfigDir is a directory updated as the kubelet updates a mounted
// ConfigMap: files are symlinks into ..data, which is swapped atomically.
type ConfigDir struct {
	Dir string
	n   int
}

// NewConfigDir creates an empty ConfigMap-style directory.
func NewConfigDir(t TB) *ConfigDir {
	t.Helper()
	return &ConfigDir{Dir: t.TempDir()}
}

// Write replaces the directory's content with files, as one atomic swap.
func (c *ConfigDir) Write(t TB, files map[string]string) {
	t.Helper()
	c.n++
	version := "..v" + strconv.Itoa(c.n)
	if err := os.Mkdir(filepath.Join(c.Dir, version), 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(c.Dir, version, name), []byte(content), 0o644); err != nil {
			t.Fatalf("%v", err)
		}
		link := filepath.Join(c.Dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatalf("%v", err)
			}
		}
	}
	tmp := filepath.Join(c.Dir, "..data_tmp")
	if err := os.Symlink(version, tmp); err != nil {
		t.Fatalf("%v", err)
	}
	if err := os.Rename(tmp, filepath.Join(c.Dir, "..data")); err != nil {
		t.Fatalf("%v", err)
	}
}
