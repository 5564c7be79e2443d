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
# Environment: VERSION (default dev), ARCH (amd64 or arm64, default amd64),
# IMAGE (default localhost/cert-manager-webhook-exec:dev), IMAGE_ARCHIVE
# (default bin/cert-manager-webhook-exec-image.tar, with -ARCH before .tar
# for another ARCH than amd64).
#
# For arm64 on an amd64 machine, the base's maintainer scripts and the
# Dockerfile's RUN step run under Debian's qemu-user-static through
# binfmt_misc: this script mounts binfmt_misc if it is not mounted and enables
# qemu-aarch64 if it is not enabled, and undoes exactly that at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
image=${IMAGE:-localhost/cert-manager-webhook-exec:dev}
arch=${ARCH:-amd64}
case $arch in
amd64 | arm64) ;;
*)
	echo "[image] ARCH must be amd64 or arm64 (got $arch)" >&2
	exit 2
	;;
esac
if [[ $arch == amd64 ]]; then
	archive=${IMAGE_ARCHIVE:-$repo/bin/cert-manager-webhook-exec-image.tar}
else
	archive=${IMAGE_ARCHIVE:-$repo/bin/cert-manager-webhook-exec-image-$arch.tar}
fi
cache=${XDG_CACHE_HOME:-$HOME/.cache}/cert-manager-webhook-exec/image
start=$SECONDS

say() { echo "[image $arch] $((SECONDS - start))s: $*" >&2; }

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

# Emulation for a foreign ARCH: what this script changed, undone on exit.
binfmt_mounted="" binfmt_enabled=""
restore_binfmt() {
	if [[ -n $binfmt_enabled ]]; then
		update-binfmts --disable "$binfmt_enabled" >/dev/null 2>&1 || say "could not disable binfmt $binfmt_enabled again"
	fi
	if [[ -n $binfmt_mounted ]]; then
		umount /proc/sys/fs/binfmt_misc 2>/dev/null || say "could not unmount binfmt_misc again"
	fi
}
if [[ $arch != "$(dpkg --print-architecture)" ]]; then
	qemu=qemu-$([[ $arch == arm64 ]] && echo aarch64 || echo "$arch")
	if ! command -v "$qemu-static" >/dev/null || ! command -v update-binfmts >/dev/null || ! command -v arch-test >/dev/null; then
		say "installing qemu-user-static, binfmt-support and arch-test (mmdebstrap checks the emulation with it)"
		# The lock hack/require-tools.sh takes: one apt at a time.
		(
			flock 8
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user-static binfmt-support arch-test >/dev/null
		) 8>/run/lock/cert-manager-webhook-exec-apt.lock
	fi
	if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
		binfmt_mounted=1
	fi
	if [[ $(head -n1 "/proc/sys/fs/binfmt_misc/$qemu" 2>/dev/null) != enabled ]]; then
		update-binfmts --enable "$qemu"
		binfmt_enabled=$qemu
	fi
	if [[ $(head -n1 "/proc/sys/fs/binfmt_misc/$qemu" 2>/dev/null) != enabled ]]; then
		say "binfmt_misc has no enabled $qemu handler: cannot run $arch programs here"
		restore_binfmt
		exit 1
	fi
	say "running $arch programs with $qemu-static through binfmt_misc${binfmt_mounted:+ (mounted here)}${binfmt_enabled:+ (enabled here)}"
fi
trap restore_binfmt EXIT

# The base: the same packages and dpkg excludes as the Dockerfile's
# base-from-apt stage, from bookworm with its updates and security fixes.
packages=$(sed -e '/^#/d' hack/image/packages | paste -sd, -)
# Merged /usr set up as debootstrap does for debian:bookworm-slim, so apt
# satisfies init-system-helpers' "usrmerge | usr-is-merged" with the latter
# rather than usrmerge, which pulls in perl (45 MB).
mmdebstrap_args=(
	--variant=apt --architectures="$arch" --include="$packages" --dpkgopt=hack/image/dpkg-excludes
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
base_tar=$cache/debian-bookworm-$arch-$key.tar
mkdir -p "$cache"
# One base build per architecture at a time: make runs several image builds at once.
exec 7>"$cache/.lock-$arch"
flock 7
if [[ ! -s $base_tar || ${REFRESH_BASE:-} == 1 ]]; then
	say "making the Debian bookworm $arch base with mmdebstrap ($packages); first run only, a few minutes"
	partial=$cache/partial-$arch-$key.tar
	rm -rf "$partial"
	mmdebstrap --format=tar "${mmdebstrap_args[@]}" "$partial" "${sources[@]}" 2>&1 |
		while IFS= read -r line; do say "mmdebstrap: $line"; done
	mv "$partial" "$base_tar"
	find "$cache" -maxdepth 1 -name "debian-bookworm-$arch-*.tar" ! -path "$base_tar" -delete
	say "base made: $(du -h "$base_tar" | cut -f1)"
else
	say "base cached: $base_tar"
fi
flock -u 7

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
trap 'cleanup; restore_binfmt' EXIT

# Every time stamp the image holds (its creation, its history, its files'
# modification times) is the commit's: the same tree and base give the same digest.
epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)

# image_from_tar REF TAR: a single-layer image holding TAR's files.
image_from_tar() {
	local container
	container=$("${buildah[@]}" from scratch)
	"${buildah[@]}" config --os linux --arch "$arch" "$container"
	"${buildah[@]}" add "$container" "$2" / >/dev/null
	"${buildah[@]}" commit -q --rm --timestamp "$epoch" "$container" "$1" >/dev/null
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
CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -buildvcs=false -ldflags="$ldflags" \
	-o "$work/binary/out/cert-manager-webhook-exec" .
tar -C "$work/binary" --mtime="@$epoch" --owner=0 --group=0 --numeric-owner -cf "$work/binary.tar" out
image_from_tar localhost/cert-manager-webhook-exec-binary:local "$work/binary.tar"
image_from_tar "localhost/cert-manager-webhook-exec-base:$key" "$base_tar"

say "building $image from the Dockerfile with buildah (no network)"
"${buildah[@]}" bud --quiet --pull=never --network none --runtime runc --layers=false \
	--platform "linux/$arch" --timestamp "$epoch" \
	--build-arg BINARY_STAGE=localhost/cert-manager-webhook-exec-binary:local \
	--build-arg BASE_STAGE="localhost/cert-manager-webhook-exec-base:$key" \
	--tag "$image" . >/dev/null

mkdir -p "$(dirname "$archive")"
sbom=${archive%.tar}.spdx.json
say "writing the image's SBOM, $sbom (SPDX 2.3: the binary's Go modules, the base's Debian packages)"
tar -xOf "$base_tar" ./var/lib/dpkg/status >"$work/dpkg-status"
(cd hack/tools/sbom && GOFLAGS=-mod=mod go build -o "$work/sbom" .)
"$work/sbom" --binary "$work/binary/out/cert-manager-webhook-exec" --dpkg-status "$work/dpkg-status" \
	--version "${VERSION:-dev}" --arch "$arch" --created "$sbom_created" >"$sbom.partial"
mv "$sbom.partial" "$sbom"

rm -f "$archive.partial"
"${buildah[@]}" push --quiet "$image" "docker-archive:$archive.partial:$image" >/dev/null
mv "$archive.partial" "$archive"
say "$image built for linux/$arch: $(du -h "$archive" | cut -f1) (uncompressed layers; the binary $(du -h "$work/binary/out/cert-manager-webhook-exec" | cut -f1))"
echo "$archive"
