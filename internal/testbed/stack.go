package testbed

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Stack is everything an issuance needs, on loopback: etcd and kube-apiserver
// with cert-manager's CRDs, cert-manager's controllers, Pebble, BIND9 and this
// webhook, as its webhook and runner processes, behind an APIService.
type Stack struct {
	CP          *ControlPlane
	BIND        *BIND
	Pebble      *Pebble
	Webhook     *Webhook
	CertManager *Process
	// Config is the webhook's solver config directory, updated like a ConfigMap.
	Config *ConfigDir
	// GroupName is the webhook's API group.
	GroupName string
	LogDir    string
}

// StackOptions configure StartStack.
type StackOptions struct {
	RepoRoot string
	// LogDir receives every server's log.
	LogDir string
	// Zone is the DNS zone BIND serves.
	Zone string
	// SolverConfig returns the webhook's solver config for the running BIND.
	SolverConfig func(*BIND) string
	// RunnerEnv returns the admin's program variables for the running BIND
	// (passEnv's values), which the runner process alone gets; nil for none.
	RunnerEnv func(*BIND) []string
	// CertManager is the cert-manager release to run; zero for the one
	// go.mod requires.
	CertManager CertManagerRelease
	// Step reports progress.
	Step func(format string, args ...any)
}

// CertManagerRelease is a cert-manager release as the tests run it: its
// controllers (hack/test-assets.sh's asset) and its CRDs.
type CertManagerRelease struct {
	// Version is the cert-manager module version, such as v1.19.2.
	Version string
	// Asset names the controllers' binary for hack/test-assets.sh.
	Asset string
}

// OldestCertManager is the oldest cert-manager release the README's
// compatibility table claims: the version hack/tools/cmcontroller/go.v1.19.mod
// requires, built by hack/test-assets.sh cmcontroller-v1.19.
func OldestCertManager(t TB, repoRoot string) CertManagerRelease {
	t.Helper()
	modFile := filepath.Join(repoRoot, "hack", "tools", "cmcontroller", "go.v1.19.mod")
	text, err := os.ReadFile(modFile)
	if err != nil {
		t.Fatalf("%v", err)
	}
	for line := range strings.Lines(string(text)) {
		if fields := strings.Fields(line); len(fields) == 2 && fields[0] == "github.com/cert-manager/cert-manager" {
			return CertManagerRelease{Version: fields[1], Asset: "cmcontroller-v1.19"}
		}
	}
	t.Fatalf("%s requires no github.com/cert-manager/cert-manager", modFile)
	return CertManagerRelease{}
}

// crds is the release's deploy/crds, from the module cache.
func (r CertManagerRelease) crds(t TB) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", "github.com/cert-manager/cert-manager@"+r.Version)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("downloading cert-manager %s: %v", r.Version, err)
	}
	var module struct{ Dir string }
	if err := json.Unmarshal(out, &module); err != nil || module.Dir == "" {
		t.Fatalf("go mod download cert-manager %s: no directory in %s", r.Version, out)
	}
	return filepath.Join(module.Dir, "deploy", "crds")
}

