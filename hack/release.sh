#!/usr/bin/env bash
# Makes a release: the image for linux/amd64 and linux/arm64 as one image
# index (version, commit and date stamped into each binary), an SBOM per
# architecture, and the chart pinned to the index by digest; with REGISTRY,
# pushes them there and signs them with cosign.
# `make release VERSION=0.2.0 [REGISTRY=host/path]`.
#
#   VERSION        the release, SemVer without a leading v (required)
#   REGISTRY       where to push, e.g. ghcr.io/cert-manager-webhook-exec; empty: push and sign nothing
#   REGISTRY_CA    a PEM file of the CA the registry's certificate chains to, if not a public one
#   RELEASE_DIR    where to write it all (default bin/release/VERSION)
#   COSIGN_KEY     a cosign private key file (COSIGN_PASSWORD its password); signatures
#                  are then not uploaded to a transparency log (COSIGN_TLOG_UPLOAD=true does).
#                  Empty: keyless signing (Sigstore's Fulcio and Rekor, an OIDC identity such
#                  as a GitHub workflow's), as the publishing workflow does.
#   SIGN           0: push without signing (a test that checks no signature)
#   ARCHS          the architectures (default "amd64 arm64")
#   REGISTRY_USER, REGISTRY_PASSWORD   credentials for REGISTRY; without them, those
#                  of ${DOCKER_CONFIG:-~/.docker}/config.json (docker login, skopeo login)
#
# Everything goes to RELEASE_DIR: the image index as an OCI layout (oci/,
# tag VERSION, and VERSION-ARCH for each image), the SBOMs, the chart package
# and release.json, which records the digests and sizes. The digests are
# those of the OCI layout and stay the same when pushed (skopeo
# --preserve-digests), so the chart made before the push pins the index the
# registry serves. Pushed and signed with REGISTRY:
#
#   REGISTRY/cert-manager-webhook-exec:VERSION   the index, signed with its images (cosign sign --recursive);
#                                                each image's SBOM as a signed cosign attestation (type spdxjson)
#   oci://REGISTRY/charts/cert-manager-webhook-exec:VERSION   the chart (helm push), signed
#
# Needs root, buildah, mmdebstrap and skopeo (hack/image.sh; qemu-user-static
# for arm64, installed if missing), helm and cosign (built by hack/test-assets.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
say() { echo "[release] $((SECONDS - start))s: $*" >&2; }

version=${VERSION:-}
if [[ ! $version =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$ ]]; then
	say "VERSION must be a SemVer version without a leading v, such as 0.2.0 (got '$version')"
	exit 2
fi
read -r -a archs <<<"${ARCHS:-amd64 arm64}"
registry=${REGISTRY:-}
registry=${registry%/}
repository=${registry:-ghcr.io/cert-manager-webhook-exec}/cert-manager-webhook-exec
out=${RELEASE_DIR:-bin/release/$version}
rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/webhook-release.XXXXXX")
trap 'rm -rf "$work"' EXIT
helm=$(hack/test-assets.sh helm)
sign=${SIGN:-1}
if [[ -n $registry && $sign != 0 ]]; then
	cosign=$(hack/test-assets.sh cosign)
fi

