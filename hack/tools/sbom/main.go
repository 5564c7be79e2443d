// Command sbom writes the SPDX 2.3 JSON software bill of materials of the
// webhook's image: the Go modules its binary was built from (the build info
// Go stamps into every binary) and the Debian packages its base holds (the
// dpkg status file), each with its version and package URL.
//
//	sbom --binary FILE --dpkg-status FILE --version V --arch ARCH [--created RFC3339] >image.spdx.json
//
// The output is a function of its inputs (no clock, no random namespace), so
// the same image always gets the same SBOM.
package main

import (
	"bufio"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

func main() {
	binary := flag.String("binary", "", "the webhook binary of the image")
	dpkgStatus := flag.String("dpkg-status", "", "the image's /var/lib/dpkg/status")
	version := flag.String("version", "dev", "the image's version")
	arch := flag.String("arch", "amd64", "the image's architecture, as Debian names it")
	created := flag.String("created", "1970-01-01T00:00:00Z", "the document's creation time (the commit's date keeps it reproducible)")
	flag.Parse()
	if *binary == "" || *dpkgStatus == "" {
		fmt.Fprintln(os.Stderr, "sbom: --binary and --dpkg-status are required")
		os.Exit(2)
	}
	doc, err := imageSBOM(*binary, *dpkgStatus, *version, *arch, *created)
	if err == nil {
		err = spdxjson.Write(doc, os.Stdout, spdxjson.Indent("  "))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sbom:", err)
		os.Exit(1)
	}
}

// imageSBOM builds the document: the image, which contains the Go modules
// and the Debian packages.
func imageSBOM(binary, dpkgStatus, version, arch, created string) (*spdx.Document, error) {
	info, err := buildinfo.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("reading the Go build info of %s: %w", binary, err)
	}
	status, err := os.Open(dpkgStatus)
	if err != nil {
		return nil, err
	}
	defer status.Close()
	debs, err := installedPackages(status)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dpkgStatus, err)
	}

	image := &spdx.Package{
		PackageName:             "cert-manager-webhook-exec",
		PackageSPDXIdentifier:   "image",
		PackageVersion:          version,
		PackageDownloadLocation: "NOASSERTION",
		PrimaryPackagePurpose:   "CONTAINER",
		PackageComment:          "the container image for linux/" + arch,
	}
	packages := []*spdx.Package{image}
	add := func(id, name, version, purl string) {
		packages = append(packages, &spdx.Package{
			PackageName:             name,
			PackageSPDXIdentifier:   common.ElementID(id),
			PackageVersion:          version,
			PackageDownloadLocation: "NOASSERTION",
			PackageExternalReferences: []*spdx.PackageExternalReference{
				{Category: common.CategoryPackageManager, RefType: common.TypePackageManagerPURL, Locator: purl},
			},
		})
	}
	mainVersion := info.Main.Version
	if mainVersion == "" || mainVersion == "(devel)" {
		mainVersion = version
	}
	add("go-main", info.Main.Path, mainVersion, goPURL(info.Main.Path, mainVersion))
	for i, dep := range info.Deps {
		if dep.Replace != nil {
			dep = dep.Replace
		}
		add(fmt.Sprintf("go-%d", i), dep.Path, dep.Version, goPURL(dep.Path, dep.Version))
	}
	for i, deb := range debs {
		add(fmt.Sprintf("deb-%d", i), deb.name, deb.version,
			fmt.Sprintf("pkg:deb/debian/%s@%s?arch=%s&distro=debian-12", deb.name, escapeVersion(deb.version), deb.arch))
	}

	relationships := []*spdx.Relationship{{
		RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", "image"), Relationship: common.TypeRelationshipDescribe,
	}}
	for _, p := range packages[1:] {
		relationships = append(relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", "image"), RefB: common.MakeDocElementID("", string(p.PackageSPDXIdentifier)), Relationship: common.TypeRelationshipContains,
		})
	}
	inputs := sha256.New()
	for _, p := range packages {
		fmt.Fprintf(inputs, "%s@%s\n", p.PackageName, p.PackageVersion)
	}
	return &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      "cert-manager-webhook-exec-" + version + "-linux-" + arch,
		DocumentNamespace: "https://github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/sbom/" + version + "/linux-" + arch + "/" + hex.EncodeToString(inputs.Sum(nil))[:16],
		CreationInfo: &spdx.CreationInfo{
			Created:  created,
			Creators: []common.Creator{{CreatorType: "Tool", Creator: "cert-manager-webhook-exec-sbom"}},
		},
		Packages:      packages,
		Relationships: relationships,
	}, nil
}

// goPURL is a Go module's package URL; the module path's slashes separate
// the purl's namespace and name.
func goPURL(path, version string) string {
	return "pkg:golang/" + path + "@" + version
}

// escapeVersion percent-encodes what a purl version may not hold (an
// epoch's ':', a '+').
func escapeVersion(v string) string {
	return strings.NewReplacer(":", "%3A", "+", "%2B").Replace(v)
}

type debPackage struct{ name, version, arch string }

var fieldLine = regexp.MustCompile(`^([A-Za-z0-9-]+): ?(.*)$`)

// installedPackages reads a dpkg status file: the packages whose Status says
// installed, sorted by name.
func installedPackages(r io.Reader) ([]debPackage, error) {
	var packages []debPackage
	fields := map[string]string{}
	flush := func() {
		if strings.HasSuffix(fields["Status"], " installed") {
			packages = append(packages, debPackage{name: fields["Package"], version: fields["Version"], arch: fields["Architecture"]})
		}
		clear(fields)
	}
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		if line == "" {
			flush()
			continue
		}
		if m := fieldLine.FindStringSubmatch(line); m != nil {
			fields[m[1]] = m[2]
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, err
	}
	flush()
	if len(packages) == 0 {
		return nil, errors.New("no installed package")
	}
	sort.Slice(packages, func(i, j int) bool { return packages[i].name < packages[j].name })
	return packages, nil
}
