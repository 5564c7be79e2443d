//go:build node

package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// The node test releases two versions from this tree into its registry: the
// README's install takes the first, the upgrade the second.
const (
	releaseA = "0.2.0"
	releaseB = "0.2.1"
)

// published is a release made into the node's registry: release.json's
// version and image, or why making it failed.
type published struct {
	version, repository, digest string
	err                         error
}

// pinned is the image reference the release's chart runs.
func (p published) pinned() string { return p.repository + "@" + p.digest }

// startRegistry serves an OCI registry (go-containerregistry's) over HTTPS
// on loopback of the node's network namespace, with a certificate of a CA of
// its own that containerd is told to trust, as a node is for a private
// registry, and starts `make release` of releaseA then releaseB into it,
// signed with a key made here, each ending in c.releases.
func (c *cluster) startRegistry(t *testing.T) {
	dir := t.TempDir()
	reg := testbed.StartRegistry(t, dir)
	// The README's registry path with only the host changed.
	c.registryPath = reg.Host + "/cert-manager-webhook-exec"
	c.registryCA = reg.CAFile
	c.TrustRegistry(t, reg.Host, reg.CAPEM)

	// The key pair the README's verify commands name.
	c.cosign = testbed.Asset(t, c.root, "cosign")
	c.cosignKeys = testbed.NewCosignKeyPair(t, c.cosign, dir)

	c.releases = make(chan published, 2)
	go func() {
		for _, version := range []string{releaseA, releaseB} {
			rel := c.makeRelease(version, filepath.Join(dir, "release-"+version))
			c.releases <- rel
			if rel.err != nil {
				return
			}
		}
	}()
}

// makeRelease runs hack/release.sh for version into the registry: amd64
// only, since the node is amd64 and a cold arm64 base (minutes under qemu)
// would hold up the scenarios; test/release makes and checks both.
func (c *cluster) makeRelease(version, dir string) published {
	cmd := exec.Command(filepath.Join(c.root, "hack", "release.sh"))
	cmd.Dir = c.root
	cmd.Env = append(os.Environ(), "VERSION="+version, "REGISTRY="+c.registryPath, "REGISTRY_CA="+c.registryCA,
		"RELEASE_DIR="+dir, "COSIGN_KEY="+c.cosignKeys.Private, "COSIGN_PASSWORD="+testbed.CosignPassword, "ARCHS=amd64")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return published{version: version, err: fmt.Errorf("hack/release.sh of %s: %w\n%s", version, err, out)}
	}
	var record struct {
		Image struct{ Repository, Digest string }
	}
	data, err := os.ReadFile(filepath.Join(dir, "release.json"))
	if err == nil {
		err = json.Unmarshal(data, &record)
	}
	return published{version: version, repository: record.Image.Repository, digest: record.Image.Digest, err: err}
}

// fromRegistry: scenario 11, as a user gets a release: verified with the
// README's cosign commands, installed with its helm command, then upgraded
// to the next release and rolled back while Certificates are issued.
func (c *cluster) fromRegistry(t *testing.T) {
	var rels []published
	for range 2 {
		select {
		case rel := <-c.releases:
			if rel.err != nil {
				t.Fatal(rel.err)
			}
			rels = append(rels, rel)
		case <-time.After(8 * time.Minute):
			t.Fatalf("make release of %s and %s into the node's registry did not end within 8 minutes", releaseA, releaseB)
		}
	}
	a, b := rels[0], rels[1]
	if a.digest == b.digest {
		t.Fatalf("releases %s and %s have the same image %s", a.version, b.version, a.digest)
	}
	t.Cleanup(func() {
		if out, err := c.TryHelm("uninstall", release, "--namespace", namespace, "--wait"); err != nil && !strings.Contains(out, "not found") {
			t.Errorf("helm uninstall: %v\n%s", err, out)
		}
	})
	inOrder(t,
		scenario{"the README's cosign verify of the image and the chart", func(t *testing.T) { c.verifyRelease(t, a) }},
		scenario{"the README's helm install: the chart as an OCI artifact, the image pulled by digest", func(t *testing.T) { c.installFromRegistry(t, a) }},
		scenario{"upgraded to the next release and rolled back during issuance", func(t *testing.T) { c.upgradeDuringIssuance(t, a, b) }},
	)
}

