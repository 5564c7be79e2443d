#!/usr/bin/env bash
# Builds the binaries the tests run (etcd, kube-apiserver, kubectl, and with
# arguments helm, pebble, golangci-lint) from the Go module proxy, caches them
# outside the clone keyed by version, and prints the settings that point at them.
#
#   hack/test-assets.sh              etcd, kube-apiserver, kubectl; prints TEST_ASSET_*
#   hack/test-assets.sh helm         prints the path of a cached helm binary (Helm 4)
#   hack/test-assets.sh helm3        the same for Helm 3
#   hack/test-assets.sh pebble       prints the directory holding pebble and pebble-challtestsrv
#   hack/test-assets.sh golangci-lint
#   hack/test-assets.sh cmcontroller  prints the path of cert-manager's controllers and cainjector
#                                     (test infrastructure; static, so it fits a scratch image)
#   hack/test-assets.sh cmcontroller-v1.19  the same, built from the oldest cert-manager release supported (v1.19)
#   hack/test-assets.sh cosign       prints the path of a cached cosign binary (signs and verifies releases)
#   hack/test-assets.sh node         kubelet, kube-proxy, kube-controller-manager, kube-scheduler; prints their directory
#
# No prebuilt binary is downloaded: everything is compiled here. A cold build of
# kube-apiserver takes ~8 minutes on 2 cores; progress goes to stderr, the
# settings to stdout, so `eval "$(hack/test-assets.sh)"` works.
set -euo pipefail

ETCD_VERSION=v3.6.16
# Matches the k8s.io libraries in go.mod (v0.36.x); the proxy has no v1.36.2.
KUBE_VERSION=v1.36.3
HELM_VERSION=v4.3.2
# Helm 3 is still in use: one install and upgrade runs with it (test/chart).
HELM3_VERSION=v3.21.4
PEBBLE_VERSION=v2.10.3
GOLANGCI_LINT_VERSION=v2.15.0
# Matches github.com/cert-manager/cert-manager in go.mod and hack/tools/cmcontroller/go.mod.
CERT_MANAGER_VERSION=v1.21.2
# Signs and verifies releases (hack/release.sh, test/release). v2.6.x rather
# than v3: v3 signs by default with a signing config fetched from Sigstore's
# TUF repository, which needs the network even with a key.
COSIGN_VERSION=v2.6.5

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/cert-manager-webhook-exec/bin

log() { printf '[test-assets] %s\n' "$*" >&2; }

# One build at a time: parallel make targets may ask for the same binary. A
# cached binary is served without the lock, so a long build of one asset
# never holds up a test that asks for another, already built.
mkdir -p "$cache"
locked=false
lock() {
	if ! $locked; then
		exec 9>"$cache/.lock"
		flock 9
		locked=true
	fi
}

# build OUT MODDIR PKG EXPECTED LDFLAGS [CGO_ENABLED]: go build PKG inside
# MODDIR into OUT, printing a heartbeat so a cold build is visibly alive.
# EXTRA_GOFLAGS adds go flags (build tags, another go.mod).
build() {
	local out=$1 moddir=$2 pkg=$3 expected=$4 ldflags=$5 cgo=${6:-$(go env CGO_ENABLED)}
	if [[ -x $out ]]; then
		return
	fi
	lock
	if [[ -x $out ]]; then # built while this waited for the lock
		return
	fi
	mkdir -p "$(dirname "$out")"
	log "building $(basename "$out") into $(dirname "$out") (cold: $expected; cached afterwards)"
	local start=$SECONDS
	(
		while sleep 30; do log "  ... $(basename "$out") still building ($((SECONDS - start))s)"; done
	) &
	local ticker=$!
	local rc=0
	(cd "$moddir" && CGO_ENABLED=$cgo GOFLAGS="-mod=mod -buildvcs=false ${EXTRA_GOFLAGS:-}" go build -ldflags "$ldflags" -o "$out.tmp" "$pkg") || rc=$?
	kill "$ticker" 2>/dev/null || true
	wait "$ticker" 2>/dev/null || true
	if ((rc != 0)); then
		rm -f "$out.tmp"
		log "building $(basename "$out") failed (exit $rc)"
		exit "$rc"
	fi
	mv "$out.tmp" "$out"
	log "built $(basename "$out") in $((SECONDS - start))s"
}

kube_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2)"

control_plane() {
	local etcd=$cache/etcd-$ETCD_VERSION/etcd
	local kdir=$cache/kubernetes-$KUBE_VERSION
	build "$etcd" "$here/tools/etcd" go.etcd.io/etcd/server/v3 "~2 min" "-s -w"
	build "$kdir/kube-apiserver" "$here/tools/kube" k8s.io/kubernetes/cmd/kube-apiserver "~8 min" "$kube_ldflags"
	build "$kdir/kubectl" "$here/tools/kube" k8s.io/kubernetes/cmd/kubectl "~1 min" "$kube_ldflags"
	echo "export TEST_ASSET_ETCD=$etcd"
	echo "export TEST_ASSET_KUBE_APISERVER=$kdir/kube-apiserver"
	echo "export TEST_ASSET_KUBECTL=$kdir/kubectl"
}

