//go:build node

package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// What the documentation's examples hold where a user puts their own.
const (
	letsEncrypt        = "https://acme-v02.api.letsencrypt.org/directory"
	letsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"
	exampleServer      = "192.0.2.53"
	exampleKeyName     = "cert-manager"
	exampleKeySecret   = "c2VjcmV0LXNoYXJlZC13aXRoLXlvdXItZG5zLXNlcnZlcg=="
)

// Scenario 10: what an operator copies works as it is. The Issuer the
// chart's NOTES print, the README's Issuer, docs/configuration.md's
// ClusterIssuer, deploy/examples and the README's example of an admin's
// credential are taken from the
// install's output and the files literally; Substitute puts in only what a
// user puts in: their DNS server's address, their TSIG key's name and secret,
// their domain, the path of their script, and the ACME server (Pebble for
// Let's Encrypt; cert-manager trusts Pebble's CA as a public one's, so no
// caBundle is added). Each issues a certificate through the webhook Pod.

// notesIssuer applies the Secret and Issuer the install's NOTES print, filling
// in only the values nsupdate.sh requires: the others stay empty, as the
// NOTES say they may.
func (c *cluster) notesIssuer(t *testing.T) {
	manifest := testbed.Substitute(t, testbed.NotesManifest(t, c.installOutput),
		`NSUPDATE_SERVER: ""`, `NSUPDATE_SERVER: "`+c.IP+`"`,
		`TSIG_KEY_NAME: ""`, `TSIG_KEY_NAME: "`+c.bind.KeyName+`"`,
		`TSIG_SECRET: ""`, `TSIG_SECRET: "`+c.bind.KeySecret+`"`,
		letsEncryptStaging, c.pebble.DirectoryURL)
	c.Kubectl(t, "apply", "-f", c.writeTemp(t, "notes.yaml", manifest))
	c.issue(t, "team-a", "notes", "Issuer", "letsencrypt-staging-nsupdate", "notes.example.com")
}

// yourRFC2136 puts the test's DNS server and TSIG key into a copied text
// where the documentation's examples have theirs.
func (c *cluster) yourRFC2136(t *testing.T, text string) string {
	t.Helper()
	return testbed.Substitute(t, text,
		exampleServer, c.IP,
		"key-name: "+exampleKeyName, "key-name: "+c.bind.KeyName,
		exampleKeySecret, c.bind.KeySecret)
}

