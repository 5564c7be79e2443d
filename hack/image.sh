#!/usr/bin/env bash
# Builds the webhook image from ./Dockerfile without a Docker engine or a
# registry, and writes it as a docker-archive tarball (for `podman load`,
# `docker load` and `ctr images import`), with its SBOM beside it
# (<tarball without .tar>.spdx.json). The tarball's path is the last line
# of the output (stdout); progress goes to stderr.
#
# The Dockerfile's two stages that need the network are replaced by images made
# here: the binary, built on the host with the host's Go and module cache, and
# the Debian bookworm base, made by mmdebstrap from hack/image/packages and
# cached under ${XDG_CACHE_HOME:-$HOME/.cache}/cert-manager-webhook-exec/image,
# keyed by the package list and mmdebstrap's arguments. REFRESH_BASE=1 remakes
# the base (for security updates). Needs root, buildah and mmdebstrap.
#
# Environment: VERSION (default dev), IMAGE (default localhost/cert-manager-webhook-exec:dev),
# IMAGE_ARCHIVE (default bin/cert-manager-webhook-exec-image.tar).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
image=${IMAGE:-localhost/cert-manager-webhook-exec:dev}
archive=${IMAGE_ARCHIVE:-$repo/bin/cert-manager-webhook-exec-image.tar}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/cert-manager-webhook-exec/image
start=$SECONDS

say() { echo "[image] $((SECONDS - start))s: $*" >&2; }

for tool in buildah mmdebstrap; do
	if ! command -v "$tool" >/dev/null; then
		say "$tool not found: install Debian's buildah and mmdebstrap (apt-get install buildah mmdebstrap)"
		exit 1
	fi
done
if ((EUID != 0)); then
	say "run as root: buildah's private vfs storage and mmdebstrap's root mode need it"
	exit 1
fi

# The base: the same packages and dpkg excludes as the Dockerfile's
# base-from-apt stage, from bookworm with its updates and security fixes.
packages=$(sed -e '/^#/d' hack/image/packages | paste -sd, -)
# Merged /usr set up as debootstrap does for debian:bookworm-slim, so apt
# satisfies init-system-helpers' "usrmerge | usr-is-merged" with the latter
# rather than usrmerge, which pulls in perl (45 MB).
mmdebstrap_args=(
	--variant=apt --include="$packages" --dpkgopt=hack/image/dpkg-excludes
	--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
	--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*'
	bookworm
)
sources=(
	"deb http://deb.debian.org/debian bookworm main"
	"deb http://deb.debian.org/debian bookworm-updates main"
	"deb http://deb.debian.org/debian-security bookworm-security main"
)
key=$({ printf '%s\n' "${mmdebstrap_args[@]}" "${sources[@]}"; cat hack/image/dpkg-excludes; } | sha256sum | cut -c1-16)
base_tar=$cache/debian-bookworm-$key.tar
mkdir -p "$cache"
if [[ ! -s $base_tar || ${REFRESH_BASE:-} == 1 ]]; then
	say "making the Debian bookworm base with mmdebstrap ($packages); first run only, a few minutes"
	partial=$cache/partial-$key.tar
	rm -rf "$partial"
	mmdebstrap --format=tar "${mmdebstrap_args[@]}" "$partial" "${sources[@]}" 2>&1 |
		while IFS= read -r line; do say "mmdebstrap: $line"; done
	mv "$partial" "$base_tar"
	find "$cache" -maxdepth 1 -name 'debian-bookworm-*.tar' ! -path "$base_tar" -delete
	say "base made: $(du -h "$base_tar" | cut -f1)"
else
	say "base cached: $base_tar"
fi

# A private buildah storage, removed at the end with all it holds.
work=$(mktemp -d "${TMPDIR:-/tmp}/webhook-image.XXXXXX")
buildah=(buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs)
cleanup() {
	"${buildah[@]}" rm --all >/dev/null 2>&1 || true
	"${buildah[@]}" rmi --all --force >/dev/null 2>&1 || true
	# Never remove a tree with something mounted in it.
	if grep -qF " $work/" /proc/self/mountinfo; then
		say "mounts left under $work; not removing it:"
		grep -F " $work/" /proc/self/mountinfo >&2
		return
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# image_from_tar REF TAR: a single-layer image holding TAR's files.
image_from_tar() {
	local container
	container=$("${buildah[@]}" from scratch)
	"${buildah[@]}" add "$container" "$2" / >/dev/null
	"${buildah[@]}" commit -q --rm "$container" "$1" >/dev/null
}

# The stamp `cert-manager-webhook-exec version` prints: VERSION (default
# dev), and the commit and its date, with -dirty when the work tree differs.
commit=$(git rev-parse HEAD 2>/dev/null || true)
if [[ -n $commit && -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
	commit+=-dirty
fi
commit_date=$(git log -1 --format=%cI 2>/dev/null || true)
# The SBOM's creation time, in the UTC form SPDX requires: the commit's, so
# the same tree gives the same SBOM.
sbom_created=$(TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd 2>/dev/null || echo 1970-01-01T00:00:00Z)
ldflags="-s -w -X main.version=${VERSION:-dev} -X main.commit=$commit -X main.commitDate=$commit_date"

say "building the binary on the host"
mkdir -p "$work/binary/out"
CGO_ENABLED=0 GOOS=linux go build -trimpath -buildvcs=false -ldflags="$ldflags" \
	-o "$work/binary/out/cert-manager-webhook-exec" .
tar -C "$work/binary" -cf "$work/binary.tar" out
image_from_tar localhost/cert-manager-webhook-exec-binary:local "$work/binary.tar"
image_from_tar "localhost/cert-manager-webhook-exec-base:$key" "$base_tar"

say "building $image from the Dockerfile with buildah (no network)"
"${buildah[@]}" bud --quiet --pull=never --network none --runtime runc --layers=false \
	--build-arg BINARY_STAGE=localhost/cert-manager-webhook-exec-binary:local \
	--build-arg BASE_STAGE="localhost/cert-manager-webhook-exec-base:$key" \
	--tag "$image" . >/dev/null

mkdir -p "$(dirname "$archive")"
sbom=${archive%.tar}.spdx.json
say "writing the image's SBOM, $sbom (SPDX 2.3: the binary's Go modules, the base's Debian packages)"
tar -xOf "$base_tar" ./var/lib/dpkg/status >"$work/dpkg-status"
(cd hack/tools/sbom && GOFLAGS=-mod=mod go build -o "$work/sbom" .)
"$work/sbom" --binary "$work/binary/out/cert-manager-webhook-exec" --dpkg-status "$work/dpkg-status" \
	--version "${VERSION:-dev}" --arch amd64 --created "$sbom_created" >"$sbom.partial"
mv "$sbom.partial" "$sbom"

rm -f "$archive.partial"
"${buildah[@]}" push --quiet "$image" "docker-archive:$archive.partial:$image" >/dev/null
mv "$archive.partial" "$archive"
say "$image built: $(du -h "$archive" | cut -f1) (uncompressed layers)"
echo "$archive"
