#!/usr/bin/env bash
# Builds the binaries that controller-runtime's envtest needs (kube-apiserver,
# etcd, kubectl) plus controller-gen, from the Go module proxy only: the usual
# download sites for prebuilt Kubernetes/etcd binaries are not reachable on our
# machines. Binaries are cached by version under $FLEETMQ_TOOLS (default
# ~/.cache/fleetmq/bin), outside the checkout, so reruns are instant; throwaway
# build modules live under $FLEETMQ_TOOLS_SRC (default ~/.cache/fleetmq/src).
# Progress goes to stderr; the last stdout line is the requested path.
#
#   export KUBEBUILDER_ASSETS=$(hack/envtest.sh)   build everything, print asset dir
#   hack/envtest.sh assets           only kube-apiserver, etcd, kubectl; print asset dir
#   hack/envtest.sh controller-gen   print path of controller-gen (build if missing)
#   hack/envtest.sh helm             print path of helm (built only when asked)
#
# See hack/README.md for cold build times and pitfalls.
set -euo pipefail

K8S_VERSION=v1.37.2          # k8s.io/kubernetes (kube-apiserver, kubectl)
K8S_STAGING_VERSION=v0.37.2  # published k8s.io/* staging modules matching it
ETCD_VERSION=v3.7.2
CONTROLLER_GEN_VERSION=v0.23.0
HELM_VERSION=v3.22.0

TOOLS="${FLEETMQ_TOOLS:-$HOME/.cache/fleetmq/bin}"
SRC="${FLEETMQ_TOOLS_SRC:-$HOME/.cache/fleetmq/src}"
ASSETS="$TOOLS/k8s-${K8S_VERSION#v}"

export CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off
BUILD_FLAGS=(-trimpath)
STRIP="-s -w"

log() { echo "hack/envtest.sh: $*" >&2; }
die() { echo "hack/envtest.sh: ERROR: $*" >&2; exit 1; }

command -v go >/dev/null || die "go is not on PATH"
mkdir -p "$TOOLS" "$ASSETS" "$SRC"

# Serialise concurrent runs (e.g. several test packages calling this at once).
if command -v flock >/dev/null; then
  exec 9>"$TOOLS/.envtest.lock"
  flock 9
fi

# timed LABEL CMD...: runs CMD, logs its wall time, dies with LABEL on failure.
timed() {
  local label=$1; shift
  local start=$SECONDS
  log "building $label ..."
  if ! "$@" >&2; then
    die "building $label failed after $((SECONDS - start))s (see the go output above)"
  fi
  log "built $label in $((SECONDS - start))s"
}

# new_module DIR: a throwaway main module (outside the fleetmq checkout).
new_module() {
  local dir=$1
  mkdir -p "$dir"
  if [ ! -f "$dir/go.mod" ]; then
    (cd "$dir" && go mod init fleetmq.local/tools >/dev/null 2>&1) || die "go mod init in $dir failed"
  fi
}

