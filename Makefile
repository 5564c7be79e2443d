# cert-manager-webhook-exec
#
#   make demo          cert-manager issues a certificate through this webhook, on loopback
#   make test          unit, conformance, integration, chart, end-to-end, node and release tests (builds test binaries once)
#   make tools         build every test binary into the cache (etcd, the Kubernetes components, helm, pebble, cert-manager
#                      and its oldest supported release, cosign)
#   make test-unit     unit tests only (no cluster, no DNS server)
#   make e2e           end-to-end tests only: Pebble, cert-manager, BIND9 and the webhook's two processes on loopback
#   make test-assets   build etcd, kube-apiserver and kubectl into the cache and print their paths
#   make lint          go vet, gofmt and golangci-lint (gosec among others)
#   make bench         benchmarks with ratios: solver vs bare exec, in-process and via a runner process (one run and
#                      60 concurrent), the runner channel's round trip, memory of a flooding run,
#                      the webhook via kube-apiserver, the idle RSS of its two processes vs a do-nothing solver on the
#                      same framework, RAW mode's Challenge cache with 10,000 Challenges
#   make fuzz          fuzz the config parsers and request validation briefly (FUZZTIME=20000x each)
#   make deploy-manifests  regenerate deploy/ and the chart's golden renders from the chart
#   make build         the webhook binary in bin/
#   make image         the container image from the Dockerfile, without Docker (buildah), and its SBOM beside it;
#                      prints its tarball's path last
#   make test-image    build the image and run it with podman: check against BIND, its tools, UID 65532
#   make release       VERSION=0.2.0 [REGISTRY=host/path]: the image index (linux/amd64, linux/arm64) as an OCI
#                      layout, an SBOM per image and the chart pinned by digest in bin/release/VERSION; with
#                      REGISTRY, pushed there and signed with cosign (COSIGN_KEY, or keyless); docs/release.md
#   make test-release  make release into a registry on loopback over HTTPS, then pull, run and verify it
#   make e2e-node      helm install the image on a real Kubernetes node (in a network namespace of its own)
#                      with cert-manager as Pods; certificates through the webhook Pod

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO ?= go
BIN := bin
# kube-apiserver needs longer than envtest's 20s default on a loaded 2-core machine.
export KUBEBUILDER_CONTROLPLANE_START_TIMEOUT ?= 120s

.PHONY: help
help:
	@sed -n 's/^#   //p' Makefile

.PHONY: build
build:
	$(GO) build -o $(BIN)/cert-manager-webhook-exec .

.PHONY: image
image:
	@hack/image.sh

# The image test loads the tarball that hack/image.sh prints last, and the
# one hack/add-packages.sh makes of it (docs/add-packages/Dockerfile).
.PHONY: test-image
test-image:
	@hack/require-tools.sh image
	@archive=$$(hack/image.sh | tail -n1); \
	with_packages=$$(hack/add-packages.sh "$$archive" python3 | tail -n1); \
	IMAGE_ARCHIVE="$$archive" ADD_PACKAGES_ARCHIVE="$$with_packages" $(GO) test -count=1 -tags image -timeout 10m ./test/image/...

# The node test runs in a network namespace of its own (unshare --net): no
# packet and no iptables rule of the node reaches the machine's network. It is
# compiled, and the ServiceMonitor CRD fetched, outside it, where the module
# proxy is reachable. NODE_TEST_FLAGS adds test flags (-test.run=...). Its
# scenarios mostly wait for cert-manager, side by side: -test.parallel lets
# more of them run at once than the machine has cores.
PROMETHEUS_OPERATOR := github.com/prometheus-operator/prometheus-operator@v0.85.0
.PHONY: e2e-node
e2e-node:
	@hack/require-tools.sh node
	@hack/test-assets.sh node >/dev/null
	@hack/test-assets.sh helm >/dev/null
	@hack/test-assets.sh pebble >/dev/null
	@hack/test-assets.sh cosign >/dev/null
	@archive=$$(hack/image.sh | tail -n1); \
	images=$$(hack/node-images.sh); \
	eval "$$(hack/test-assets.sh)"; \
	crd=$$($(GO) mod download -json $(PROMETHEUS_OPERATOR) | jq -r .Dir)/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml; \
	$(GO) test -c -tags node -o $(BIN)/node.test ./test/node/; \
	cd test/node && WEBHOOK_IMAGE="webhook=$$archive localhost/cert-manager-webhook-exec:dev" NODE_IMAGES="$$images" SERVICEMONITOR_CRD="$$crd" \
		unshare --net -- ../../$(BIN)/node.test -test.v -test.count=1 -test.timeout 30m -test.parallel 8 $(NODE_TEST_FLAGS)

# VERSION is the release (SemVer, no leading v); REGISTRY, if set, where the
# image and the chart are pushed and signed (REGISTRY_CA: a PEM CA file for a
# private one; COSIGN_KEY: a cosign key file, else keyless). hack/release.sh
# says the rest (RELEASE_DIR, ARCHS, REGISTRY_USER/REGISTRY_PASSWORD).
.PHONY: release
release:
	@hack/require-tools.sh image
	@VERSION="$(VERSION)" REGISTRY="$(REGISTRY)" REGISTRY_CA="$(REGISTRY_CA)" RELEASE_DIR="$(RELEASE_DIR)" \
		COSIGN_KEY="$(COSIGN_KEY)" SIGN="$(SIGN)" ARCHS="$(ARCHS)" hack/release.sh

