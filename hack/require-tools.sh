#!/usr/bin/env bash
# Checks that the system packages the tests run are installed, and says how
# to install them. .ci/run installs them on a fresh machine.
#   hack/require-tools.sh          the test bed's servers and tools
#   hack/require-tools.sh image    those, and what builds and runs the image
#   hack/require-tools.sh node     those, and the node's container runtime, CNI plugins and iptables
set -euo pipefail
missing=()
tools=(named:bind9 nsupdate:bind9-dnsutils dig:bind9-dnsutils openssl:openssl jq:jq curl:curl
	pdns_server:pdns-server sqlite3:sqlite3)
if [[ ${1:-} == image || ${1:-} == node ]]; then
	tools+=(buildah:buildah mmdebstrap:mmdebstrap podman:podman runc:runc)
fi
if [[ ${1:-} == node ]]; then
	tools+=(containerd:containerd ctr:containerd iptables:iptables)
	if [[ ! -x /usr/lib/cni/bridge ]]; then
		missing+=(containernetworking-plugins)
	fi
fi
for tool in "${tools[@]}"; do
	cmd=${tool%%:*} pkg=${tool##*:}
	if ! command -v "$cmd" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$cmd ]]; then
		missing+=("$pkg")
	fi
done
if [[ ! -e /usr/lib/x86_64-linux-gnu/pdns/libgsqlite3backend.so ]] && ! ls /usr/lib/*/pdns/libgsqlite3backend.so >/dev/null 2>&1; then
	missing+=(pdns-backend-sqlite3)
fi
if ((${#missing[@]})); then
	echo "missing system packages: ${missing[*]}" >&2
	echo "install them with: apt-get update && apt-get install -y ${missing[*]}" >&2
	exit 1
fi