k8s_module() {
  local dir="$SRC/k8s-$K8S_VERSION"
  if [ ! -f "$dir/.ready" ]; then
    log "preparing throwaway module $dir for k8s.io/kubernetes@$K8S_VERSION"
    rm -rf "$dir"
    new_module "$dir"
    local json gomod
    json=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION") ||
      die "go mod download k8s.io/kubernetes@$K8S_VERSION failed: $(sed -n 's/^[[:space:]]*"Error": //p' <<<"$json")"
    gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' <<<"$json")
    [ -f "$gomod" ] || die "could not find go.mod of k8s.io/kubernetes@$K8S_VERSION"
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces
    # them with ./staging/src/...; those replaces are ignored in a dependency,
    # so map each one to the published version instead.
    local staging
    staging=$(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/src/.*#\1#p' "$gomod")
    [ -n "$staging" ] || die "no staging replaces found in $gomod"
    {
      echo
      echo "require k8s.io/kubernetes $K8S_VERSION"
      echo
      echo "replace ("
      for m in $staging; do echo "	$m => $m $K8S_STAGING_VERSION"; done
      echo ")"
    } >>"$dir/go.mod"
    touch "$dir/.ready"
  fi
  echo "$dir"
}

k8s_ldflags() {
  local v=$K8S_VERSION major minor ld=$STRIP
  major=${v#v}; major=${major%%.*}
  minor=${v#v"$major".}; minor=${minor%%.*}
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  echo "$ld"
}

build_k8s() {  # build_k8s NAME
  local name=$1
  [ -x "$ASSETS/$name" ] && return 0
  local dir ld
  dir=$(k8s_module)
  ld=$(k8s_ldflags)
  (cd "$dir" && timed "$name $K8S_VERSION" go build "${BUILD_FLAGS[@]}" -ldflags="$ld" \
    -o "$ASSETS/.$name.tmp" "k8s.io/kubernetes/cmd/$name")
  mv -f "$ASSETS/.$name.tmp" "$ASSETS/$name"
}

build_etcd() {
  # The etcd version is recorded next to the binary: the asset dir is keyed by
  # the Kubernetes version only.
  if [ -x "$ASSETS/etcd" ] && [ "$(cat "$ASSETS/.etcd-version" 2>/dev/null)" = "$ETCD_VERSION" ]; then
    return 0
  fi
  local dir="$SRC/etcd-$ETCD_VERSION"
  new_module "$dir"
  (cd "$dir" && go get \
      "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "go.etcd.io/etcd/api/v3@$ETCD_VERSION" \
      "go.etcd.io/etcd/client/pkg/v3@$ETCD_VERSION" "go.etcd.io/etcd/client/v3@$ETCD_VERSION" \
      "go.etcd.io/etcd/pkg/v3@$ETCD_VERSION" >&2) || die "go get etcd $ETCD_VERSION modules failed"
  # go.etcd.io/etcd/server/v3 (the module root) is etcd's main package.
  (cd "$dir" && timed "etcd $ETCD_VERSION" go build "${BUILD_FLAGS[@]}" -ldflags="$STRIP" \
    -o "$ASSETS/.etcd.tmp" go.etcd.io/etcd/server/v3)
  mv -f "$ASSETS/.etcd.tmp" "$ASSETS/etcd"
  echo "$ETCD_VERSION" >"$ASSETS/.etcd-version"
}

# go_install NAME VERSION PACKAGE [LDFLAGS]: builds PACKAGE@VERSION into
# $TOOLS/NAME-VERSION.
go_install() {
  local name=$1 version=$2 pkg=$3 ld="$STRIP ${4:-}"
  local bin="$TOOLS/$name-$version"
  if [ ! -x "$bin" ]; then
    local tmp
    tmp=$(mktemp -d "$TOOLS/.build.XXXXXX")
    # `go install pkg@version` builds in its own module context, using the
    # versions of the tool's own go.mod; no GOFLAGS needed.
    (GOFLAGS= GOBIN="$tmp" timed "$name $version" go install "${BUILD_FLAGS[@]}" -ldflags="$ld" "$pkg@$version") ||
      { rm -rf "$tmp"; exit 1; }
    mv -f "$tmp/$name" "$bin"
    rm -rf "$tmp"
  fi
  echo "$bin"
}

# Like helm's Makefile: set its version, and the Kubernetes version that
# `helm template`/`helm lint` assume (.Capabilities.KubeVersion; otherwise
# v1.20) from the k8s.io/client-go version in helm's go.mod (v0.N -> 1.N).
helm_ldflags() {
  [ -x "$TOOLS/helm-$HELM_VERSION" ] && return 0
  local json gomod minor
  json=$(cd "$SRC" && go mod download -json "helm.sh/helm/v3@$HELM_VERSION") ||
    die "go mod download helm.sh/helm/v3@$HELM_VERSION failed: $(sed -n 's/^[[:space:]]*"Error": //p' <<<"$json")"
  gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' <<<"$json")
  minor=$(sed -n 's/^[[:space:]]*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod" | head -1)
  [ -n "$minor" ] || die "no k8s.io/client-go version in $gomod"
  local ld="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ld+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
  done
  echo "$ld"
}

assets() {
  build_k8s kube-apiserver
  build_etcd
  build_k8s kubectl
  "$ASSETS/kube-apiserver" --version >/dev/null 2>&1 || die "$ASSETS/kube-apiserver does not run"
  "$ASSETS/etcd" --version >/dev/null 2>&1 || die "$ASSETS/etcd does not run"
}

case "${1:-all}" in
  all)
    assets
    go_install controller-gen "$CONTROLLER_GEN_VERSION" sigs.k8s.io/controller-tools/cmd/controller-gen >/dev/null
    echo "$ASSETS"
    ;;
  assets)
    assets
    echo "$ASSETS"
    ;;
  controller-gen)
    go_install controller-gen "$CONTROLLER_GEN_VERSION" sigs.k8s.io/controller-tools/cmd/controller-gen
    ;;
  helm)
    ld=$(helm_ldflags)
    go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm "$ld"
    ;;
  -h|--help|help)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    ;;
  *)
    die "unknown target '$1' (want: all, assets, controller-gen, helm)"
    ;;
esac