# install_tool NAME VERSION PKG... : go install module tools at a version into the cache.
install_tool() {
	local name=$1 version=$2 ldflags=$3
	shift 3
	local dir=$cache/$name-$version
	local first
	first=$(basename "${1%@*}")
	if [[ ! -x $dir/$first ]]; then
		lock
	fi
	if [[ ! -x $dir/$first ]]; then
		log "building $name $version into $dir (cold: a few minutes; cached afterwards)"
		local start=$SECONDS
		(while sleep 30; do log "  ... $name still building ($((SECONDS - start))s)"; done) &
		local ticker=$!
		local rc=0
		GOBIN=$dir.tmp GOFLAGS= go install -ldflags "$ldflags" "$@" || rc=$?
		kill "$ticker" 2>/dev/null || true
		wait "$ticker" 2>/dev/null || true
		if ((rc != 0)); then
			rm -rf "$dir.tmp"
			log "building $name failed (exit $rc)"
			exit "$rc"
		fi
		rm -rf "$dir"
		mv "$dir.tmp" "$dir"
		log "built $name in $((SECONDS - start))s"
	fi
	echo "$dir"
}

case ${1:-control-plane} in
control-plane) control_plane ;;
helm)
	# Helm 4 reads the Kubernetes version of its default capabilities from
	# its client-go module's version in the build info.
	dir=$(install_tool helm "$HELM_VERSION" "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
		"helm.sh/helm/v4/cmd/helm@$HELM_VERSION")
	echo "$dir/helm"
	;;
helm3)
	dir=$(install_tool helm3 "$HELM3_VERSION" \
		"-X helm.sh/helm/v3/internal/version.version=$HELM3_VERSION -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=36" \
		"helm.sh/helm/v3/cmd/helm@$HELM3_VERSION")
	echo "$dir/helm"
	;;
pebble)
	install_tool pebble "$PEBBLE_VERSION" "" \
		"github.com/letsencrypt/pebble/v2/cmd/pebble@$PEBBLE_VERSION" \
		"github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@$PEBBLE_VERSION"
	;;
cmcontroller)
	# Keyed by the tool's source too, so an edit to it is never served a stale binary.
	revision=$(cd "$here/tools/cmcontroller" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-12)
	out=$cache/cmcontroller-$CERT_MANAGER_VERSION-$revision/cmcontroller
	build "$out" "$here/tools/cmcontroller" . "~6 min" "-s -w" 0
	echo "$out"
	;;
cmcontroller-v1.19)
	# The oldest cert-manager the README's compatibility table claims: the
	# same main.go against that release's modules (go.v1.19.mod).
	tool=$here/tools/cmcontroller
	version=$(awk '$1 == "github.com/cert-manager/cert-manager" { print $2 }' "$tool/go.v1.19.mod")
	revision=$(cd "$tool" && cat go.v1.19.mod go.v1.19.sum ./*.go | sha256sum | cut -c1-12)
	out=$cache/cmcontroller-$version-$revision/cmcontroller
	EXTRA_GOFLAGS="-tags=certmanager_v1_19 -modfile=go.v1.19.mod" build "$out" "$tool" . "~6 min" "-s -w" 0
	echo "$out"
	;;
node)
	kdir=$cache/kubernetes-$KUBE_VERSION
	build "$kdir/kube-scheduler" "$here/tools/kube" k8s.io/kubernetes/cmd/kube-scheduler "~1 min" "$kube_ldflags"
	build "$kdir/kube-proxy" "$here/tools/kube" k8s.io/kubernetes/cmd/kube-proxy "~1 min" "$kube_ldflags"
	build "$kdir/kube-controller-manager" "$here/tools/kube" k8s.io/kubernetes/cmd/kube-controller-manager "~3 min" "$kube_ldflags"
	build "$kdir/kubelet" "$here/tools/kube" k8s.io/kubernetes/cmd/kubelet "~5 min" "$kube_ldflags"
	echo "$kdir"
	;;
cosign)
	dir=$(install_tool cosign "$COSIGN_VERSION" "-s -w -X sigs.k8s.io/release-utils/version.gitVersion=$COSIGN_VERSION" \
		"github.com/sigstore/cosign/v2/cmd/cosign@$COSIGN_VERSION")
	echo "$dir/cosign"
	;;
golangci-lint)
	dir=$(install_tool golangci-lint "$GOLANGCI_LINT_VERSION" "" \
		"github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION")
	echo "$dir/golangci-lint"
	;;
*)
	log "unknown asset $1 (want: control-plane, node, helm, helm3, pebble, cosign, golangci-lint, cmcontroller, cmcontroller-v1.19)"
	exit 2
	;;
esac
