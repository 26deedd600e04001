# fleetmq — see README.md. Every target runs on a fresh machine: tools come
# from hack/tools.sh (Debian apt and the Go module proxy).
SHELL := /usr/bin/env bash -o pipefail
TOOLS ?= $(HOME)/.cache/fleetmq/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
GOLANGCI_LINT := $(TOOLS)/golangci-lint
FUZZTIME ?= 3s
MQTT_ADDR ?= :1883

.PHONY: all build run test unit fuzz lint fmt fmt-check vet bench bench-compare tools clean manifests verify-manifests envtest-assets

all: build

## build: static binaries of the broker and the operator into bin/ (as the Dockerfile builds them)
build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/fleetmq-broker ./cmd/broker
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/fleetmq-operator ./cmd/operator

## run: the broker on $(MQTT_ADDR) (anonymous access on: a local playground) and,
## when a cluster is reachable, the operator against it
run:
	MQTT_ADDR=$(MQTT_ADDR) hack/run.sh

## test: everything CI checks: formatting, vet, lint, generated manifests up to date,
## race-enabled tests (the operator's against a real kube-apiserver and etcd), fuzz smoke
test: fmt-check vet lint verify-manifests helm-lint docker-check unit fuzz

unit:
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh assets)" go test -race -count=1 ./...

## manifests: CRDs, RBAC and deepcopy code from the API types and markers
manifests:
	CG="$$(hack/envtest.sh controller-gen)" && \
	"$$CG" object:headerFile=hack/boilerplate.go.txt paths=./api/... && \
	"$$CG" rbac:roleName=fleetmq-operator crd paths=./api/... paths=./controllers/... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	cp config/crd/bases/*.yaml charts/fleetmq/crds/
	go run ./hack/crdref

## verify-manifests: fail when generated files (CRDs, RBAC, deepcopy, chart CRDs, CRD reference) are stale
verify-manifests: manifests
	@if [ -n "$$(git status --porcelain -- api config charts docs)" ]; then \
		echo "generated files are stale; run make manifests and commit:"; git status --porcelain -- api config charts docs; exit 1; fi

fuzz:
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

vet:
	go vet ./...

lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	hack/tools.sh lint

fmt:
	gofmt -w $$(git ls-files '*.go')

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## bench: the codec, topic index, auth and delivery benchmarks
bench:
	go test -run '^$$' -bench . -benchmem ./broker/...

## bench-compare: fleetmq against Mosquitto and mochi-mqtt on loopback, same scenarios, one table
## (hack/bench.sh; QUICK=1 for short windows, see the script for more knobs)
bench-compare:
	hack/bench.sh

tools:
	hack/tools.sh

clean:
	rm -rf bin

# --- delivery: Dockerfile, Helm chart, Argo CD health checks, docs -------------
.PHONY: docs verify-docs docker-check helm-lint chart-test argocd-test

## docs: docs/crd-reference.md from the CRDs (run after make manifests)
docs:
	go run ./hack/crdref

## verify-docs: fail when docs/crd-reference.md is stale
verify-docs:
	go run ./hack/crdref -check

## docker-check: build both binaries exactly as the Dockerfile does, check they are static (no Docker engine needed)
docker-check:
	hack/docker-check.sh $(VERSION)

## helm-lint: helm lint --strict and a helm template of charts/fleetmq
helm-lint:
	HELM="$$(hack/envtest.sh helm)" && \
	"$$HELM" lint --strict charts/fleetmq && \
	"$$HELM" template fleetmq charts/fleetmq --namespace fleetmq-system >/dev/null

## chart-test: render the chart and server-side dry-run apply it (and config/) against envtest
chart-test:
	HELM="$$(hack/envtest.sh helm)" KUBEBUILDER_ASSETS="$$(hack/envtest.sh assets)" go test -count=1 ./test/chart/

## argocd-test: run the Argo CD Lua health checks on the sample objects
argocd-test:
	go test -count=1 ./deploy/argocd/