// Asset returns the path hack/test-assets.sh prints for name, building it on first use.
func Asset(t TB, repoRoot, name string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot, "hack", "test-assets.sh"), name)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/test-assets.sh %s: %v\n%s", name, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// StartStack starts the whole stack and stops it when t ends.
func StartStack(t TB, opts StackOptions) *Stack {
	t.Helper()
	step := opts.Step
	if step == nil {
		step = t.Logf
	}
	s := &Stack{GroupName: "acme.exec.example", LogDir: opts.LogDir}
	timed := func(what string, fn func()) {
		start := time.Now()
		step("%s ...", what)
		fn()
		step("%s: ready in %s", what, time.Since(start).Round(100*time.Millisecond))
	}
	var pebbleDir, controller, webhookBin string
	timed("building the webhook, Pebble and cert-manager's controllers (cached after the first run)", func() {
		pebbleDir = Asset(t, opts.RepoRoot, "pebble")
		controller = Asset(t, opts.RepoRoot, cmp.Or(opts.CertManager.Asset, "cmcontroller"))
		webhookBin = BuildWebhook(t, opts.RepoRoot, t.TempDir())
	})
	timed("starting BIND9 (authoritative for "+opts.Zone+")", func() { s.BIND = StartBIND(t, opts.Zone) })
	timed("starting etcd and kube-apiserver with cert-manager's CRDs", func() {
		cpOpts := ControlPlaneOptions{Aggregation: true}
		if opts.CertManager.Version != "" {
			cpOpts.CRDs = opts.CertManager.crds(t)
		}
		s.CP = StartControlPlane(t, cpOpts)
	})
	timed("starting Pebble (ACME server)", func() { s.Pebble = StartPebble(t, pebbleDir, s.BIND.Addr, opts.LogDir) })
	timed("starting the exec webhook (its webhook and runner processes) behind an APIService", func() {
		s.Config = NewConfigDir(t)
		s.Config.Write(t, map[string]string{"config.yaml": opts.SolverConfig(s.BIND)})
		env := WebhookEnv{Config: []string{"EXEC_CONFIG=" + filepath.Join(s.Config.Dir, "config.yaml")}}
		if opts.RunnerEnv != nil {
			env.Runner = opts.RunnerEnv(s.BIND)
		}
		s.Webhook = StartWebhook(t, s.CP, webhookBin, s.GroupName, "cert-manager", opts.LogDir, env)
	})
	timed("starting cert-manager's controllers", func() {
		s.CertManager = StartCertManager(t, controller, s.CP, s.BIND.Addr, opts.LogDir)
	})
	return s
}

// NsupdateConfig is the simplest solver config, the README's: one program,
// the example nsupdate.sh, writing to bind with the admin's TSIG key.
func NsupdateConfig(t TB, repoRoot string, bind *BIND) string {
	t.Helper()
	return Expand(t, `programs:
- name: nsupdate
  path: ${REPO}/examples/nsupdate.sh
  timeout: 20s
  env:
    NSUPDATE_SERVER: "127.0.0.1"
    NSUPDATE_PORT: "${BIND_PORT}"
    TSIG_KEY_NAME: ${TSIG_KEY_NAME}
    TSIG_SECRET: ${TSIG_SECRET}
`, map[string]string{"REPO": repoRoot, "BIND_PORT": strconv.Itoa(bind.Port), "TSIG_KEY_NAME": bind.KeyName, "TSIG_SECRET": bind.KeySecret})
}

// IssuerSpec is an ACME issuer at Pebble solving DNS-01 through the webhook
// with the given webhook.config.
func (s *Stack) IssuerSpec(accountSecret, webhookConfig string) cmapi.IssuerSpec {
	return cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{ACME: &cmacme.ACMEIssuer{
		Server:     s.Pebble.DirectoryURL,
		CABundle:   s.Pebble.CABundle,
		PrivateKey: cmmeta.SecretKeySelector{LocalObjectReference: cmmeta.LocalObjectReference{Name: accountSecret}},
		Solvers: []cmacme.ACMEChallengeSolver{{DNS01: &cmacme.ACMEChallengeSolverDNS01{
			Webhook: &cmacme.ACMEIssuerDNS01ProviderWebhook{
				GroupName: s.GroupName, SolverName: "exec",
				Config: &apiextensionsv1.JSON{Raw: []byte(webhookConfig)},
			},
		}}},
	}}}
}

// CreateIssuer creates a namespaced Issuer.
func (s *Stack) CreateIssuer(t TB, namespace, name, webhookConfig string) {
	t.Helper()
	s.CreateIssuerWithSpec(t, namespace, name, s.IssuerSpec(name+"-account", webhookConfig))
}

// CreateIssuerWithSpec creates a namespaced Issuer from a spec IssuerSpec
// returned and the caller changed.
func (s *Stack) CreateIssuerWithSpec(t TB, namespace, name string, spec cmapi.IssuerSpec) {
	t.Helper()
	ensureNamespace(t, s.CP, namespace)
	issuer := &cmapi.Issuer{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: spec}
	if _, err := s.CP.CM.CertmanagerV1().Issuers(namespace).Create(context.Background(), issuer, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Issuer %s/%s: %v", namespace, name, err)
	}
}