// documentedIssuers applies the README's Issuer and docs/configuration.md's
// ClusterIssuer, each with the Secret beside it; the ClusterIssuer's RAW
// program comes from docs/configuration.md's values-raw.yaml, which the
// install took.
func (c *cluster) documentedIssuers(t *testing.T) {
	issuer := c.yourRFC2136(t, testbed.FencedBlock(t, "README.md", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: rfc2136\n  namespace: team-a\n"))
	clusterIssuer := c.yourRFC2136(t, testbed.FencedBlock(t, "docs/configuration.md", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: rfc2136\n  namespace: cert-manager "))
	c.Kubectl(t, "apply", "-f", c.writeTemp(t, "issuer.yaml", testbed.Substitute(t, issuer, letsEncrypt, c.pebble.DirectoryURL)))
	c.Kubectl(t, "apply", "-f", c.writeTemp(t, "clusterissuer.yaml", testbed.Substitute(t, clusterIssuer, letsEncrypt, c.pebble.DirectoryURL)))
	inParallel(t,
		scenario{"Issuer", func(t *testing.T) { c.issue(t, "team-a", "readme", "Issuer", "letsencrypt", "readme.example.com") }},
		scenario{"ClusterIssuer, RAW mode", func(t *testing.T) {
			c.issue(t, "team-a", "readme-raw", "ClusterIssuer", "letsencrypt-raw", "readme-raw.example.com")
		}})
}

// deployExamples applies deploy/examples as `kubectl apply -f deploy/examples/`
// does, Certificates included: a name and its wildcard through the Issuer, a
// name through the RAW ClusterIssuer.
func (c *cluster) deployExamples(t *testing.T) {
	dir, err := os.MkdirTemp(c.tmp, "examples-")
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(c.root, "deploy", "examples")
	for name, yours := range map[string]bool{"issuer-default-mode.yaml": true, "clusterissuer-raw-mode.yaml": true, "certificate.yaml": false} {
		text := string(readFile(t, filepath.Join(src, name)))
		if yours {
			text = testbed.Substitute(t, c.yourRFC2136(t, text), letsEncryptStaging, c.pebble.DirectoryURL)
		}
		testbed.WriteFile(t, dir, name, []byte(text))
	}
	if entries, _ := os.ReadDir(src); len(entries) != 3 {
		t.Fatalf("deploy/examples holds %d files; this test applies 3", len(entries))
	}
	c.Kubectl(t, "apply", "-f", dir)
	inParallel(t,
		scenario{"Issuer: a name and its wildcard", func(t *testing.T) {
			c.waitIssued(t, "team-a", "www", []string{"www.example.com", "*.www.example.com"})
		}},
		scenario{"ClusterIssuer, RAW mode", func(t *testing.T) {
			c.waitIssued(t, "team-a", "api", []string{"api.example.com"})
		}})
}

// adminCredential follows the README's example of an admin's credential:
// the user's script from a ConfigMap, the TSIG secret from a Secret mounted
// in the runner container (passEnv from RFC2136_TSIG_SECRET_FILE), in a
// release of its own, with the Issuer its NOTES print. The Secret first
// holds a key BIND does not know: the Challenge fails; then `kubectl apply`
// of the Secret with the right one, and nothing else, lets the next run
// succeed, without a restart.
func (c *cluster) adminCredential(t *testing.T) {
	commands := testbed.ShellCommands(t, testbed.FencedBlock(t, "README.md", "kubectl --namespace cert-manager create configmap dns-programs "))
	if len(commands) != 3 || !strings.HasPrefix(strings.Join(commands[1], " "), "kubectl apply -f corp-dns-secret.yaml") {
		t.Fatalf("the README's commands are %q; this test runs a kubectl create configmap, a kubectl apply of the Secret and a helm install", commands)
	}
	// The user's script: the image's lego-rfc2136.sh stands for it.
	c.Kubectl(t, replaceArg(t, commands[0][1:], "--from-file=lego-rfc2136.sh", "--from-file="+filepath.Join(c.root, "examples", "lego-rfc2136.sh"))...)
	secretText := testbed.FencedBlock(t, "README.md", "# corp-dns-secret.yaml")
	applySecret := func(value string) {
		file := c.writeTemp(t, "corp-dns-secret.yaml", testbed.Substitute(t, secretText, exampleKeySecret, value))
		c.Kubectl(t, replaceArg(t, commands[1][1:], "corp-dns-secret.yaml", file)...)
	}
	wrong := make([]byte, 32)
	_, _ = rand.Read(wrong)
	applySecret(base64.StdEncoding.EncodeToString(wrong))

	values := testbed.Substitute(t, testbed.FencedBlock(t, "README.md", "# values-corp-dns.yaml"),
		"RFC2136_NAMESERVER: "+exampleServer, "RFC2136_NAMESERVER: "+c.IP,
		"RFC2136_TSIG_KEY: "+exampleKeyName, "RFC2136_TSIG_KEY: "+c.bind.KeyName,
		"allowedDomains: [corp.example]", "allowedDomains: [corp.example.com]")
	args := replaceArg(t, c.helmArgs(t, commands[2]), "values-corp-dns.yaml", c.writeTemp(t, "values-corp-dns.yaml", values))
	if args[0] != "install" {
		t.Fatalf("the README's helm command is %q", args)
	}
	corp := args[1]
	out := c.Helm(t, append(args, "--set", "image.pullPolicy=Never", "--set", "image.repository="+c.webhookRepo, "--set", "image.tag="+c.webhookTag)...)
	t.Cleanup(func() { c.Helm(t, "uninstall", corp, "--namespace", namespace, "--wait") })
	if want := "      passEnv RFC2136_TSIG_SECRET: the admin's, from the file extraEnv RFC2136_TSIG_SECRET_FILE names, read at each run\n"; !strings.Contains(out, want) {
		t.Errorf("the NOTES lack %q:\n%s", want, out)
	}
	issuer := testbed.NotesManifest(t, out)
	if strings.Contains(issuer, "kind: Secret") {
		t.Errorf("the NOTES print a Secret for a program that takes none from Issuers:\n%s", issuer)
	}
	c.Kubectl(t, "apply", "-f", c.writeTemp(t, "corp-issuer.yaml", testbed.Substitute(t, issuer, letsEncryptStaging, c.pebble.DirectoryURL)))
	c.Kubectl(t, "-n", namespace, "rollout", "status", "--timeout=3m", "deployment/"+corp+"-cert-manager-webhook-exec")
	c.certificate(t, "team-a", "corp-dns", "Issuer", "letsencrypt-staging-corp-dns", "rotate.corp.example.com")

	var reason string
	waitUntil(t, "the Challenge to fail with the key BIND does not know", 3*time.Minute, func() error {
		list, err := c.CM.AcmeV1().Challenges("team-a").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, ch := range list.Items {
			if ch.Spec.DNSName == "rotate.corp.example.com" && strings.Contains(ch.Status.Reason, `program "corp-dns" present exited with status`) {
				reason = ch.Status.Reason
				return nil
			}
		}
		return fmt.Errorf("challenges:\n%s", testbed.DescribeChallenges(c.CM))
	})
	t.Logf("with the old key: %s", reason)
	pods := func() map[string]int32 { return podRestarts(c.releasePods(t, corp)) }
	before := pods()
	rotated := time.Now()
	applySecret(c.bind.KeySecret)
	c.waitIssued(t, "team-a", "corp-dns", []string{"rotate.corp.example.com"})
	t.Logf("MEASURED the Secret applied -> Certificate Ready: %s (the kubelet's sync period here: 10s; cert-manager's 60 s sleep after its self check)",
		time.Since(rotated).Round(100*time.Millisecond))
	if after := pods(); !maps.Equal(before, after) || len(after) != 1 {
		t.Errorf("the %s Pods (name: restarts) changed with the rotation: before %v, after %v", corp, before, after)
	}
}

// certificate creates a Certificate for dnsNames from the issuer of kind and name.
func (c *cluster) certificate(t *testing.T, ns, name, kind, issuer string, dnsNames ...string) {
	t.Helper()
	if _, err := c.CM.CertmanagerV1().Certificates(ns).Create(context.Background(), newCertificate(ns, name, kind, issuer, dnsNames...), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Certificate %s/%s: %v", ns, name, err)
	}
}

// newCertificate is a Certificate ns/name for dnsNames from the issuer of
// kind and name, its key pair in the Secret name-tls.
func newCertificate(ns, name, kind, issuer string, dnsNames ...string) *cmapi.Certificate {
	return &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cmapi.CertificateSpec{
			SecretName: name + "-tls",
			DNSNames:   dnsNames,
			IssuerRef:  cmmeta.IssuerReference{Name: issuer, Kind: kind},
		},
	}
}

// issue creates a Certificate for dnsName and waits until it is issued.
func (c *cluster) issue(t *testing.T, ns, name, kind, issuer, dnsName string) {
	t.Helper()
	c.certificate(t, ns, name, kind, issuer, dnsName)
	c.waitIssued(t, ns, name, []string{dnsName})
}

// waitIssued waits for Certificate ns/name to be Ready for dnsNames, and for
// its records to be cleaned up.
func (c *cluster) waitIssued(t *testing.T, ns, name string, dnsNames []string) {
	t.Helper()
	start := time.Now()
	got := c.waitCertificateReady(t, ns, name, 5*time.Minute)
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(dnsNames))) {
		t.Errorf("Certificate %s/%s issued for %q, want %q", ns, name, got, dnsNames)
	}
	t.Logf("Certificate %s/%s Ready after %s", ns, name, time.Since(start).Round(100*time.Millisecond))
	for _, dnsName := range dnsNames {
		c.waitNoTXT(t, "_acme-challenge."+strings.TrimPrefix(dnsName, "*."))
	}
}

// replaceArg replaces the argument old of a copied command with new.
func replaceArg(t *testing.T, args []string, old, new string) []string {
	t.Helper()
	i := slices.Index(args, old)
	if i < 0 {
		t.Fatalf("the command %q has no argument %q", args, old)
	}
	return slices.Replace(slices.Clone(args), i, i+1, new)
}
