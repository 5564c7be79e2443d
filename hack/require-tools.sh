#!/usr/bin/env bash
# Checks that the Debian packages the tests run are installed. Run as root, it
# installs those missing (saying which); otherwise it stops with the exact
# command to run. `make demo` and `make test` call it first, so they are the
# only commands a fresh Debian machine needs.
#   hack/require-tools.sh          the test bed's servers and tools
#   hack/require-tools.sh image    those, and what builds, runs and publishes the image
#   hack/require-tools.sh node     those, and the node's container runtime, CNI plugins and iptables
set -euo pipefail
missing_packages() {
	local missing=()
	local tools=(named:bind9 nsupdate:bind9-dnsutils dig:bind9-dnsutils openssl:openssl jq:jq curl:curl
		pdns_server:pdns-server sqlite3:sqlite3)
	if [[ ${1:-} == image || ${1:-} == node ]]; then
		tools+=(buildah:buildah mmdebstrap:mmdebstrap podman:podman runc:runc skopeo:skopeo)
	fi
	if [[ ${1:-} == node ]]; then
		tools+=(containerd:containerd ctr:containerd iptables:iptables)
		if [[ ! -x /usr/lib/cni/bridge ]]; then
			missing+=(containernetworking-plugins)
		fi
	fi
	for tool in "${tools[@]}"; do
		local cmd=${tool%%:*} pkg=${tool##*:}
		if ! command -v "$cmd" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$cmd ]]; then
			missing+=("$pkg")
		fi
	done
	if [[ ! -e /usr/lib/x86_64-linux-gnu/pdns/libgsqlite3backend.so ]] && ! ls /usr/lib/*/pdns/libgsqlite3backend.so >/dev/null 2>&1; then
		missing+=(pdns-backend-sqlite3)
	fi
	echo "${missing[@]}"
}

missing=$(missing_packages "$@")
if [[ -z $missing ]]; then
	exit 0
fi
if ((EUID != 0)); then
	echo "missing Debian packages: $missing" >&2
	echo "install them with (as root): apt-get update && apt-get install -y --no-install-recommends $missing" >&2
	exit 1
fi
# One installation at a time: make runs several targets that call this at once.
exec 8>/run/lock/cert-manager-webhook-exec-apt.lock
flock 8
missing=$(missing_packages "$@")
if [[ -n $missing ]]; then
	echo "installing missing Debian packages: $missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086 # a list of package names
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
