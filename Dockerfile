# syntax=docker/dockerfile:1
#
# Two images from one build: the operator and the broker, each a static Go
# binary on distroless "static" (no shell, no libc), running as non-root.
#
#   docker build --target operator --build-arg VERSION=v0.1.0 -t ghcr.io/fleetmq/fleetmq-operator:v0.1.0 .
#   docker build --target broker   --build-arg VERSION=v0.1.0 -t ghcr.io/fleetmq/fleetmq-broker:v0.1.0 .
#
# hack/docker-check.sh runs the `go build` line below, as written here, on a
# copy of exactly what the COPY lines and .dockerignore let in, and checks
# that both binaries are static: keep the build in that one RUN line.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY api/ api/
COPY broker/ broker/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
ARG VERSION=dev
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    for cmd in operator broker; do GOOS="$TARGETOS" GOARCH="$TARGETARCH" go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o "/out/fleetmq-$cmd" "./cmd/$cmd" || exit 1; done

# The broker: MQTT on 1883 (TLS 8883, WebSocket 8080 when configured), admin
# API, health and metrics on 8081. The operator mounts config, auth bundle,
# admin token and data volume; the image itself holds only the binary.
FROM gcr.io/distroless/static-debian12:nonroot AS broker
ARG VERSION=dev
LABEL org.opencontainers.image.title="fleetmq-broker" \
      org.opencontainers.image.description="fleetmq MQTT broker" \
      org.opencontainers.image.source="https://github.com/fleetmq/fleetmq" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/fleetmq-broker /usr/local/bin/fleetmq-broker
USER 65532:65532
EXPOSE 1883 8081
ENTRYPOINT ["/usr/local/bin/fleetmq-broker"]

# The operator (the default target): metrics on 8080, /healthz and /readyz on 8082.
FROM gcr.io/distroless/static-debian12:nonroot AS operator
ARG VERSION=dev
LABEL org.opencontainers.image.title="fleetmq-operator" \
      org.opencontainers.image.description="fleetmq Kubernetes operator" \
      org.opencontainers.image.source="https://github.com/fleetmq/fleetmq" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/fleetmq-operator /usr/local/bin/fleetmq-operator
USER 65532:65532
EXPOSE 8080 8082
ENTRYPOINT ["/usr/local/bin/fleetmq-operator"]
