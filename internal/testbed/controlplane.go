package testbed

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// ControlPlane is a real etcd and kube-apiserver with cert-manager's CRDs and
// an audit log of every Secret access.
type ControlPlane struct {
	Env    *envtest.Environment
	Config *rest.Config
	Kube   kubernetes.Interface
	CM     cmclient.Interface

	auditLog string
}

const secretAuditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  resources:
  - group: ""
    resources: ["secrets"]
- level: None
`

// ControlPlaneOptions adjust StartControlPlane.
type ControlPlaneOptions struct {
	// Aggregation configures kube-apiserver to proxy aggregated APIs, such as
	// this webhook's, with a front-proxy client certificate.
	Aggregation bool
	// CRDs is a directory of cert-manager CRDs; empty for those of the
	// cert-manager module go.mod requires.
	CRDs string
}

// StartControlPlane starts etcd and kube-apiserver (from TEST_ASSET_*, see
// hack/test-assets.sh) with cert-manager's CRDs installed, and stops them when
// the test ends.
func StartControlPlane(t TB, opts ControlPlaneOptions) *ControlPlane {
	t.Helper()
	QuietControllerRuntime()
	dir := t.TempDir()
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(secretAuditPolicy), 0o600); err != nil {
		t.Fatalf("%v", err)
	}
	cp := &ControlPlane{auditLog: filepath.Join(dir, "audit.log")}
	crds := opts.CRDs
	if crds == "" {
		crds = CertManagerCRDs(t)
	}
	cp.Env = &envtest.Environment{
		CRDDirectoryPaths:     []string{crds},
		ErrorIfCRDPathMissing: true,
	}
	args := cp.Env.ControlPlane.GetAPIServer().Configure().
		Set("audit-policy-file", policy).
		Set("audit-log-path", cp.auditLog)
	if opts.Aggregation {
		ca := NewCA(t, "front-proxy-ca")
		cert, key := ca.Issue(t, "front-proxy-client", nil, nil)
		args.Set("requestheader-client-ca-file", WriteFile(t, dir, "front-proxy-ca.crt", ca.CertPEM)).
			Set("requestheader-allowed-names", "front-proxy-client").
			Set("requestheader-extra-headers-prefix", "X-Remote-Extra-").
			Set("requestheader-group-headers", "X-Remote-Group").
			Set("requestheader-username-headers", "X-Remote-User").
			Set("proxy-client-cert-file", WriteFile(t, dir, "front-proxy-client.crt", cert)).
			Set("proxy-client-key-file", WriteFile(t, dir, "front-proxy-client.key", key))
	}
	cfg, err := cp.Env.Start()
	if err != nil {
		t.Fatalf("starting the control plane (run hack/test-assets.sh and export what it prints): %v", err)
	}
	t.Cleanup(func() {
		if err := cp.Env.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	cp.Config = cfg
	cp.Kube = kubernetes.NewForConfigOrDie(cfg)
	cp.CM = cmclient.NewForConfigOrDie(cfg)
	return cp
}

var quietControllerRuntime sync.Once

// QuietControllerRuntime gives controller-runtime, whose envtest starts the
// control plane, a logger that writes only errors, to stderr. Without one,
// its first log call 30 s into the process prints a 25-line stack trace
// ("log.SetLogger(...) was never called") into test and demo output. Call it
// before envtest starts; StartControlPlane does.
func QuietControllerRuntime() {
	quietControllerRuntime.Do(func() { ctrllog.SetLogger(errorsOnlyLogger(os.Stderr)) })
}

// errorsOnlyLogger writes each Error call to w as one line and drops Info.
func errorsOnlyLogger(w io.Writer) logr.Logger {
	write := func(name, args string) {
		if name != "" {
			args = name + " " + args
		}
		fmt.Fprintln(w, "[controller-runtime]", args)
	}
	// funcr writes Info calls up to Verbosity: none, below V(0).
	return funcr.New(write, funcr.Options{Verbosity: -1})
}

// CertManagerCRDs is deploy/crds of the cert-manager module go.mod requires.
func CertManagerCRDs(t TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager").Output()
	if err != nil {
		t.Fatalf("locating the cert-manager module: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds")
}

// AuditEvent is one request as the API server's audit log records it.
type AuditEvent struct {
	Verb       string                    `json:"verb"`
	RequestURI string                    `json:"requestURI"`
	User       struct{ Username string } `json:"user"`
	ObjectRef  struct {
		Resource  string `json:"resource"`
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"responseStatus"`
}

// SecretAccesses returns every access to Secrets the API server has logged.
func (cp *ControlPlane) SecretAccesses(t TB) []AuditEvent {
	t.Helper()
	return readAuditLog(t, cp.auditLog, func(e AuditEvent) bool { return e.ObjectRef.Resource == "secrets" })
}

// readAuditLog returns the events of an audit log file that keep accepts.
func readAuditLog(t TB, path string, keep func(AuditEvent) bool) []AuditEvent {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer f.Close() //nolint:errcheck // read-only.
	var events []AuditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit log: %v", err)
		}
		if keep(e) {
			events = append(events, e)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("audit log: %v", err)
	}
	return events
}

// WriteKubeconfig writes cfg (a client certificate user, as envtest makes
// them) to a kubeconfig file and returns its path.
func WriteKubeconfig(t TB, cfg *rest.Config, path string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["test"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	kc.CurrentContext = "test"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatalf("%v", err)
	}
	return path
}

// UserConfig returns a client config for a user of the given groups, so that
// the audit log tells its requests apart from the test's own.
func (cp *ControlPlane) UserConfig(t TB, name string, groups ...string) *rest.Config {
	t.Helper()
	user, err := cp.Env.AddUser(envtest.User{Name: name, Groups: groups}, cp.Config)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return user.Config()
}