# make release into a registry on loopback (go-containerregistry's, over
# HTTPS with its own CA), signed with a key made by the test, then what a
# user pulls from it and verifies. Cold, the arm64 base takes minutes (qemu).
.PHONY: test-release
test-release:
	@hack/require-tools.sh image
	@hack/test-assets.sh helm >/dev/null
	@hack/test-assets.sh cosign >/dev/null
	$(GO) test -count=1 -tags release -timeout 30m -v ./test/release/...

.PHONY: test-assets
test-assets:
	@hack/test-assets.sh

.PHONY: test-unit
test-unit:
	$(GO) test -race -count=1 ./...

.PHONY: test-integration
test-integration:
	@hack/require-tools.sh
	@hack/test-assets.sh helm >/dev/null
	@hack/test-assets.sh helm3 >/dev/null
	@eval "$$(hack/test-assets.sh)"; \
	$(GO) test -race -count=1 -tags integration -timeout 20m ./test/integration/... ./test/chart/...
	@eval "$$(hack/test-assets.sh)"; \
	$(GO) test -race -count=1 -tags integration -timeout 10m -run '^TestIntegration' ./solver/

.PHONY: e2e test-e2e
e2e test-e2e:
	@hack/require-tools.sh
	@hack/test-assets.sh pebble >/dev/null
	@hack/test-assets.sh cmcontroller >/dev/null
	@hack/test-assets.sh cmcontroller-v1.19 >/dev/null
	@eval "$$(hack/test-assets.sh)"; \
	$(GO) test -count=1 -tags e2e -timeout 20m -v ./test/e2e/...

# Installs the Debian packages the suites need first (as root; otherwise it
# prints the apt command), once, before make runs the suites side by side.
.PHONY: tools
tools:
	@hack/require-tools.sh node
	@hack/test-assets.sh >/dev/null
	@hack/test-assets.sh helm >/dev/null
	@hack/test-assets.sh helm3 >/dev/null
	@hack/test-assets.sh pebble >/dev/null
	@hack/test-assets.sh cmcontroller >/dev/null
	@hack/test-assets.sh cmcontroller-v1.19 >/dev/null
	@hack/test-assets.sh node >/dev/null
	@hack/test-assets.sh cosign >/dev/null

# The end-to-end suites mostly wait (cert-manager sleeps 60 s after each DNS-01
# self check), so they run beside the integration tests; each one's output is
# printed when it ends. hack/contain.sh runs each in a PID namespace of its
# own: whatever a test starts ends with it, even when a test binary is killed.
.PHONY: test
test: tools
	@hack/contain.sh $(MAKE) --no-print-directory test-unit
	@hack/contain.sh $(MAKE) --no-print-directory test-image
	@echo "running the integration, end-to-end, node and release suites side by side (output follows as each ends)"
	@hack/contain.sh $(MAKE) --no-print-directory -j4 --output-sync=target test-integration test-e2e e2e-node test-release

.PHONY: lint
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@lint=$$(hack/test-assets.sh golangci-lint); echo "golangci-lint run: go vet and the linters of .golangci.yml (gosec among them), all build tags"; $$lint run ./...

# A count, not a duration: with -fuzztime as a duration, Go 1.26's fuzz
# coordinator can fail a clean run with "context deadline exceeded" when the
# deadline races a busy worker (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 20000x
.PHONY: fuzz
fuzz:
	@for target in FuzzParseConfig FuzzIssuerConfig FuzzValidateRequest; do \
		echo "fuzzing $$target ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) ./solver/ || exit 1; \
	done

.PHONY: demo
demo:
	@hack/require-tools.sh
	@hack/test-assets.sh pebble >/dev/null
	@hack/test-assets.sh cmcontroller >/dev/null
	@eval "$$(hack/test-assets.sh)"; hack/contain.sh $(GO) run ./hack/demo

.PHONY: deploy-manifests
deploy-manifests:
	@eval "$$(hack/test-assets.sh)"; \
	$(GO) test -count=1 -tags integration -run 'TestGoldenRenders|TestDeployManifestsCurrent' ./test/chart/ -update

.PHONY: bench
bench:
	@hack/require-tools.sh
	$(GO) test -run '^$$' -bench PresentOverhead -benchtime 500x ./solver/ | grep -E '^(Benchmark|ok|FAIL)'
	$(GO) test -run '^$$' -bench 60ConcurrentPresents -benchtime 5x ./solver/ | grep -E '^(Benchmark|ok|FAIL)'
	$(GO) test -run '^$$' -bench OutputFlood -benchtime 3x ./internal/runner/ | grep -E '^(Benchmark|ok|FAIL)'
	$(GO) test -run '^$$' -bench ChannelRoundTrip -benchtime 2000x ./internal/runner/ | grep -E '^(Benchmark|ok|FAIL)'
	@eval "$$(hack/test-assets.sh)"; \
	$(GO) test -tags integration -run '^$$' -bench ZoneLease -benchtime 100x ./solver/ | grep -E '^(Benchmark|ok|FAIL)'
	@eval "$$(hack/test-assets.sh)"; \
	$(GO) test -tags integration -run '^$$' -bench ChallengeCacheMemory -benchtime 1x ./solver/ | grep -E '^(Benchmark|ok|FAIL)'
	@eval "$$(hack/test-assets.sh)"; \
	$(GO) test -tags e2e -run '^$$' -bench . -benchtime 1x ./test/e2e/ | grep -E '^(Benchmark|ok|FAIL)'
