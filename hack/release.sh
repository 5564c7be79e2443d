#!/usr/bin/env bash
# Makes a release: the image (its version, commit and date stamped in), its
# SBOM, and the chart pinned to the image by digest; with REGISTRY, pushes the
# image and the chart there. `make release VERSION=0.2.0 [REGISTRY=host/path]`.
#
#   VERSION       the release, SemVer without a leading v (required)
#   REGISTRY      where to push, e.g. ghcr.io/cert-manager-webhook-exec; empty: push nothing
#   REGISTRY_CA   a PEM file of the CA the registry's certificate chains to, if not a public one
#   RELEASE_DIR   where to write it all (default bin/release/VERSION)
#
# Everything goes to RELEASE_DIR: the image as an OCI layout
# (oci/), its SBOM, the chart package and release.json, which records the
# digests. The image's digest is its manifest's in the OCI layout and stays
# the same when pushed (skopeo --preserve-digests), so the chart made before
# the push pins the image the registry serves. Needs root, buildah,
# mmdebstrap (hack/image.sh) and skopeo. Not yet: an arm64 image, signatures.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
say() { echo "[release] $((SECONDS - start))s: $*" >&2; }

version=${VERSION:-}
if [[ ! $version =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$ ]]; then
	say "VERSION must be a SemVer version without a leading v, such as 0.2.0 (got '$version')"
	exit 2
fi
registry=${REGISTRY:-}
repository=${registry:-ghcr.io/cert-manager-webhook-exec}/cert-manager-webhook-exec
out=${RELEASE_DIR:-bin/release/$version}
rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/webhook-release.XXXXXX")
trap 'rm -rf "$work"' EXIT

archive=$(VERSION=$version IMAGE="$repository:$version" IMAGE_ARCHIVE="$work/image.tar" hack/image.sh | tail -n1)
mv "${archive%.tar}.spdx.json" "$out/cert-manager-webhook-exec-$version.spdx.json"

say "writing the image as an OCI layout, $out/oci"
skopeo copy --quiet --dest-compress --digestfile "$work/digest" \
	"docker-archive:$archive" "oci:$out/oci:$version"
digest=$(cat "$work/digest")
size=$(du -sb "$archive" | cut -f1)

say "packaging the chart: version $version, image $repository@$digest"
helm=$(hack/test-assets.sh helm)
cp -r charts/cert-manager-webhook-exec "$work/chart"
# set FILE OLD NEW: replace the whole line OLD, which must be there once.
set_line() {
	if [[ $(grep -cxF -- "$2" "$1") != 1 ]]; then
		say "$1 has not exactly one line '$2': update hack/release.sh with the chart"
		exit 1
	fi
	OLD=$2 NEW=$3 perl -pi -e 'chomp; $_ = $_ eq $ENV{OLD} ? $ENV{NEW} : $_; $_ .= "\n"' "$1"
}
set_line "$work/chart/Chart.yaml" "version: 0.1.0" "version: $version"
set_line "$work/chart/Chart.yaml" 'appVersion: "0.1.0"' "appVersion: \"$version\""
set_line "$work/chart/values.yaml" "  repository: ghcr.io/cert-manager-webhook-exec/cert-manager-webhook-exec" "  repository: $repository"
set_line "$work/chart/values.yaml" '  tag: ""' "  tag: \"$version\""
set_line "$work/chart/values.yaml" '  digest: ""' "  digest: \"$digest\""
"$helm" package "$work/chart" --destination "$out" >/dev/null
chart=$out/cert-manager-webhook-exec-$version.tgz

chart_digest=""
if [[ -n $registry ]]; then
	ca_args=() helm_ca=()
	if [[ -n ${REGISTRY_CA:-} ]]; then
		mkdir -p "$work/certs"
		cp "$REGISTRY_CA" "$work/certs/ca.crt"
		ca_args=(--dest-cert-dir "$work/certs")
		helm_ca=(--ca-file "$REGISTRY_CA")
	fi
	say "pushing the image to $repository:$version"
	skopeo copy --quiet --preserve-digests "${ca_args[@]}" "oci:$out/oci:$version" "docker://$repository:$version"
	say "pushing the chart to oci://$registry/charts"
	pushed=$(HELM_CONFIG_HOME=$work/helm HELM_CACHE_HOME=$work/helm HELM_DATA_HOME=$work/helm \
		"$helm" push "$chart" "oci://$registry/charts" "${helm_ca[@]}" 2>&1)
	chart_digest=$(sed -n 's/^Digest: //p' <<<"$pushed")
	if [[ -z $chart_digest ]]; then
		say "helm push printed no digest:"
		echo "$pushed" >&2
		exit 1
	fi
fi

jq -n --arg version "$version" --arg commit "$(git rev-parse HEAD)" \
	--arg repository "$repository" --arg digest "$digest" --argjson size "$size" \
	--arg sbom "cert-manager-webhook-exec-$version.spdx.json" \
	--arg chart "$(basename "$chart")" --arg chartDigest "$chart_digest" --arg registry "$registry" '{
	version: $version, commit: $commit,
	image: {repository: $repository, digest: $digest, platforms: ["linux/amd64"], uncompressedBytes: $size},
	sbom: $sbom,
	chart: {file: $chart, digest: $chartDigest, pushedTo: (if $registry == "" then null else "oci://\($registry)/charts" end)}
}' >"$out/release.json"
say "release $version in $out: image $repository@$digest ($((size / 1024 / 1024)) MiB uncompressed)${registry:+, pushed}"
echo "$out/release.json"
