//go:build release

// Package release runs `make release` into a real OCI registry on loopback
// (go-containerregistry's, over HTTPS with its own certificate) and checks
// what a user then pulls: the image by its digest, and the chart as an OCI
// artifact, pinned to that digest.
package release

import (
	"archive/tar"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"sigs.k8s.io/yaml"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

const version = "0.2.0"

// releaseRecord is what the test reads of release.json.
type releaseRecord struct {
	Version string `json:"version"`
	Image   struct {
		Repository        string   `json:"repository"`
		Digest            string   `json:"digest"`
		Platforms         []string `json:"platforms"`
		UncompressedBytes int64    `json:"uncompressedBytes"`
	} `json:"image"`
	SBOM  string `json:"sbom"`
	Chart struct {
		File     string `json:"file"`
		Digest   string `json:"digest"`
		PushedTo string `json:"pushedTo"`
	} `json:"chart"`
}

func TestReleaseIntoRegistry(t *testing.T) {
	root := testbed.RepoRoot(t)
	server := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	server.StartTLS()
	t.Cleanup(server.Close)
	caFile := testbed.WriteFile(t, t.TempDir(), "registry-ca.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate().Raw}))
	host := strings.TrimPrefix(server.URL, "https://")
	registryPath := host + "/mirror"
	transport := remote.WithTransport(server.Client().Transport)

	cmd := exec.Command("make", "--no-print-directory", "release", "VERSION="+version, "REGISTRY="+registryPath, "REGISTRY_CA="+caFile,
		"RELEASE_DIR="+t.TempDir())
	cmd.Dir = root
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make release: %v\n%s", err, stderr.String())
	}
	t.Logf("make release:\n%s", stderr.String())
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	releaseJSON := lines[len(lines)-1]
	var rel releaseRecord
	data, err := os.ReadFile(releaseJSON)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rel); err != nil {
		t.Fatal(err)
	}
	if rel.Version != version || rel.Image.Repository != registryPath+"/cert-manager-webhook-exec" || !strings.HasPrefix(rel.Image.Digest, "sha256:") {
		t.Fatalf("release.json: %s", data)
	}
	t.Logf("image %s@%s, %d MiB uncompressed, platforms %v", rel.Image.Repository, rel.Image.Digest, rel.Image.UncompressedBytes>>20, rel.Image.Platforms)

	t.Run("the tag serves the recorded digest", func(t *testing.T) {
		desc, err := remote.Head(parseReference(t, rel.Image.Repository+":"+version), transport)
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest.String() != rel.Image.Digest {
			t.Errorf("the registry's %s:%s is %s, release.json says %s", rel.Image.Repository, version, desc.Digest, rel.Image.Digest)
		}
	})

	t.Run("the image pulled by digest runs as that version", func(t *testing.T) {
		image, err := remote.Image(parseReference(t, rel.Image.Repository+"@"+rel.Image.Digest), transport)
		if err != nil {
			t.Fatal(err)
		}
		config, err := image.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if config.OS+"/"+config.Architecture != "linux/amd64" || config.Config.User != "65532:65532" {
			t.Errorf("image config: %s/%s, user %q", config.OS, config.Architecture, config.Config.User)
		}
		binary := extract(t, image, "usr/local/bin/cert-manager-webhook-exec")
		got, err := exec.Command(binary, "version").Output()
		if err != nil {
			t.Fatal(err)
		}
		if want := "version: " + version + "\n"; !strings.HasPrefix(string(got), want) {
			t.Errorf("the pulled image's binary says\n%s\nwant it to begin with %q", got, want)
		}
	})

	t.Run("the chart pulled from the registry pins the image by digest", func(t *testing.T) {
		helm := testbed.Asset(t, root, "helm")
		dir := t.TempDir()
		pull := exec.Command(helm, "pull", "oci://"+registryPath+"/charts/cert-manager-webhook-exec", "--version", version,
			"--ca-file", caFile, "--untar", "--destination", dir)
		pull.Env = append(os.Environ(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
		pulled, err := pull.CombinedOutput()
		if err != nil {
			t.Fatalf("helm pull: %v\n%s", err, pulled)
		}
		if digest := "Digest: " + rel.Chart.Digest + "\n"; rel.Chart.Digest == "" || !strings.Contains(string(pulled), digest) {
			t.Errorf("helm pull printed\n%s\nwant the chart digest release.json records (%q)", pulled, rel.Chart.Digest)
		}
		chart := filepath.Join(dir, "cert-manager-webhook-exec")
		rendered, err := exec.Command(helm, "template", "x", chart, "--set", "groupName=acme.example.com", "--show-only", "templates/deployment.yaml").CombinedOutput()
		if err != nil {
			t.Fatalf("helm template: %v\n%s", err, rendered)
		}
		if want := `image: "` + rel.Image.Repository + "@" + rel.Image.Digest + "\"\n"; strings.Count(string(rendered), want) != 2 {
			t.Errorf("the pulled chart's containers do not both run %s:\n%s", want, rendered)
		}
		var meta struct{ Version, AppVersion string }
		if err := yaml.Unmarshal(readFile(t, filepath.Join(chart, "Chart.yaml")), &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Version != version || meta.AppVersion != version {
			t.Errorf("the pulled chart is version %q, appVersion %q; want %s for both", meta.Version, meta.AppVersion, version)
		}
	})

	t.Run("docs/release.md's helm install from the registry", func(t *testing.T) {
		commands := testbed.ShellCommands(t, testbed.FencedBlock(t, "docs/release.md", "helm install exec-webhook oci://"))
		if len(commands) != 1 {
			t.Fatalf("the block holds %q, want one command", commands)
		}
		args := commands[0][1:]
		for i, arg := range args {
			args[i] = strings.Replace(arg, "oci://registry.example.com/mirror/", "oci://"+registryPath+"/", 1)
		}
		// A client-side dry run: everything but the cluster.
		install := exec.Command(testbed.Asset(t, root, "helm"), append(args, "--dry-run=client", "--ca-file", caFile)...)
		install.Env = append(os.Environ(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
		out, err := install.CombinedOutput()
		if err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if want := `image: "` + rel.Image.Repository + "@" + rel.Image.Digest + "\"\n"; strings.Count(string(out), want) != 2 {
			t.Errorf("the documented install does not run %s in both containers:\n%s", want, out)
		}
	})

	t.Run("the SBOM names the release", func(t *testing.T) {
		var sbom struct {
			Name     string `json:"name"`
			Packages []struct {
				SPDXID      string `json:"SPDXID"`
				VersionInfo string `json:"versionInfo"`
			} `json:"packages"`
		}
		if err := json.Unmarshal(readFile(t, filepath.Join(filepath.Dir(releaseJSON), rel.SBOM)), &sbom); err != nil {
			t.Fatal(err)
		}
		if sbom.Name != "cert-manager-webhook-exec-"+version+"-linux-amd64" || len(sbom.Packages) < 100 ||
			sbom.Packages[0].SPDXID != "SPDXRef-image" || sbom.Packages[0].VersionInfo != version {
			t.Errorf("SBOM %q with %d packages, the first %+v", sbom.Name, len(sbom.Packages), sbom.Packages[0])
		}
	})

	t.Run("without REGISTRY nothing is pushed", func(t *testing.T) {
		before := catalog(t, server)
		cmd := exec.Command("make", "--no-print-directory", "release", "VERSION=0.2.1", "RELEASE_DIR="+t.TempDir())
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make release: %v\n%s", err, out)
		}
		if after := catalog(t, server); after != before {
			t.Errorf("the registry's catalog changed from %s to %s", before, after)
		}
	})
}

// extract writes the file at path in image's flattened file system to a
// temporary file and returns its name.
func extract(t *testing.T, image v1.Image, path string) string {
	t.Helper()
	reader := mutate.Extract(image)
	defer reader.Close()
	files := tar.NewReader(reader)
	for {
		header, err := files.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("the image has no %s", path)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(header.Name, "./") != path {
			continue
		}
		out := filepath.Join(t.TempDir(), filepath.Base(path))
		file, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(file, files); err != nil {
			t.Fatal(err)
		}
		if err := file.Close(); err != nil {
			t.Fatal(err)
		}
		return out
	}
}

func parseReference(t *testing.T, ref string) name.Reference {
	t.Helper()
	parsed, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

// catalog is the registry's list of repositories.
func catalog(t *testing.T, server *httptest.Server) string {
	t.Helper()
	resp, err := server.Client().Get(server.URL + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("catalog: %v %d %s", err, resp.StatusCode, body)
	}
	return string(body)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
