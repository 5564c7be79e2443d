//go:build image

package image

import (
	"context"
	"debug/buildinfo"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// spdxDocument is what the test reads of an SPDX 2.3 JSON document.
type spdxDocument struct {
	SPDXVersion string `json:"spdxVersion"`
	Packages    []struct {
		SPDXID       string `json:"SPDXID"`
		Name         string `json:"name"`
		VersionInfo  string `json:"versionInfo"`
		ExternalRefs []struct {
			ReferenceType    string `json:"referenceType"`
			ReferenceLocator string `json:"referenceLocator"`
		} `json:"externalRefs"`
	} `json:"packages"`
	Relationships []struct {
		Element      string `json:"spdxElementId"`
		Related      string `json:"relatedSpdxElement"`
		Relationship string `json:"relationshipType"`
	} `json:"relationships"`
}

// TestImageSBOM checks the SBOM hack/image.sh writes beside the image
// against the image itself: its Go modules are those of the binary's build
// info, its Debian packages are those dpkg says are installed, each with
// its version, and the image contains them all.
func TestImageSBOM(t *testing.T) {
	path := strings.TrimSuffix(os.Getenv("IMAGE_ARCHIVE"), ".tar") + ".spdx.json"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc spdxDocument
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" {
		t.Errorf("spdxVersion %q", doc.SPDXVersion)
	}
	got := map[string][]string{} // purl type: "name version" lines
	for _, p := range doc.Packages {
		for _, ref := range p.ExternalRefs {
			if ref.ReferenceType == "purl" {
				kind, _, _ := strings.Cut(strings.TrimPrefix(ref.ReferenceLocator, "pkg:"), "/")
				got[kind] = append(got[kind], p.Name+" "+p.VersionInfo)
			}
		}
	}

	binary := filepath.Join(t.TempDir(), "cert-manager-webhook-exec")
	for _, args := range [][]string{
		{"create", "--name", "sbom-binary", engine.image},
		{"cp", "sbom-binary:/usr/local/bin/cert-manager-webhook-exec", binary},
		{"rm", "sbom-binary"},
	} {
		if out, err := engine.command(context.Background(), args...).CombinedOutput(); err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	info, err := buildinfo.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{info.Main.Path + " dev"}
	for _, dep := range info.Deps {
		if dep.Replace != nil {
			dep = dep.Replace
		}
		want = append(want, dep.Path+" "+dep.Version)
	}
	compareSorted(t, "Go modules", got["golang"], want)

	out, exit := engine.run(t, []string{"--entrypoint", "/usr/bin/dpkg-query"}, nil, "-W", "-f", "${db:Status-Status} ${Package} ${Version}\n")
	if exit != 0 {
		t.Fatalf("dpkg-query: exit %d:\n%s", exit, out)
	}
	want = nil
	for line := range strings.Lines(out) {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "installed "); ok {
			want = append(want, name)
		}
	}
	compareSorted(t, "Debian packages", got["deb"], want)
	t.Logf("SBOM: %d Go modules, %d Debian packages", len(got["golang"]), len(got["deb"]))

	// docs/operations.md's command to read it, on this SBOM.
	command := strings.ReplaceAll(testbed.FencedBlock(t, "docs/operations.md", "jq -r '.packages[]"),
		"bin/cert-manager-webhook-exec-image.spdx.json", path)
	listed, err := exec.Command("sh", "-c", command).Output()
	if err != nil {
		t.Fatalf("%s: %v", command, err)
	}
	if lines := strings.Count(string(listed), "\n"); lines != len(doc.Packages) {
		t.Errorf("the documented jq command printed %d lines, want one per package (%d)", lines, len(doc.Packages))
	}

	contained := 0
	for _, r := range doc.Relationships {
		if r.Element == "SPDXRef-image" && r.Relationship == "CONTAINS" {
			contained++
		}
	}
	if contained != len(got["golang"])+len(got["deb"]) {
		t.Errorf("the image CONTAINS %d packages, want %d", contained, len(got["golang"])+len(got["deb"]))
	}
}

// compareSorted fails t naming what one list has and the other lacks.
func compareSorted(t *testing.T, what string, got, want []string) {
	t.Helper()
	slices.Sort(got)
	slices.Sort(want)
	if len(want) < 10 {
		t.Errorf("%s: only %d expected; the image's own list looks wrong: %q", what, len(want), want)
	}
	for _, w := range want {
		if _, found := slices.BinarySearch(got, w); !found {
			t.Errorf("%s: the SBOM lacks %q", what, w)
		}
	}
	for _, g := range got {
		if _, found := slices.BinarySearch(want, g); !found {
			t.Errorf("%s: the SBOM lists %q, which the image does not hold", what, g)
		}
	}
}