// verifyRelease runs the README's key-based cosign verify commands, with
// only the registry host (the README's example mirror's) and the key's path
// changed.
func (c *cluster) verifyRelease(t *testing.T, rel published) {
	commands := testbed.ShellCommands(t, testbed.FencedBlock(t, "README.md", "cosign verify --key cosign.pub "))
	if len(commands) != 2 {
		t.Fatalf("the README's block holds %q, want two cosign verify commands (image, chart)", commands)
	}
	for _, command := range commands {
		args := replaceArg(t, testbed.WithRegistry(command[1:], testbed.ExampleMirror, c.registryPath), "cosign.pub", c.cosignKeys.Public)
		cmd := exec.Command(c.cosign, args...)
		cmd.Env = c.cosignKeys.VerifyEnv(c.registryCA, c.tmp)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "The signatures were verified against the specified public key") {
			t.Errorf("cosign %s passed without the README's message:\n%s", strings.Join(args, " "), stderr.String())
		}
		// The image's signed payload names the digest the tag resolves to.
		if ref := args[len(args)-1]; !strings.Contains(ref, "/charts/") && !strings.Contains(stdout.String(), rel.digest) {
			t.Errorf("cosign verified the image, but no signature names %s:\n%s", rel.digest, stdout.String())
		}
		t.Logf("cosign %s: passed", args[len(args)-1])
	}
}

// installFromRegistry: the README's helm install, with only the registry's
// host changed (and its CA, which a private registry needs): the chart comes
// from the registry as an OCI artifact, and containerd pulls the image it
// pins from there by digest; nothing was imported for it.
func (c *cluster) installFromRegistry(t *testing.T, rel published) {
	if slices.Contains(c.ImageRefs(t), rel.pinned()) {
		t.Fatalf("containerd holds %s before the install: it must come from the registry", rel.pinned())
	}
	commands := testbed.ShellCommands(t, testbed.FencedBlock(t, "README.md", "helm install exec-webhook "))
	if len(commands) != 1 {
		t.Fatalf("the README's block holds %q, want one command", commands)
	}
	args := testbed.WithRegistry(commands[0][1:], testbed.PublishedRegistry, c.registryPath)
	if want := []string{"install", release, "oci://" + c.registryPath + "/charts/cert-manager-webhook-exec", "--version", releaseA}; !slices.Equal(args[:5], want) ||
		!slices.Contains(args, "groupName="+groupName) {
		t.Fatalf("the README's command is %q; this test's constants say %q, group %s", args, want, groupName)
	}
	start := time.Now()
	c.Helm(t, append(args, "--ca-file", c.registryCA)...)
	c.waitAPIServiceAvailable(t)
	t.Logf("MEASURED helm install from the registry -> APIService Available: %s (image pulled by digest)", time.Since(start).Round(100*time.Millisecond))
	c.runsRelease(t, rel)
	if refs := c.ImageRefs(t); !slices.Contains(refs, rel.pinned()) {
		t.Errorf("containerd holds no %s after the install: %q", rel.pinned(), refs)
	}
}

// runsRelease checks that every container of the release's Pods names rel's
// image by digest and runs it (the image ID is what containerd resolved and
// pulled), and that its binary says rel's version.
func (c *cluster) runsRelease(t *testing.T, rel published) {
	t.Helper()
	pods := c.webhookPods(t)
	if len(pods) == 0 {
		t.Fatal("no webhook Pod")
	}
	for _, pod := range pods {
		for _, container := range pod.Spec.Containers {
			if container.Image != rel.pinned() {
				t.Errorf("container %s of %s names image %s, want %s", container.Name, pod.Name, container.Image, rel.pinned())
			}
		}
		for _, status := range pod.Status.ContainerStatuses {
			if status.ImageID != rel.pinned() {
				t.Errorf("container %s of %s runs image %s, want %s", status.Name, pod.Name, status.ImageID, rel.pinned())
			}
		}
		out := c.Kubectl(t, "-n", namespace, "exec", pod.Name, "-c", "webhook", "--", "/usr/local/bin/cert-manager-webhook-exec", "--version")
		if !strings.HasPrefix(out, "version: "+rel.version+"\n") {
			t.Errorf("--version in %s says %q, want release %s", pod.Name, out, rel.version)
		}
	}
}

// The record TTLs of the two releases' solver configs: releaseA keeps the
// example program's default, values-release-b.yaml sets another.
const (
	ttlA = 60
	ttlB = 90
)

