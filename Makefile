# fleetmq — see README.md. Every target runs on a fresh machine: tools come
# from hack/tools.sh (Debian apt and the Go module proxy).
SHELL := /usr/bin/env bash -o pipefail
TOOLS ?= $(HOME)/.cache/fleetmq/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
GOLANGCI_LINT := $(TOOLS)/golangci-lint
FUZZTIME ?= 3s
MQTT_ADDR ?= :1883

.PHONY: all build run test unit fuzz lint fmt fmt-check vet bench tools clean manifests verify-manifests envtest-assets

all: build

## build: static binaries of the broker and the operator into bin/ (as the Dockerfile builds them)
build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/fleetmq-broker ./cmd/broker
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/fleetmq-operator ./cmd/operator

## run: the broker on $(MQTT_ADDR), anonymous access on (a local playground)
run: build
	bin/fleetmq-broker --mqtt-addr $(MQTT_ADDR) --allow-anonymous --log-format text

## test: everything CI checks: formatting, vet, lint, generated manifests up to date,
## race-enabled tests (the operator's against a real kube-apiserver and etcd), fuzz smoke
test: fmt-check vet lint verify-manifests unit fuzz

unit:
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh assets)" go test -race -count=1 ./...

## manifests: CRDs, RBAC and deepcopy code from the API types and markers
manifests:
	CG="$$(hack/envtest.sh controller-gen)" && \
	"$$CG" object:headerFile=hack/boilerplate.go.txt paths=./api/... && \
	"$$CG" rbac:roleName=fleetmq-operator crd paths=./api/... paths=./controllers/... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

## verify-manifests: fail when the generated files are stale
verify-manifests: manifests
	@if [ -n "$$(git status --porcelain -- api config)" ]; then \
		echo "generated files are stale; run make manifests and commit:"; git status --porcelain -- api config; exit 1; fi

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

tools:
	hack/tools.sh

clean:
	rm -rf bin