# Each architecture's image, into the OCI layout as VERSION-ARCH.
manifests=()
images_json="{}"
for arch in "${archs[@]}"; do
	archive=$(ARCH=$arch VERSION=$version IMAGE="$repository:$version" IMAGE_ARCHIVE="$work/image-$arch.tar" hack/image.sh | tail -n1)
	sbom=cert-manager-webhook-exec-$version-linux-$arch.spdx.json
	mv "${archive%.tar}.spdx.json" "$out/$sbom"
	skopeo copy --quiet --dest-compress --digestfile "$work/digest-$arch" \
		"docker-archive:$archive" "oci:$out/oci:$version-$arch"
	digest=$(cat "$work/digest-$arch")
	blob=$out/oci/blobs/sha256/${digest#sha256:}
	# Uncompressed: the layers as tar files (what the image takes on a node's
	# disk, unpacked); compressed: what a pull downloads.
	uncompressed=$(tar -tvf "$archive" | awk '$6 ~ /\.tar$/ || $6 ~ /^[0-9a-f]{64}$/ { s += $3 } END { print s + 0 }')
	compressed=$(jq '[.config.size] + [.layers[].size] | add' "$blob")
	manifests+=("$(jq -nc --arg digest "$digest" --argjson size "$(stat -c %s "$blob")" --arg arch "$arch" \
		'{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $digest, size: $size, platform: {architecture: $arch, os: "linux"}}')")
	images_json=$(jq -c --arg arch "$arch" --arg digest "$digest" --argjson u "$uncompressed" --argjson c "$compressed" --arg sbom "$sbom" \
		'. + {($arch): {digest: $digest, uncompressedBytes: $u, compressedBytes: $c, sbom: $sbom}}' <<<"$images_json")
	say "linux/$arch: $digest, $((uncompressed / 1024 / 1024)) MiB uncompressed, $((compressed / 1024 / 1024)) MiB compressed"
done

# The index, written into the layout by hand: skopeo and buildah 1.28 make
# one only in their own storage. Tagged VERSION in oci/index.json.
printf '%s\n' "${manifests[@]}" | jq -sc '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: .}' |
	tr -d '\n' >"$work/index"
index_digest=sha256:$(sha256sum "$work/index" | cut -d' ' -f1)
index_size=$(stat -c %s "$work/index")
cp "$work/index" "$out/oci/blobs/sha256/${index_digest#sha256:}"
jq --arg digest "$index_digest" --argjson size "$index_size" --arg version "$version" \
	'.manifests += [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $digest, size: $size,
		annotations: {"org.opencontainers.image.ref.name": $version}}]' "$out/oci/index.json" >"$work/layout-index"
mv "$work/layout-index" "$out/oci/index.json"
say "image index $index_digest (${archs[*]})"

say "packaging the chart: version $version, image $repository@$index_digest"
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
set_line "$work/chart/values.yaml" '  digest: ""' "  digest: \"$index_digest\""
"$helm" package "$work/chart" --destination "$out" >/dev/null
chart=$out/cert-manager-webhook-exec-$version.tgz

chart_digest="" signed=false
if [[ -n $registry ]]; then
	ca_args=() helm_ca=()
	if [[ -n ${REGISTRY_CA:-} ]]; then
		mkdir -p "$work/certs"
		cp "$REGISTRY_CA" "$work/certs/ca.crt"
		ca_args=(--dest-cert-dir "$work/certs")
		helm_ca=(--ca-file "$REGISTRY_CA")
		# cosign trusts the system's CAs and this one.
		cat /etc/ssl/certs/ca-certificates.crt "$REGISTRY_CA" >"$work/cosign-cas.pem" 2>/dev/null || cp "$REGISTRY_CA" "$work/cosign-cas.pem"
		export SSL_CERT_FILE=$work/cosign-cas.pem
	fi
	# One credentials file for skopeo, helm and cosign (docker's config.json format).
	export DOCKER_CONFIG=${DOCKER_CONFIG:-$HOME/.docker}
	if [[ -n ${REGISTRY_PASSWORD:-} ]]; then
		export DOCKER_CONFIG=$work/docker
		mkdir -p "$DOCKER_CONFIG"
		skopeo login --authfile "$DOCKER_CONFIG/config.json" "${ca_args[@]/--dest-cert-dir/--cert-dir}" \
			--username "${REGISTRY_USER:?REGISTRY_USER with REGISTRY_PASSWORD}" --password-stdin "${registry%%/*}" <<<"$REGISTRY_PASSWORD" >/dev/null
	fi
	auth_args=() helm_auth=()
	if [[ -s $DOCKER_CONFIG/config.json ]]; then
		auth_args=(--dest-authfile "$DOCKER_CONFIG/config.json")
		helm_auth=(--registry-config "$DOCKER_CONFIG/config.json")
	fi
	say "pushing the image index to $repository:$version"
	skopeo copy --quiet --all --preserve-digests "${ca_args[@]}" "${auth_args[@]}" "oci:$out/oci:$version" "docker://$repository:$version"
	say "pushing the chart to oci://$registry/charts"
	pushed=$(HELM_CONFIG_HOME=$work/helm HELM_CACHE_HOME=$work/helm HELM_DATA_HOME=$work/helm \
		"$helm" push "$chart" "oci://$registry/charts" "${helm_ca[@]}" "${helm_auth[@]}" 2>&1)
	chart_digest=$(sed -n 's/^Digest: //p' <<<"$pushed")
	if [[ -z $chart_digest ]]; then
		say "helm push printed no digest:"
		echo "$pushed" >&2
		exit 1
	fi