// upgradeDuringIssuance: with a Certificate created every 15 s,
// docs/operations.md's helm upgrade to release b (two replicas, a changed
// solver config) and then its helm rollback to a. No Challenge fails, every
// Certificate is issued once, no record or zone Lease is left, and records
// presented after each step carry that step's config.
func (c *cluster) upgradeDuringIssuance(t *testing.T, a, b published) {
	commands := testbed.ShellCommands(t, testbed.FencedBlock(t, "docs/operations.md", "helm upgrade exec-webhook "))
	if len(commands) != 2 || commands[1][1] != "rollback" {
		t.Fatalf("docs/operations.md's block holds %q, want helm upgrade then helm rollback", commands)
	}
	upgrade := replaceArg(t, testbed.WithRegistry(commands[0][1:], testbed.PublishedRegistry, c.registryPath), "my-changes.yaml", filepath.Join("testdata", "values-release-b.yaml"))
	upgrade = append(upgrade, "--ca-file", c.registryCA, "--wait")
	rollback := append(commands[1][1:], "--wait")
	if v := upgrade[slices.Index(upgrade, "--version")+1]; v != b.version {
		t.Fatalf("docs/operations.md upgrades to %s; this test released %s", v, b.version)
	}

	// What --reuse-values would have done instead: kept a's image.
	dryRun := slices.Clone(upgrade)
	dryRun[slices.Index(dryRun, "--reset-then-reuse-values")] = "--reuse-values"
	if out := c.Helm(t, append(dryRun, "--dry-run=server")...); !strings.Contains(out, a.pinned()) || strings.Contains(out, b.pinned()) {
		t.Errorf("helm upgrade --reuse-values should keep the old chart's image %s (docs/operations.md says so); it renders:\n%s", a.pinned(), testbed.Tail(out, 40))
	}

	// Every 15 s: cert-manager's challenge workers (5) each sleep 60 s
	// after a self check, so more would only queue.
	leasesBefore := c.zoneLeasesTaken(t)
	issued := c.issueContinuously(t, "up", 15*time.Second)
	since := metav1.Now()
	// The first records presented: issuance is under way.
	presentedByA := issued.next(t)
	c.waitPresentedTTL(t, presentedByA, ttlA)

	c.Helm(t, upgrade...)
	t.Logf("helm upgrade to %s done after %s of issuance", b.version, time.Since(since.Time).Round(time.Second))
	c.runsRelease(t, b)
	if pods := c.webhookPods(t); len(pods) != 2 {
		t.Errorf("%d webhook Pods after the upgrade, want values-release-b.yaml's 2", len(pods))
	}
	c.waitPresentedTTL(t, issued.next(t), ttlB)
	// Issuance goes on under b until a record a presented is cleaned up by
	// b; the records b presents now are cleaned up after the rollback, by a.
	c.waitCertificateReady(t, "team-a", presentedByA, 5*time.Minute)
	c.waitNoTXT(t, "_acme-challenge."+presentedByA+".example.com")

	c.Helm(t, rollback...)
	t.Logf("helm rollback to %s done after %s of issuance", a.version, time.Since(since.Time).Round(time.Second))
	c.runsRelease(t, a)
	c.waitPresentedTTL(t, issued.next(t), ttlA)
	names := issued.stop(t)

	for _, name := range names {
		c.waitCertificateReady(t, "team-a", name, 5*time.Minute)
	}
	for _, name := range names {
		c.waitNoTXT(t, "_acme-challenge."+name+".example.com")
		cert, err := c.CM.CertmanagerV1().Certificates("team-a").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cert.Status.LastFailureTime != nil || cert.Status.FailedIssuanceAttempts != nil {
			t.Errorf("Certificate team-a/%s failed an issuance at %v (%v attempts)", name, cert.Status.LastFailureTime, cert.Status.FailedIssuanceAttempts)
		}
		if cert.Status.Revision == nil || *cert.Status.Revision != 1 {
			t.Errorf("Certificate team-a/%s is at revision %v, want 1 (issued once)", name, cert.Status.Revision)
		}
	}
	// cert-manager records a Challenge's failed present or clean up as a
	// Warning Event on it, and retries: a retried failure counts too.
	events, err := c.Kube.CoreV1().Events("team-a").List(context.Background(), metav1.ListOptions{FieldSelector: "type=" + corev1.EventTypeWarning})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, e := range events.Items {
		at := e.LastTimestamp.Time
		if at.IsZero() {
			at = e.EventTime.Time
		}
		if at.Before(since.Time) {
			continue
		}
		failed = append(failed, fmt.Sprintf("%s %s: %s: %s (x%d)", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message, e.Count))
	}
	if len(failed) > 0 {
		t.Errorf("Warning Events in team-a during the upgrade and rollback:\n%s", strings.Join(failed, "\n"))
	}
	// b's two replicas take zone Leases, so that none being left means
	// each was released (or went with its Pod).
	taken := c.zoneLeasesTaken(t) - leasesBefore
	if taken == 0 {
		t.Errorf("no zone Lease was taken during the issuance: release %s's two replicas should have taken them", b.version)
	}
	leases := c.Kubectl(t, "-n", namespace, "get", "leases", "-l", "app.kubernetes.io/component=exec-zone-lock", "-o", "name")
	if strings.TrimSpace(leases) != "" {
		t.Errorf("zone Leases left after the issuance: %s", leases)
	}
	t.Logf("MEASURED %d Certificates issued across helm upgrade %s -> %s and helm rollback -> %s: %d Warning Events; %d zone Leases taken, %d left",
		len(names), a.version, b.version, a.version, len(failed), taken, len(strings.Fields(leases)))
}

