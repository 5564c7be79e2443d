#!/usr/bin/env bash
# Builds the images the test node needs besides the webhook's own (make image):
# its pause image and cert-manager's controllers (hack/tools/cmcontroller), as
# docker-archive tarballs for `ctr images import`, without a registry. Each is
# cached under ${XDG_CACHE_HOME:-$HOME/.cache}/cert-manager-webhook-exec/node-images,
# keyed by the hash of its binary. Prints "name=tarball reference" lines.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${XDG_CACHE_HOME:-$HOME/.cache}/cert-manager-webhook-exec/node-images
mkdir -p "$cache" bin
say() { echo "[node-images] $*" >&2; }

# From scratch: a static binary, a passwd file for its user, an entrypoint.
# image NAME BINARY UID
image() {
	local name=$1 binary=$2 uid=$3
	local key ref tar
	key=$(sha256sum "$binary" | cut -c1-16)
	ref=localhost/exec-node/$name:$key
	tar=$cache/$name-$key.tar
	if [[ ! -s $tar ]]; then
		say "building $ref"
		local work
		work=$(mktemp -d "${TMPDIR:-/tmp}/node-image.XXXXXX")
		local buildah=(buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs)
		mkdir -p "$work/rootfs/etc"
		cp "$binary" "$work/rootfs/$name"
		printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/:/sbin/nologin\n' "$uid" "$uid" >"$work/rootfs/etc/passwd"
		printf 'root:x:0:\nnonroot:x:%s:\n' "$uid" >"$work/rootfs/etc/group"
		local c
		c=$("${buildah[@]}" from scratch)
		"${buildah[@]}" copy "$c" "$work/rootfs" / >/dev/null
		"${buildah[@]}" config --entrypoint "[\"/$name\"]" --cmd '' --user "$uid:$uid" "$c"
		"${buildah[@]}" commit -q --rm "$c" "$ref" >/dev/null
		"${buildah[@]}" push -q "$ref" "docker-archive:$tar.partial:$ref"
		"${buildah[@]}" rmi --all --force >/dev/null
		rm -rf "$work"
		mv "$tar.partial" "$tar"
		find "$cache" -maxdepth 1 -name "$name-*.tar" ! -path "$tar" -delete
	fi
	echo "$name=$tar $ref"
}

CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bin/pause ./internal/testbed/pause
image pause bin/pause 65535
image cert-manager "$(hack/test-assets.sh cmcontroller)" 1000
