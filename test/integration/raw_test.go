//go:build integration

package integration

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"golang.org/x/crypto/acme"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/solver"
)

// clusterResourceNamespace is where cert-manager keeps ClusterIssuer Secrets.
const clusterResourceNamespace = "cert-manager"

// account is an ACME account key stored as cert-manager stores it.
type account struct {
	key crypto.Signer
	pem []byte
}

func newAccount(t *testing.T, kind string) account {
	t.Helper()
	switch kind {
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return account{k, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})}
	default:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return account{k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})}
	}
}

// keyAuth and record are computed with x/crypto/acme, independently of the solver.
func (a account) keyAuth(t *testing.T, token string) string {
	t.Helper()
	thumb, err := acme.JWKThumbprint(a.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return token + "." + thumb
}

func (a account) record(t *testing.T, token string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(a.keyAuth(t, token)))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func create[T any](t *testing.T, fn func(context.Context, T, metav1.CreateOptions) (T, error), obj T) {
	t.Helper()
	if _, err := fn(context.Background(), obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func acmeSpec(secret string) *cmacme.ACMEIssuer {
	return &cmacme.ACMEIssuer{
		Server:     "https://acme.invalid/directory",
		PrivateKey: cmmeta.SecretKeySelector{LocalObjectReference: cmmeta.LocalObjectReference{Name: secret}},
		Solvers: []cmacme.ACMEChallengeSolver{{DNS01: &cmacme.ACMEChallengeSolverDNS01{
			Webhook: &cmacme.ACMEIssuerDNS01ProviderWebhook{GroupName: "acme.example.com", SolverName: "exec"},
		}}},
	}
}

func challenge(ns, name, dnsName, token, key string, wildcard bool, ref cmmeta.IssuerReference) *cmacme.Challenge {
	return &cmacme.Challenge{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cmacme.ChallengeSpec{
			URL: "https://acme.invalid/chall/" + name, AuthorizationURL: "https://acme.invalid/authz/" + name,
			DNSName: dnsName, Wildcard: wildcard, Type: cmacme.ACMEChallengeTypeDNS01,
			Token: token, Key: key, IssuerRef: ref,
			Solver: cmacme.ACMEChallengeSolver{DNS01: &cmacme.ACMEChallengeSolverDNS01{
				Webhook: &cmacme.ACMEIssuerDNS01ProviderWebhook{GroupName: "acme.example.com", SolverName: "exec"},
			}},
		},
	}
}

func secret(ns, name, key string, value []byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{key: value}}
}

// TestRawModeOnAPIServer creates an Issuer and a ClusterIssuer with ACME
// account keys and matching Challenges, and checks what RAW mode passes, what
// it refuses, and which Secrets it reads.
func TestRawModeOnAPIServer(t *testing.T) {
	cp := testbed.StartControlPlane(t, testbed.ControlPlaneOptions{})
	for _, ns := range []string{"team-a", "team-b", clusterResourceNamespace} {
		create(t, cp.Kube.CoreV1().Namespaces().Create, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	accountA, accountCluster, decoy := newAccount(t, "rsa"), newAccount(t, "ecdsa"), newAccount(t, "ecdsa")

	create(t, cp.Kube.CoreV1().Secrets("team-a").Create, secret("team-a", "acme-account-a", "tls.key", accountA.pem))
	create(t, cp.Kube.CoreV1().Secrets(clusterResourceNamespace).Create, secret(clusterResourceNamespace, "acme-account-cluster", "tls.key", accountCluster.pem))
	// A Secret of the same name in the Challenge's namespace must never be used for a ClusterIssuer.
	create(t, cp.Kube.CoreV1().Secrets("team-b").Create, secret("team-b", "acme-account-cluster", "tls.key", decoy.pem))
	create(t, cp.CM.CertmanagerV1().Issuers("team-a").Create, &cmapi.Issuer{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "acme-a"},
		Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{ACME: acmeSpec("acme-account-a")}},
	})
	create(t, cp.CM.CertmanagerV1().ClusterIssuers().Create, &cmapi.ClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: "acme-cluster"},
		Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{ACME: acmeSpec("acme-account-cluster")}},
	})

	const tokenA, tokenC, tokenForeign = "-tokenA-starts-with-dash", "tokenC_wildcard", "tokenForeign"
	issuerRef := cmmeta.IssuerReference{Name: "acme-a", Kind: "Issuer", Group: "cert-manager.io"}
	clusterRef := cmmeta.IssuerReference{Name: "acme-cluster", Kind: "ClusterIssuer", Group: "cert-manager.io"}
	create(t, cp.CM.AcmeV1().Challenges("team-a").Create, challenge("team-a", "app", "app.example.com", tokenA, accountA.record(t, tokenA), false, issuerRef))
	create(t, cp.CM.AcmeV1().Challenges("team-b").Create, challenge("team-b", "wild", "example.org", tokenC, accountCluster.record(t, tokenC), true, clusterRef))
	// A Challenge whose key was made with another account than its issuer's.
	create(t, cp.CM.AcmeV1().Challenges("team-a").Create, challenge("team-a", "foreign", "foreign.example.com", tokenForeign, decoy.record(t, tokenForeign), false, issuerRef))
	// Tokens chosen by an ACME server the tenant runs: cert-manager copies
	// them, and computes the key from them, so the key check passes.
	hostileToken, longToken := "tok\n$(id);`id`&x=\"'", strings.Repeat("a", 257)
	create(t, cp.CM.AcmeV1().Challenges("team-a").Create, challenge("team-a", "hostile", "hostile.example.com", hostileToken, accountA.record(t, hostileToken), false, issuerRef))
	create(t, cp.CM.AcmeV1().Challenges("team-a").Create, challenge("team-a", "long", "long.example.com", longToken, accountA.record(t, longToken), false, issuerRef))

	argvLog := filepath.Join(t.TempDir(), "argv")
	cfgFile := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf(`
programs:
- name: raw
  mode: RAW
  path: %s/testdata/programs/record-argv.sh
  env: {ARGV_LOG: %s}
`, testbed.RepoRoot(t), argvLog)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := solver.New(solver.WithGetenv(func(k string) string {
		return map[string]string{solver.EnvConfig: cfgFile}[k]
	}))
	stop := make(chan struct{})
	defer close(stop)
	const webhookUser = "exec-webhook"
	if err := s.Initialize(cp.UserConfig(t, webhookUser, "system:masters"), stop); err != nil {
		t.Fatal(err)
	}

	req := func(ns, dnsName, key string) *whapi.ChallengeRequest {
		return &whapi.ChallengeRequest{
			Type: "dns-01", DNSName: dnsName, Key: key, ResourceNamespace: ns,
			ResolvedFQDN: "_acme-challenge." + dnsName + ".", ResolvedZone: dnsName[strings.Index(dnsName, ".")+1:] + ".",
			Config: &apiextensionsv1.JSON{Raw: []byte(`{"program":"raw"}`)},
		}
	}
	tests := []struct {
		name     string
		req      *whapi.ChallengeRequest
		wantArgv []string
		wantErr  string
	}{
		{"issuer", req("team-a", "app.example.com", accountA.record(t, tokenA)),
			[]string{"present", "--", "app.example.com", tokenA, accountA.keyAuth(t, tokenA)}, ""},
		{"cluster issuer, wildcard", req(clusterResourceNamespace, "example.org", accountCluster.record(t, tokenC)),
			[]string{"present", "--", "example.org", tokenC, accountCluster.keyAuth(t, tokenC)}, ""},
		{"wrong key", req("team-a", "app.example.com", accountA.record(t, "another-token")), nil,
			"RAW mode: no DNS-01 Challenge for app.example.com with this key was found yet; cert-manager will retry"},
		{"issuer challenge asked for from another namespace", req("team-b", "app.example.com", accountA.record(t, tokenA)), nil,
			"RAW mode: no DNS-01 Challenge for app.example.com with this key was found yet; cert-manager will retry"},
		{"key from another account", req("team-a", "foreign.example.com", decoy.record(t, tokenForeign)), nil,
			"RAW mode: the key authorization recovered for foreign.example.com does not match the requested key; refusing to run the program"},
		{"token with shell syntax from the tenant's ACME server", req("team-a", "hostile.example.com", accountA.record(t, hostileToken)), nil,
			`RAW mode: the token of Challenge team-a/hostile contains '\n'; an ACME token is base64url (RFC 8555 section 8.1); refusing to run the program`},
		{"token too long to be one", req("team-a", "long.example.com", accountA.record(t, longToken)), nil,
			"RAW mode: the token of Challenge team-a/long is 257 characters; an ACME token has at most 256; refusing to run the program"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_ = os.Remove(argvLog)
			var err error
			// The Challenge cache may still be syncing right after Initialize.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				err = s.Present(tc.req)
				if err == nil || tc.wantErr != "" || time.Now().After(deadline) {
					break
				}
			}
			if got := errString(err); got != tc.wantErr {
				t.Fatalf("error = %q, want %q", got, tc.wantErr)
			}
			calls := testbed.ReadCalls(t, argvLog)
			if tc.wantArgv == nil {
				if len(calls) != 0 {
					t.Errorf("the program ran: %q", calls)
				}
				return
			}
			if len(calls) != 1 || !slices.Equal(calls[0], tc.wantArgv) {
				t.Errorf("argv = %q, want %q", calls, tc.wantArgv)
			}
		})
	}

	reads := 0
	for _, e := range cp.SecretAccesses(t) {
		if e.User.Username != webhookUser {
			continue
		}
		reads++
		if e.ObjectRef.Namespace == "team-b" {
			t.Errorf("a Secret in team-b was accessed: %s %s/%s by %s", e.Verb, e.ObjectRef.Namespace, e.ObjectRef.Name, e.User.Username)
		}
		if e.Verb == "list" || e.Verb == "watch" {
			t.Errorf("Secrets were listed or watched: %s in %q by %s", e.Verb, e.ObjectRef.Namespace, e.User.Username)
		}
	}
	if reads == 0 {
		t.Error("the audit log shows no Secret read by the webhook at all; the check above proves nothing")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