// zoneLeasesTaken counts the Leases the webhook created, from the audit log.
func (c *cluster) zoneLeasesTaken(t *testing.T) int {
	t.Helper()
	n := 0
	for _, e := range c.AuditedRequests(t, webhookUser) {
		if e.Verb == "create" && e.ObjectRef.Resource == "leases" && e.ObjectRef.Namespace == namespace && e.ResponseStatus.Code == 201 {
			n++
		}
	}
	return n
}

// waitPresentedTTL waits for the record of Certificate name's Challenge
// and checks that it has the TTL of the config that presented it.
func (c *cluster) waitPresentedTTL(t *testing.T, name string, ttl uint32) {
	t.Helper()
	fqdn := "_acme-challenge." + name + ".example.com"
	var got []uint32
	waitUntil(t, "the record "+fqdn, 2*time.Minute, func() error {
		got = nil
		for _, rr := range c.bind.TXTRecords(t, fqdn) {
			got = append(got, rr.Hdr.Ttl)
		}
		if len(got) == 0 {
			return fmt.Errorf("none yet")
		}
		return nil
	})
	if slices.ContainsFunc(got, func(v uint32) bool { return v != ttl }) {
		t.Errorf("%s has TTLs %v, want %d (the solver config of the release serving)", fqdn, got, ttl)
	}
}

// issuance creates Certificates one after the other until stopped.
type issuance struct {
	mu      sync.Mutex
	names   []string
	err     error
	created chan string
	done    chan struct{}
	stopped chan struct{}
}

// issueContinuously creates a Certificate prefix-N for prefix-N.example.com
// from team-a's Issuer every interval, from now until stop.
func (c *cluster) issueContinuously(t *testing.T, prefix string, interval time.Duration) *issuance {
	is := &issuance{created: make(chan string, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(is.stopped)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for n := 1; ; n++ {
			name := fmt.Sprintf("%s-%d", prefix, n)
			if _, err := c.CM.CertmanagerV1().Certificates("team-a").Create(context.Background(),
				newCertificate("team-a", name, "Issuer", "pebble", name+".example.com"), metav1.CreateOptions{}); err != nil {
				is.mu.Lock()
				is.err = fmt.Errorf("creating Certificate team-a/%s: %w", name, err)
				is.mu.Unlock()
				return
			}
			is.mu.Lock()
			is.names = append(is.names, name)
			is.mu.Unlock()
			// The newest Certificate for whoever waits for one.
			select {
			case <-is.created:
			default:
			}
			is.created <- name
			select {
			case <-is.done:
				return
			case <-ticker.C:
			}
		}
	}()
	t.Cleanup(func() { is.stop(t) })
	return is
}

// next returns the first Certificate created from now on.
func (is *issuance) next(t *testing.T) string {
	t.Helper()
	select {
	case <-is.created:
	default:
	}
	select {
	case name := <-is.created:
		return name
	case <-is.stopped:
		is.mu.Lock()
		defer is.mu.Unlock()
		t.Fatalf("issuance stopped: %v", is.err)
	}
	return ""
}

// stop ends the issuance and returns the Certificates it created.
func (is *issuance) stop(t *testing.T) []string {
	t.Helper()
	select {
	case <-is.done:
	default:
		close(is.done)
	}
	<-is.stopped
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.err != nil {
		t.Fatal(is.err)
	}
	return slices.Clone(is.names)
}