// CreateClusterIssuer creates a ClusterIssuer.
func (s *Stack) CreateClusterIssuer(t TB, name, webhookConfig string) {
	t.Helper()
	issuer := &cmapi.ClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: s.IssuerSpec(name+"-account", webhookConfig)}
	if _, err := s.CP.CM.CertmanagerV1().ClusterIssuers().Create(context.Background(), issuer, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ClusterIssuer %s: %v", name, err)
	}
}

// CreateCertificate requests a certificate for dnsNames from the issuer.
func (s *Stack) CreateCertificate(t TB, namespace, name string, issuer cmmeta.IssuerReference, dnsNames ...string) {
	t.Helper()
	ensureNamespace(t, s.CP, namespace)
	cert := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       cmapi.CertificateSpec{SecretName: name + "-tls", DNSNames: dnsNames, IssuerRef: issuer},
	}
	if _, err := s.CP.CM.CertmanagerV1().Certificates(namespace).Create(context.Background(), cert, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Certificate %s/%s: %v", namespace, name, err)
	}
}

// WaitCertificateReady waits for the Certificate's Ready condition and returns
// the issued certificate.
func (s *Stack) WaitCertificateReady(t TB, namespace, name string, timeout time.Duration) *x509.Certificate {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		cert, err := s.CP.CM.CertmanagerV1().Certificates(namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			for _, c := range cert.Status.Conditions {
				if c.Type == cmapi.CertificateConditionReady && c.Status == cmmeta.ConditionTrue {
					return s.issuedCertificate(t, namespace, cert.Spec.SecretName)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Certificate %s/%s not Ready after %s; challenges:\n%s", namespace, name, timeout, s.DescribeChallenges(t))
		}
		time.Sleep(time.Second)
	}
}

func (s *Stack) issuedCertificate(t TB, namespace, secretName string) *x509.Certificate {
	t.Helper()
	secret, err := s.CP.Kube.CoreV1().Secrets(namespace).Get(context.Background(), secretName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading Secret %s/%s: %v", namespace, secretName, err)
	}
	block, _ := pem.Decode(secret.Data["tls.crt"])
	if block == nil {
		t.Fatalf("Secret %s/%s has no certificate", namespace, secretName)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return cert
}

// WaitChallengeReason waits until a Challenge in namespace has a status
// reason containing want, and returns that reason.
func (s *Stack) WaitChallengeReason(t TB, namespace, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		list, err := s.CP.CM.AcmeV1().Challenges(namespace).List(context.Background(), metav1.ListOptions{})
		if err == nil {
			for _, ch := range list.Items {
				if strings.Contains(ch.Status.Reason, want) {
					return ch.Status.Reason
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Challenge in %s with a reason containing %q after %s; challenges:\n%s", namespace, want, timeout, s.DescribeChallenges(t))
		}
		time.Sleep(time.Second)
	}
}

// DescribeChallenges lists every Challenge with its state and reason.
func (s *Stack) DescribeChallenges(t TB) string {
	t.Helper()
	return DescribeChallenges(s.CP.CM)
}

// DescribeChallenges lists every Challenge cm sees, with its state and reason.
func DescribeChallenges(cm cmclient.Interface) string {
	list, err := cm.AcmeV1().Challenges("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, ch := range list.Items {
		fmt.Fprintf(&b, "  %s/%s %s presented=%v state=%s reason=%q\n", ch.Namespace, ch.Name, ch.Spec.DNSName, ch.Status.Presented, ch.Status.State, ch.Status.Reason)
	}
	return b.String()
}

// WaitNoTXT waits until BIND serves no TXT record at name.
func (s *Stack) WaitNoTXT(t TB, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		values := s.BIND.TXT(t, name)
		if len(values) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("TXT records still at %s after %s: %q", name, timeout, values)
		}
		time.Sleep(time.Second)
	}
}
