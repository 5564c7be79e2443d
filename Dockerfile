# cert-manager-webhook-exec image: a static webhook binary on a small base that
# has /bin/sh and the tools the example programs use (nsupdate, curl, jq,
# openssl). Not built in CI: this workplace has no Docker engine.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY main.go ./
COPY solver/ solver/
COPY internal/ internal/
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/cert-manager-webhook-exec .

FROM alpine:3.22
RUN apk add --no-cache bind-tools curl jq openssl ca-certificates \
 && addgroup -g 65532 webhook \
 && adduser -D -H -u 65532 -G webhook -s /sbin/nologin webhook
COPY --from=build /out/cert-manager-webhook-exec /usr/local/bin/cert-manager-webhook-exec
COPY examples/ /usr/local/share/cert-manager-webhook-exec/examples/
USER 65532:65532
# The webhook reaps its programs' orphans itself when it runs as PID 1.
ENTRYPOINT ["/usr/local/bin/cert-manager-webhook-exec"]
