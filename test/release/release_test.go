//go:build release

// Package release runs `make release` into a real OCI registry on loopback
// (go-containerregistry's, over HTTPS with a CA made here), signing with a
// cosign key made here, and checks what a user then pulls and verifies: the
// image index (linux/amd64 and linux/arm64) by its digest, each image's size,
// binary and signed SBOM, the chart as an OCI artifact pinned to the index,
// and that cosign refuses what was not signed or was altered.
package release

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"sigs.k8s.io/yaml"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

const version = "0.2.0"

// maxImageMiB is what each architecture's image may weigh, uncompressed
// (its layers as tar files). Issue 20's goal is 100 MiB; it is not reached:
// the static binary alone is 71-76 MiB, and nsupdate's libraries link ICU
// (bind9-libs → libxml2 → libicu72, 35 MiB). With docs, manuals, locales and
// glibc's iconv modules left out, amd64 is 193 MiB (201 before) and arm64 198
// MiB. The bound keeps the image from growing back unnoticed; docs/release.md
// says what would reach the goal.
const maxImageMiB = 200

// releaseRecord is what the test reads of release.json.
type releaseRecord struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Image   struct {
		Repository string   `json:"repository"`
		Digest     string   `json:"digest"`
		Platforms  []string `json:"platforms"`
		Images     map[string]struct {
			Digest            string `json:"digest"`
			UncompressedBytes int64  `json:"uncompressedBytes"`
			CompressedBytes   int64  `json:"compressedBytes"`
			SBOM              string `json:"sbom"`
		} `json:"images"`
	} `json:"image"`
	Chart struct {
		File     string `json:"file"`
		Digest   string `json:"digest"`
		PushedTo string `json:"pushedTo"`
	} `json:"chart"`
	Signed bool `json:"signed"`
}

type sbomDocument struct {
	Name     string `json:"name"`
	Packages []struct {
		SPDXID       string `json:"SPDXID"`
		Name         string `json:"name"`
		VersionInfo  string `json:"versionInfo"`
		ExternalRefs []struct {
			ReferenceLocator string `json:"referenceLocator"`
		} `json:"externalRefs"`
	} `json:"packages"`
}

