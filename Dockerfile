# cert-manager-webhook-exec image: the static webhook binary on Debian bookworm,
# with /bin/sh and the tools the example programs use (nsupdate, curl, jq,
# openssl, CA certificates), running as UID 65532.
#
#   docker build -t cert-manager-webhook-exec \
#     --build-arg VERSION=0.2.0 --build-arg COMMIT=$(git rev-parse HEAD) --build-arg COMMIT_DATE=$(git log -1 --format=%cI) .
#
# (`docker buildx build --platform linux/amd64,linux/arm64 ...` builds both: the
# binary is cross-compiled on the build machine for TARGETARCH.)
#
# builds everything from public images: the binary from source in golang, the
# base from debian:bookworm-slim plus hack/image/packages. CI has no Docker
# engine, no registry and no network inside a build, so hack/image.sh (`make
# image`, and `make release` for each architecture) builds this same file with buildah and replaces the two stages that
# need the network: it passes BINARY_STAGE, an image holding the binary built on
# the host with the same flags, and BASE_STAGE, the same packages installed by
# mmdebstrap with the same dpkg excludes. The stages after them are shared, so
# the user, the files and the entrypoint are what CI builds and tests.
# A stage chosen by an ARG is how a Dockerfile selects stages: Docker resolves
# the default (a stage name) and BuildKit skips the stages the final one does
# not use. buildah 1.28 skips them too but cannot resolve a stage name from an
# ARG, so with buildah both BINARY_STAGE and BASE_STAGE must name images.
ARG GO_IMAGE=golang:1.26-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim
ARG BINARY_STAGE=binary-from-source
ARG BASE_STAGE=base-from-apt

FROM --platform=${BUILDPLATFORM} ${GO_IMAGE} AS binary-from-source
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY *.go ./
COPY solver/ solver/
COPY internal/ internal/
# What `cert-manager-webhook-exec version` prints; the build context has no .git.
ARG VERSION=dev
ARG COMMIT=
ARG COMMIT_DATE=
RUN CGO_ENABLED=0 GOARCH=${TARGETARCH} go build -trimpath -buildvcs=false \
    -ldflags="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.commitDate=${COMMIT_DATE}" \
    -o /out/cert-manager-webhook-exec .

FROM ${DEBIAN_IMAGE} AS base-from-apt
COPY hack/image/dpkg-excludes /etc/dpkg/dpkg.cfg.d/cert-manager-webhook-exec
COPY hack/image/packages /tmp/packages
RUN apt-get update \
 && apt-get install -y --no-install-recommends $(sed -e '/^#/d' /tmp/packages) \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /tmp/packages

FROM ${BINARY_STAGE} AS binary

FROM ${BASE_STAGE}
RUN echo 'webhook:x:65532:65532:webhook:/nonexistent:/usr/sbin/nologin' >>/etc/passwd \
 && echo 'webhook:x:65532:' >>/etc/group
COPY --from=binary /out/cert-manager-webhook-exec /usr/local/bin/cert-manager-webhook-exec
COPY examples/ /usr/local/share/cert-manager-webhook-exec/examples/
USER 65532:65532
# The webhook reaps its programs' orphans itself when it runs as PID 1.
ENTRYPOINT ["/usr/local/bin/cert-manager-webhook-exec"]
