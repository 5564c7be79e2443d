#!/usr/bin/env bash
# Builds docs/add-packages/Dockerfile, the webhook's image with more Debian
# packages, as hack/image.sh builds the image: with buildah and no network in
# the build. apt on the host downloads the packages, and what they need that
# the image lacks (resolved against the image's own dpkg status), into an
# image passed as DEBS_STAGE; the Dockerfile's last stage installs them as it
# does under `docker build`. Writes a docker-archive tarball and
# prints its path last (stdout); progress goes to stderr. Needs root, buildah
# and apt.
#
#   hack/add-packages.sh BASE_ARCHIVE [PACKAGE...]   (default: python3)
#
# BASE_ARCHIVE is hack/image.sh's tarball. Environment: IMAGE (default
# localhost/cert-manager-webhook-exec:dev-add-packages), IMAGE_ARCHIVE
# (default bin/cert-manager-webhook-exec-add-packages.tar).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
base_archive=${1:?usage: hack/add-packages.sh BASE_ARCHIVE [PACKAGE...]}
shift
packages=("${@:-python3}")
image=${IMAGE:-localhost/cert-manager-webhook-exec:dev-add-packages}
archive=${IMAGE_ARCHIVE:-$repo/bin/cert-manager-webhook-exec-add-packages.tar}
start=$SECONDS

say() { echo "[add-packages] $((SECONDS - start))s: $*" >&2; }

if ((EUID != 0)); then
	say "run as root: buildah's private vfs storage needs it"
	exit 1
fi

# A private buildah storage and apt state, removed at the end with all they hold.
work=$(mktemp -d "${TMPDIR:-/tmp}/add-packages.XXXXXX")
buildah=(buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs)
cleanup() {
	"${buildah[@]}" umount --all >/dev/null 2>&1 || true
	"${buildah[@]}" rm --all >/dev/null 2>&1 || true
	"${buildah[@]}" rmi --all --force >/dev/null 2>&1 || true
	if grep -qF " $work/" /proc/self/mountinfo; then
		say "mounts left under $work; not removing it:"
		grep -F " $work/" /proc/self/mountinfo >&2
		return
	fi
	rm -rf "$work"
}
trap cleanup EXIT

base=localhost/cert-manager-webhook-exec-base-for-packages:local
"${buildah[@]}" pull --quiet "docker-archive:$base_archive" >/dev/null
"${buildah[@]}" tag "$("${buildah[@]}" images --quiet | head -n1)" "$base"

# What the image has installed, for apt to resolve against.
container=$("${buildah[@]}" from --pull=never "$base")
cp "$("${buildah[@]}" mount "$container")/var/lib/dpkg/status" "$work/status"
"${buildah[@]}" umount "$container" >/dev/null
"${buildah[@]}" rm "$container" >/dev/null

say "downloading ${packages[*]} and what they need that the image lacks, with apt on the host"
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$work/apt/sources.list" <<SOURCES
deb [signed-by=$keyring] http://deb.debian.org/debian bookworm main
deb [signed-by=$keyring] http://deb.debian.org/debian bookworm-updates main
deb [signed-by=$keyring] http://deb.debian.org/debian-security bookworm-security main
SOURCES
apt=(apt-get -qq -o Dir::State::status="$work/status" -o Dir::State::Lists="$work/apt/lists"
	-o Dir::Cache="$work/apt/cache" -o Dir::Etc::SourceList="$work/apt/sources.list"
	-o Dir::Etc::SourceParts=/nonexistent -o Debug::NoLocking=1 -o APT::Sandbox::User=root -o APT::Architecture="$(dpkg --print-architecture)")
"${apt[@]}" update >&2
"${apt[@]}" install --yes --no-install-recommends --download-only "${packages[@]}" >&2
mkdir "$work/debs-root"
mv "$work/apt/cache/archives" "$work/debs-root/debs"
rm -rf "$work/debs-root/debs/partial" "$work/debs-root/debs/lock"
say "$(find "$work/debs-root/debs" -name '*.deb' | wc -l) packages, $(du -sh "$work/debs-root/debs" | cut -f1)"
tar -C "$work/debs-root" -cf "$work/debs.tar" debs
container=$("${buildah[@]}" from scratch)
"${buildah[@]}" add "$container" "$work/debs.tar" / >/dev/null
"${buildah[@]}" commit -q --rm "$container" localhost/cert-manager-webhook-exec-debs:local >/dev/null

say "building $image from docs/add-packages/Dockerfile with buildah (no network)"
"${buildah[@]}" bud --quiet --pull=never --network none --runtime runc --layers=false \
	--build-arg BASE_IMAGE="$base" --build-arg DEBS_STAGE=localhost/cert-manager-webhook-exec-debs:local \
	--tag "$image" docs/add-packages >/dev/null

mkdir -p "$(dirname "$archive")"
rm -f "$archive.partial"
"${buildah[@]}" push --quiet "$image" "docker-archive:$archive.partial:$image" >/dev/null
mv "$archive.partial" "$archive"
say "$image built: $(du -h "$archive" | cut -f1) (uncompressed layers)"
echo "$archive"