func TestReleaseIntoRegistry(t *testing.T) {
	root := testbed.RepoRoot(t)
	dir := t.TempDir()

	// The registry, over HTTPS with a certificate of a CA made here.
	reg := testbed.StartRegistry(t, dir)
	host, caFile := reg.Host, reg.CAFile
	// The README's registry path with only the host changed.
	registryPath := host + "/cert-manager-webhook-exec"
	client := clientTrusting(t, reg.CAPEM)
	transport := remote.WithTransport(client.Transport)

	// A signing key, as docs/release.md makes one.
	cosign := testbed.Asset(t, root, "cosign")
	keys := testbed.NewCosignKeyPair(t, cosign, dir)
	publicKey := keys.Public
	cosignEnv := keys.VerifyEnv(caFile, dir)

	releaseDir := filepath.Join(dir, "release")
	cmd := exec.Command("make", "--no-print-directory", "release", "VERSION="+version, "REGISTRY="+registryPath, "REGISTRY_CA="+caFile,
		"RELEASE_DIR="+releaseDir, "COSIGN_KEY="+keys.Private)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD="+testbed.CosignPassword)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	began := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make release: %v\n%s", err, stderr.String())
	}
	t.Logf("make release took %s:\n%s", time.Since(began).Round(time.Second), stderr.String())
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	releaseJSON := lines[len(lines)-1]
	if releaseJSON != filepath.Join(releaseDir, "release.json") {
		t.Fatalf("make release printed %q last, want the path of %s/release.json", releaseJSON, releaseDir)
	}
	var rel releaseRecord
	if err := json.Unmarshal(readFile(t, releaseJSON), &rel); err != nil {
		t.Fatal(err)
	}
	repository := registryPath + "/cert-manager-webhook-exec"
	if rel.Version != version || rel.Image.Repository != repository || !strings.HasPrefix(rel.Image.Digest, "sha256:") ||
		strings.Join(rel.Image.Platforms, ",") != "linux/amd64,linux/arm64" || !rel.Signed || !strings.HasPrefix(rel.Chart.Digest, "sha256:") {
		t.Fatalf("release.json: %s", readFile(t, releaseJSON))
	}
	indexRef := repository + "@" + rel.Image.Digest
	chartRepository := registryPath + "/charts/cert-manager-webhook-exec"
	t.Logf("image index %s; chart %s@%s", indexRef, chartRepository, rel.Chart.Digest)

	// runCosign runs cosign trusting the registry's CA; with a key and no
	// transparency log, verification needs nothing of Sigstore's public instance.
	runCosign := func(args ...string) (string, error) {
		c := exec.Command(cosign, args...)
		c.Env = cosignEnv
		var stdout, stderr bytes.Buffer
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		return stdout.String() + stderr.String(), err
	}

	t.Run("the tag serves an index of linux/amd64 and linux/arm64", func(t *testing.T) {
		index, err := remote.Index(parseReference(t, repository+":"+version), transport)
		if err != nil {
			t.Fatal(err)
		}
		digest, err := index.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if digest.String() != rel.Image.Digest {
			t.Errorf("the tag %s serves %s, release.json says %s", version, digest, rel.Image.Digest)
		}
		manifest, err := index.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range manifest.Manifests {
			platform := m.Platform.OS + "/" + m.Platform.Architecture
			got = append(got, platform)
			if want := rel.Image.Images[m.Platform.Architecture].Digest; m.Digest.String() != want {
				t.Errorf("the index's %s manifest is %s, release.json says %s", platform, m.Digest, want)
			}
		}
		if strings.Join(got, ",") != "linux/amd64,linux/arm64" {
			t.Errorf("the index holds %v, want linux/amd64 and linux/arm64", got)
		}
	})

	for _, arch := range []string{"amd64", "arm64"} {
		t.Run("the "+arch+" image", func(t *testing.T) {
			image, err := remote.Image(parseReference(t, repository+"@"+rel.Image.Images[arch].Digest), transport)
			if err != nil {
				t.Fatal(err)
			}
			config, err := image.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if config.OS+"/"+config.Architecture != "linux/"+arch || config.Config.User != "65532:65532" {
				t.Errorf("image config: %s/%s, user %q", config.OS, config.Architecture, config.Config.User)
			}
			size := uncompressedSize(t, image)
			t.Logf("linux/%s: %.1f MiB uncompressed (release.json: %d bytes), %.1f MiB compressed",
				arch, float64(size)/(1<<20), rel.Image.Images[arch].UncompressedBytes, float64(rel.Image.Images[arch].CompressedBytes)/(1<<20))
			if size > maxImageMiB<<20 {
				t.Errorf("linux/%s is %.1f MiB uncompressed, more than %d MiB", arch, float64(size)/(1<<20), maxImageMiB)
			}
			if size != rel.Image.Images[arch].UncompressedBytes {
				t.Errorf("its layers add up to %d bytes, release.json says %d", size, rel.Image.Images[arch].UncompressedBytes)
			}

			root := rootFS(t, image)
			machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
			file, err := elf.Open(filepath.Join(root, "usr/local/bin/cert-manager-webhook-exec"))
			if err != nil {
				t.Fatal(err)
			}
			if file.Machine != machine {
				t.Errorf("the binary is for %s, want %s", file.Machine, machine)
			}
			if err := file.Close(); err != nil {
				t.Fatal(err)
			}
			// The image's programs in its own root file system, as its user;
			// arm64's under Debian's static qemu-user copied into it (which
			// hack/image.sh installs for the arm64 build), so that no
			// binfmt_misc handler is needed.
			var prefix []string
			if arch == "arm64" {
				qemu, err := exec.LookPath("qemu-aarch64-static")
				if err != nil {
					t.Fatalf("qemu-aarch64-static, which runs the arm64 image here: %v", err)
				}
				if out, err := exec.Command("cp", qemu, filepath.Join(root, "qemu-aarch64-static")).CombinedOutput(); err != nil {
					t.Fatalf("copying qemu-aarch64-static into the image's files: %v\n%s", err, out)
				}
				prefix = []string{"/qemu-aarch64-static"}
			}
			inImage := func(args ...string) string {
				t.Helper()
				cmd := exec.Command("chroot", append(append([]string{"--userspec=" + config.Config.User, root}, prefix...), args...)...)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("%s in the %s image: %v\n%s", strings.Join(args, " "), arch, err, out)
				}
				return string(out)
			}
			got := inImage("/usr/local/bin/cert-manager-webhook-exec", "--version")
			if want := "version: " + version + "\ncommit:  " + rel.Commit + "\n"; !strings.HasPrefix(got, want) {
				t.Errorf("the %s binary says\n%s\nwant it to begin with\n%s", arch, got, want)
			}
			if help := inImage("/usr/local/bin/cert-manager-webhook-exec", "check", "--help"); !strings.Contains(help, "--domain") {
				t.Errorf("check --help in the %s image:\n%s", arch, help)
			}
			if uid := strings.TrimSpace(inImage("/usr/bin/id", "-u")); uid != "65532" {
				t.Errorf("id -u in the %s image says %s, want 65532", arch, uid)
			}
			t.Logf("linux/%s binary:\n%s", arch, got)
		})
	}

	t.Run("cosign verifies the index, each image and the chart with the public key", func(t *testing.T) {
		refs := []string{indexRef, chartRepository + ":" + version}
		for _, arch := range []string{"amd64", "arm64"} {
			refs = append(refs, repository+"@"+rel.Image.Images[arch].Digest)
		}
		for _, ref := range refs {
			out, err := runCosign("verify", "--key", publicKey, "--insecure-ignore-tlog=true", ref)
			if err != nil {
				t.Errorf("cosign verify %s: %v\n%s", ref, err, out)
				continue
			}
			if !strings.Contains(out, "The signatures were verified against the specified public key") {
				t.Errorf("cosign verify %s printed\n%s", ref, out)
			}
			if ref == indexRef {
				t.Logf("cosign verify --key cosign.pub --insecure-ignore-tlog=true %s:\n%s", ref, out)
			}
		}
	})

	t.Run("each image's signed SBOM lists cert-manager and curl with versions", func(t *testing.T) {
		certManager := goModuleVersion(t, root, "github.com/cert-manager/cert-manager")
		for _, arch := range []string{"amd64", "arm64"} {
			ref := repository + "@" + rel.Image.Images[arch].Digest
			out, err := runCosign("verify-attestation", "--key", publicKey, "--insecure-ignore-tlog=true", "--type", "spdxjson", ref)
			if err != nil {
				t.Fatalf("cosign verify-attestation %s: %v\n%s", ref, err, out)
			}
			attested := attestedSBOM(t, out)
			var local sbomDocument
			if err := json.Unmarshal(readFile(t, filepath.Join(releaseDir, rel.Image.Images[arch].SBOM)), &local); err != nil {
				t.Fatal(err)
			}
			if attested.Name != local.Name || len(attested.Packages) != len(local.Packages) {
				t.Errorf("the attested SBOM (%s, %d packages) is not release's file (%s, %d packages)",
					attested.Name, len(attested.Packages), local.Name, len(local.Packages))
			}
			if want := "cert-manager-webhook-exec-" + version + "-linux-" + arch; attested.Name != want {
				t.Errorf("the SBOM is named %q, want %q", attested.Name, want)
			}
			versions := map[string]string{}
			goModules, debs := 0, 0
			for _, p := range attested.Packages {
				for _, ref := range p.ExternalRefs {
					switch {
					case strings.HasPrefix(ref.ReferenceLocator, "pkg:golang/"):
						goModules++
						versions["go:"+p.Name] = p.VersionInfo
					case strings.HasPrefix(ref.ReferenceLocator, "pkg:deb/debian/"):
						debs++
						versions["deb:"+p.Name] = p.VersionInfo
						if !strings.Contains(ref.ReferenceLocator, "arch="+arch) && !strings.Contains(ref.ReferenceLocator, "arch=all") {
							t.Errorf("%s's purl %s is not for %s", p.Name, ref.ReferenceLocator, arch)
						}
					}
				}
			}
			t.Logf("linux/%s SBOM: %d Go modules, %d Debian packages", arch, goModules, debs)
			if got := versions["go:github.com/cert-manager/cert-manager"]; got != certManager {
				t.Errorf("the SBOM lists github.com/cert-manager/cert-manager at %q, go.mod requires %s", got, certManager)
			}
			if got := versions["deb:curl"]; !strings.HasPrefix(got, "7.88.1-10+deb12u") {
				t.Errorf("the SBOM lists curl at %q, want bookworm's 7.88.1-10+deb12u*", got)
			}
		}
	})

	t.Run("docs/release.md's SBOM command lists the packages", func(t *testing.T) {
		command := testbed.Substitute(t, testbed.FencedBlock(t, "docs/release.md", "cosign verify-attestation "),
			"cosign.pub", publicKey,
			testbed.ExampleMirror+"/cert-manager-webhook-exec@sha256:AMD64_DIGEST", repository+"@"+rel.Image.Images["amd64"].Digest)
		sh := exec.Command("bash", "-ec", "set -o pipefail; "+command)
		sh.Env = append(slices.Clone(cosignEnv), "PATH="+filepath.Dir(cosign)+":"+os.Getenv("PATH"))
		var stderr bytes.Buffer
		sh.Stderr = &stderr
		out, err := sh.Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s", command, err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for _, want := range []string{"github.com/cert-manager/cert-manager " + goModuleVersion(t, root, "github.com/cert-manager/cert-manager"), "curl 7.88.1-10+deb12u"} {
			if !slices.ContainsFunc(lines, func(line string) bool { return strings.HasPrefix(line, want) }) {
				t.Errorf("the documented SBOM command printed no line %q among %d:\n%s", want, len(lines), testbed.Tail(string(out), 10))
			}
		}
	})

	t.Run("the chart pulled from the registry pins the index by digest", func(t *testing.T) {
		helm := testbed.Asset(t, root, "helm")
		pulledDir := t.TempDir()
		pull := exec.Command(helm, "pull", "oci://"+chartRepository, "--version", version,
			"--ca-file", caFile, "--untar", "--destination", pulledDir)
		pull.Env = helmEnv(t)
		pulled, err := pull.CombinedOutput()
		if err != nil {
			t.Fatalf("helm pull: %v\n%s", err, pulled)
		}
		if digest := "Digest: " + rel.Chart.Digest + "\n"; !strings.Contains(string(pulled), digest) {
			t.Errorf("helm pull printed\n%s\nwant the chart digest release.json records (%q)", pulled, rel.Chart.Digest)
		}
		chart := filepath.Join(pulledDir, "cert-manager-webhook-exec")
		var values struct {
			Image struct{ Repository, Tag, Digest string }
		}
		if err := yaml.Unmarshal(readFile(t, filepath.Join(chart, "values.yaml")), &values); err != nil {
			t.Fatal(err)
		}
		if values.Image.Repository != repository || values.Image.Tag != version || values.Image.Digest != rel.Image.Digest {
			t.Errorf("the pulled chart's image values are %+v, want %s, tag %s, digest %s", values.Image, repository, version, rel.Image.Digest)
		}
		rendered, err := exec.Command(helm, "template", "x", chart, "--set", "groupName=acme.example.com", "--show-only", "templates/deployment.yaml").CombinedOutput()
		if err != nil {
			t.Fatalf("helm template: %v\n%s", err, rendered)
		}
		if want := `image: "` + indexRef + "\"\n"; strings.Count(string(rendered), want) != 2 {
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

	t.Run("the README's helm install from the registry", func(t *testing.T) {
		commands := testbed.ShellCommands(t, testbed.FencedBlock(t, "README.md", "helm install exec-webhook oci://"))
		if len(commands) != 1 {
			t.Fatalf("the block holds %q, want one command", commands)
		}
		args := testbed.WithRegistry(commands[0][1:], testbed.PublishedRegistry, registryPath)
		if !slices.Contains(args, version) {
			t.Fatalf("the README installs %q; this test released %s", args, version)
		}
		// A client-side dry run: everything but the cluster.
		install := exec.Command(testbed.Asset(t, root, "helm"), append(args, "--dry-run=client", "--ca-file", caFile)...)
		install.Env = helmEnv(t)
		out, err := install.CombinedOutput()
		if err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if want := `image: "` + indexRef + "\"\n"; strings.Count(string(out), want) != 2 {
			t.Errorf("the documented install does not run %s in both containers:\n%s", want, out)
		}
	})

	// The tampering checks change what the registry holds: they run last.
	t.Run("cosign refuses an altered image carrying the original's signature", func(t *testing.T) {
		// An attacker's image: the amd64 image with a layer more, and the
		// signature of the real one copied to where cosign looks for its own.
		original := parseReference(t, repository+"@"+rel.Image.Images["amd64"].Digest)
		image, err := remote.Image(original, transport)
		if err != nil {
			t.Fatal(err)
		}
		altered, err := mutate.AppendLayers(image, static.NewLayer([]byte("not from the release"), types.OCILayer))
		if err != nil {
			t.Fatal(err)
		}
		alteredDigest, err := altered.Digest()
		if err != nil {
			t.Fatal(err)
		}
		alteredRef := repository + "@" + alteredDigest.String()
		if err := remote.Write(parseReference(t, alteredRef), altered, transport); err != nil {
			t.Fatal(err)
		}
		signature, err := remote.Image(parseReference(t, repository+":"+signatureTag(rel.Image.Images["amd64"].Digest)), transport)
		if err != nil {
			t.Fatalf("the release's amd64 signature: %v", err)
		}
		if err := remote.Write(parseReference(t, repository+":"+signatureTag(alteredDigest.String())), signature, transport); err != nil {
			t.Fatal(err)
		}
		out, err := runCosign("verify", "--key", publicKey, "--insecure-ignore-tlog=true", alteredRef)
		t.Logf("cosign verify --key cosign.pub --insecure-ignore-tlog=true %s (altered):\n%s", alteredRef, out)
		if err == nil {
			t.Fatalf("cosign verified an altered image")
		}
		if !strings.Contains(out, "Error: no matching signatures: invalid or missing digest in claim: "+rel.Image.Images["amd64"].Digest) {
			t.Errorf("cosign refused the altered image, but not for its signature: %s", out)
		}
	})

	t.Run("cosign refuses a re-pushed, unsigned tag", func(t *testing.T) {
		// The chart's tag, pushed again with other content and no signature.
		chart, err := remote.Image(parseReference(t, chartRepository+"@"+rel.Chart.Digest), transport)
		if err != nil {
			t.Fatal(err)
		}
		repushed, ok := mutate.Annotations(chart, map[string]string{"org.example.repushed": "yes"}).(v1.Image)
		if !ok {
			t.Fatal("mutate.Annotations did not return an image")
		}
		if err := remote.Write(parseReference(t, chartRepository+":"+version), repushed, transport); err != nil {
			t.Fatal(err)
		}
		out, cosignErr := runCosign("verify", "--key", publicKey, "--insecure-ignore-tlog=true", chartRepository+":"+version)
		t.Logf("cosign verify --key cosign.pub --insecure-ignore-tlog=true %s:%s (re-pushed):\n%s", chartRepository, version, out)
		if cosignErr == nil {
			t.Fatalf("cosign verified the re-pushed chart tag")
		}
		if !strings.Contains(out, "Error: no signatures found") {
			t.Errorf("cosign refused the re-pushed tag, but not for want of a signature: %s", out)
		}
		// The digest release.json records still verifies: what was signed
		// is still there, and only the tag moved.
		if out, err := runCosign("verify", "--key", publicKey, "--insecure-ignore-tlog=true", chartRepository+"@"+rel.Chart.Digest); err != nil {
			t.Errorf("the chart by its recorded digest no longer verifies: %v\n%s", err, out)
		}
	})

	t.Run("without REGISTRY nothing is pushed, and the image is the same", func(t *testing.T) {
		// amd64 only: the arm64 build adds a minute and nothing to this check.
		before := registryContents(t, host, client)
		local := filepath.Join(t.TempDir(), "release")
		cmd := exec.Command("make", "--no-print-directory", "release", "VERSION="+version, "ARCHS=amd64", "RELEASE_DIR="+local)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make release: %v\n%s", err, out)
		}
		if after := registryContents(t, host, client); !slices.Equal(after, before) {
			t.Errorf("the registry's tags changed from %q to %q", before, after)
		}
		var again releaseRecord
		if err := json.Unmarshal(readFile(t, filepath.Join(local, "release.json")), &again); err != nil {
			t.Fatal(err)
		}
		if again.Signed || again.Chart.Digest != "" || again.Chart.PushedTo != "" {
			t.Errorf("release.json of a release without REGISTRY says it was pushed or signed: %+v", again)
		}
		// Reproducible: the same tree and cached base give the same image.
		if got, want := again.Image.Images["amd64"].Digest, rel.Image.Images["amd64"].Digest; got != want {
			t.Errorf("the amd64 image built again is %s, the first time %s", got, want)
		}
	})
}

// signatureTag is where cosign keeps the signatures of digest.
func signatureTag(digest string) string {
	return strings.Replace(digest, ":", "-", 1) + ".sig"
}

// attestedSBOM decodes the SPDX document of the one in-toto statement
// cosign verify-attestation printed.
func attestedSBOM(t *testing.T, out string) sbomDocument {
	t.Helper()
	var doc sbomDocument
	found := 0
	for _, line := range strings.Split(out, "\n") {
		var envelope struct {
			PayloadType string `json:"payloadType"`
			Payload     string `json:"payload"`
		}
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &envelope) != nil || envelope.Payload == "" {
			continue
		}
		payload, err := base64.StdEncoding.DecodeString(envelope.Payload)
		if err != nil {
			t.Fatal(err)
		}
		var statement struct {
			PredicateType string          `json:"predicateType"`
			Predicate     json.RawMessage `json:"predicate"`
		}
		if err := json.Unmarshal(payload, &statement); err != nil {
			t.Fatal(err)
		}
		if statement.PredicateType != "https://spdx.dev/Document" {
			t.Fatalf("the attestation's predicate is a %s, want an SPDX document", statement.PredicateType)
		}
		if err := json.Unmarshal(statement.Predicate, &doc); err != nil {
			t.Fatal(err)
		}
		found++
	}
	if found != 1 {
		t.Fatalf("cosign verify-attestation printed %d statements, want 1:\n%s", found, out)
	}
	return doc
}