fi
if [[ -n $registry && $sign != 0 ]]; then
	sign_args=(--yes)
	if [[ -n ${COSIGN_KEY:-} ]]; then
		sign_args+=(--key "$COSIGN_KEY" --tlog-upload="${COSIGN_TLOG_UPLOAD:-false}")
		say "signing with the key $COSIGN_KEY (transparency log upload: ${COSIGN_TLOG_UPLOAD:-false})"
	else
		say "signing keyless (Sigstore: an OIDC identity, Fulcio and Rekor)"
	fi
	# cosign's messages, indented under ours (pipefail stops on its failure).
	cosign_log() { sed 's/^/    cosign: /' >&2; }
	# cosign keeps signatures in the registry beside what they sign (tags
	# sha256-DIGEST.sig and .att).
	say "signing the index and its images: $repository@$index_digest"
	"$cosign" sign "${sign_args[@]}" --recursive "$repository@$index_digest" 2>&1 | cosign_log
	for arch in "${archs[@]}"; do
		digest=$(jq -r --arg arch "$arch" '.[$arch].digest' <<<"$images_json")
		sbom=$(jq -r --arg arch "$arch" '.[$arch].sbom' <<<"$images_json")
		say "attaching linux/$arch's SBOM as a signed attestation (spdxjson) to $repository@$digest"
		"$cosign" attest "${sign_args[@]}" --type spdxjson --predicate "$out/$sbom" "$repository@$digest" 2>&1 | cosign_log
	done
	say "signing the chart: $registry/charts/cert-manager-webhook-exec@$chart_digest"
	"$cosign" sign "${sign_args[@]}" "$registry/charts/cert-manager-webhook-exec@$chart_digest" 2>&1 | cosign_log
	signed=true
fi

commit=$(git rev-parse HEAD)
if [[ -n $(git status --porcelain --untracked-files=no) ]]; then
	commit+=-dirty
fi
jq -n --arg version "$version" --arg commit "$commit" --arg date "$(git log -1 --format=%cI)" \
	--arg repository "$repository" --arg digest "$index_digest" --argjson size "$index_size" --argjson images "$images_json" \
	--arg chart "$(basename "$chart")" --argjson chartBytes "$(stat -c %s "$chart")" --arg chartDigest "$chart_digest" \
	--arg registry "$registry" --argjson signed "$signed" '{
	version: $version, commit: $commit, commitDate: $date,
	image: {repository: $repository, digest: $digest, size: $size,
		platforms: [$images | keys[] | "linux/\(.)"], images: $images},
	chart: {file: $chart, size: $chartBytes, digest: (if $chartDigest == "" then null else $chartDigest end),
		pushedTo: (if $registry == "" then null else "oci://\($registry)/charts" end)},
	signed: $signed
}' >"$out/release.json"
for arch in "${archs[@]}"; do
	say "linux/$arch: $(jq -r --arg arch "$arch" '.[$arch] | "\(.uncompressedBytes / 1048576 | floor) MiB uncompressed, \(.compressedBytes / 1048576 | floor) MiB compressed"' <<<"$images_json")"
done
say "release $version in $out: image $repository@$index_digest${registry:+, pushed}$([[ $signed == true ]] && echo " and signed")"
echo "$out/release.json"
