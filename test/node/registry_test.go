//go:build node

package node

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// releaseVersion is the version the node test releases into its registry.
const releaseVersion = "0.2.0"

// published is a release made into the node's registry: release.json's
// image, or why making it failed.
type published struct {
	repository, digest string
	err                error
}

// startRegistry serves an OCI registry (go-containerregistry's) over HTTPS
// on loopback of the node's network namespace, with a certificate of a CA of
// its own that containerd is told to trust, as a node is for a private
// registry, and starts `make release` into it, which ends in c.release.
func (c *cluster) startRegistry(t *testing.T) {
	ca := testbed.NewCA(t, "registry-ca")
	certPEM, keyPEM := ca.Issue(t, "registry", nil, []net.IP{net.ParseIP("127.0.0.1")})
	dir := t.TempDir()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second}
	certFile, keyFile := testbed.WriteFile(t, dir, "tls.crt", certPEM), testbed.WriteFile(t, dir, "tls.key", keyPEM)
	go func() { _ = server.ServeTLS(listener, certFile, keyFile) }()
	t.Cleanup(func() { _ = server.Close() })
	c.registryHost = listener.Addr().String()
	c.registryCA = testbed.WriteFile(t, dir, "ca.crt", ca.CertPEM)
	c.TrustRegistry(t, c.registryHost, ca.CertPEM)

	c.release = make(chan published, 1)
	go func() {
		cmd := exec.Command(filepath.Join(c.root, "hack", "release.sh"))
		cmd.Dir = c.root
		// Unsigned (test/release checks signatures; keyless signing would
		// need Sigstore), and amd64 only: the node is amd64, and a cold arm64
		// base (minutes under qemu) would not fit this scenario's 5 minutes.
		cmd.Env = append(os.Environ(), "VERSION="+releaseVersion, "REGISTRY="+c.registryHost+"/mirror",
			"REGISTRY_CA="+c.registryCA, "RELEASE_DIR="+filepath.Join(dir, "release"), "SIGN=0", "ARCHS=amd64")
		out, err := cmd.CombinedOutput()
		if err != nil {
			c.release <- published{err: fmt.Errorf("hack/release.sh: %w\n%s", err, out)}
			return
		}
		var record struct {
			Image struct{ Repository, Digest string }
		}
		data, err := os.ReadFile(filepath.Join(dir, "release", "release.json"))
		if err == nil {
			err = json.Unmarshal(data, &record)
		}
		c.release <- published{repository: record.Image.Repository, digest: record.Image.Digest, err: err}
	}()
}

// installFromRegistry: docs/release.md's helm install, with only the
// registry's host changed (and its CA, which a private registry needs): the
// chart comes from the registry as an OCI artifact, and containerd pulls the
// image it pins from there by digest; nothing was imported for it.
func (c *cluster) installFromRegistry(t *testing.T) {
	var rel published
	select {
	case rel = <-c.release:
	case <-time.After(5 * time.Minute):
		t.Fatal("make release into the node's registry did not end within 5 minutes")
	}
	if rel.err != nil {
		t.Fatal(rel.err)
	}
	pinned := rel.repository + "@" + rel.digest
	if slices.Contains(c.ImageRefs(t), pinned) {
		t.Fatalf("containerd holds %s before the install: it must come from the registry", pinned)
	}
	commands := testbed.ShellCommands(t, testbed.FencedBlock(t, "docs/release.md", "helm install exec-webhook oci://"))
	if len(commands) != 1 {
		t.Fatalf("docs/release.md's block holds %q, want one command", commands)
	}
	args := commands[0][1:]
	for i, arg := range args {
		args[i] = strings.Replace(arg, "oci://registry.example.com/mirror/", "oci://"+c.registryHost+"/mirror/", 1)
	}
	if want := []string{"install", release}; !slices.Equal(args[:2], want) || !slices.Contains(args, "groupName="+groupName) {
		t.Fatalf("docs/release.md's command is %q; this test's constants say release %s, group %s", args, release, groupName)
	}
	c.Helm(t, append(args, "--ca-file", c.registryCA)...)
	t.Cleanup(func() { c.Helm(t, "uninstall", release, "--namespace", namespace, "--wait") })

	start := time.Now()
	c.waitAPIServiceAvailable(t)
	t.Logf("MEASURED helm install from the registry -> APIService Available: %s (image pulled by digest)", time.Since(start).Round(100*time.Millisecond))
	for _, pod := range c.webhookPods(t) {
		for _, container := range pod.Spec.Containers {
			if container.Image != pinned {
				t.Errorf("container %s of %s names image %s, want %s", container.Name, pod.Name, container.Image, pinned)
			}
		}
		// The image ID is the reference containerd resolved and pulled.
		for _, status := range pod.Status.ContainerStatuses {
			if status.ImageID != pinned {
				t.Errorf("container %s of %s runs image %s, want %s", status.Name, pod.Name, status.ImageID, pinned)
			}
		}
	}
	if refs := c.ImageRefs(t); !slices.Contains(refs, pinned) {
		t.Errorf("containerd holds no %s after the install: %q", pinned, refs)
	}
}