// goModuleVersion is the version go.mod requires of module.
func goModuleVersion(t *testing.T, root, module string) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", module)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", module, err)
	}
	return strings.TrimSpace(string(out))
}

// uncompressedSize adds up the image's layers as tar files.
func uncompressedSize(t *testing.T, image v1.Image) int64 {
	t.Helper()
	layers, err := image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, layer := range layers {
		r, err := layer.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, r)
		if closeErr := r.Close(); err == nil {
			err = closeErr
		}
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

// rootFS extracts image's flattened file system, owners and modes kept (the
// test runs as root), into a temporary directory and returns its path.
func rootFS(t *testing.T, image v1.Image) string {
	t.Helper()
	root := t.TempDir()
	reader := mutate.Extract(image)
	defer func() { _ = reader.Close() }()
	untar := exec.Command("tar", "-x", "-C", root)
	untar.Stdin = reader
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("extracting the image's files: %v\n%s", err, out)
	}
	return root
}

func parseReference(t *testing.T, ref string) name.Reference {
	t.Helper()
	parsed, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

// registryContents lists the registry's tags as repository:tag, sorted (the
// registry lists them in no fixed order).
func registryContents(t *testing.T, host string, client *http.Client) []string {
	t.Helper()
	var catalog struct{ Repositories []string }
	getJSON(t, client, "https://"+host+"/v2/_catalog", &catalog)
	var tags []string
	for _, repo := range catalog.Repositories {
		var list struct{ Tags []string }
		getJSON(t, client, "https://"+host+"/v2/"+repo+"/tags/list", &list)
		for _, tag := range list.Tags {
			tags = append(tags, repo+":"+tag)
		}
	}
	slices.Sort(tags)
	return tags
}

// getJSON decodes the JSON body of a GET of url into v.
func getJSON(t *testing.T, client *http.Client, url string, v any) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %v %d %s", url, err, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, body)
	}
}

func helmEnv(t *testing.T) []string {
	return append(os.Environ(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// clientTrusting is an HTTP client that trusts the CA caPEM and nothing else.
func clientTrusting(t *testing.T, caPEM []byte) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate in the PEM")
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}
