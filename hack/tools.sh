#!/usr/bin/env bash
# Installs the tools the build and tests need, from Debian's apt and the Go
# module proxy only (nothing else is reachable on our machines). Go binaries
# are cached by version under $FLEETMQ_TOOLS (default ~/.cache/fleetmq/bin),
# outside the checkout, so later runs on the same machine reuse them.
#
#   hack/tools.sh            install everything
#   hack/tools.sh apt        only the Debian packages
#   hack/tools.sh lint       only golangci-lint
set -euo pipefail

TOOLS="${FLEETMQ_TOOLS:-$HOME/.cache/fleetmq/bin}"
GOLANGCI_LINT_VERSION=v2.15.0
mkdir -p "$TOOLS"

need_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_apt() {
  local missing=()
  command -v mosquitto_pub >/dev/null || missing+=(mosquitto-clients)
  command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "hack/tools.sh: apt-get install ${missing[*]}" >&2
    need_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# go_tool NAME VERSION PACKAGE: builds PACKAGE@VERSION into $TOOLS/NAME-VERSION
# and links $TOOLS/NAME to it.
go_tool() {
  local name=$1 version=$2 pkg=$3
  local bin="$TOOLS/$name-$version"
  if [ ! -x "$bin" ]; then
    echo "hack/tools.sh: building $pkg@$version" >&2
    local tmp
    tmp=$(mktemp -d)
    GOBIN="$tmp" go install "$pkg@$version"
    mv "$tmp/$name" "$bin"
    rm -rf "$tmp"
  fi
  ln -sf "$bin" "$TOOLS/$name"
}

install_lint() {
  go_tool golangci-lint "$GOLANGCI_LINT_VERSION" github.com/golangci/golangci-lint/v2/cmd/golangci-lint
}

case "${1:-all}" in
  apt) install_apt ;;
  lint) install_lint ;;
  all) install_apt; install_lint ;;
  *) echo "hack/tools.sh: unknown target $1" >&2; exit 2 ;;
esac
