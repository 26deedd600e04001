#!/usr/bin/env bash
# Checks the Dockerfile without a Docker engine (none runs on our machines or
# in CI):
#   1. builds the context the way Docker would: only the build stage's COPY
#      sources, filtered by .dockerignore (its `**/NAME` excludes);
#   2. runs the build stage's `go build` RUN line verbatim there, with the
#      stage's ENV (CGO_ENABLED=0), VERSION and the host's GOOS/GOARCH;
#   3. checks both binaries are static (file, ldd), were built with
#      CGO_ENABLED=0 and -trimpath (go version -m), carry the version set by
#      -ldflags, and start (the broker's --version prints it);
#   4. lints the Dockerfile with hadolint when it is on PATH. hadolint is a
#      Haskell program that neither Debian's apt, npm (only a wrapper that
#      downloads a release binary) nor the Go module proxy ships, so on our
#      machines this step is skipped with a note.
#
#   hack/docker-check.sh [VERSION]     (default: v0.0.0-docker-check)
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${1:-v0.0.0-docker-check}
DOCKERFILE=Dockerfile
die() { echo "hack/docker-check.sh: FAIL: $*" >&2; exit 1; }
log() { echo "hack/docker-check.sh: $*" >&2; }

[ -f "$DOCKERFILE" ] || die "no $DOCKERFILE"
[ -f .dockerignore ] || die "no .dockerignore"

# The Dockerfile with continuation lines joined and comments dropped.
joined=$(sed -e '/^[[:space:]]*#/d' "$DOCKERFILE" | awk '{ if (sub(/\\[[:space:]]*$/, "")) { buf = buf $0 " " } else { print buf $0; buf = "" } }')
# The build stage: from `FROM ... AS build` to the next FROM.
stage=$(awk 'BEGIN{IGNORECASE=1} /^FROM .* AS build[[:space:]]*$/ {on=1; next} /^FROM / {on=0} on' <<<"$joined")
[ -n "$stage" ] || die "no 'FROM ... AS build' stage in $DOCKERFILE"

grep -Eq '^ENV .*\bCGO_ENABLED=0\b' <<<"$stage" || die "the build stage does not set ENV CGO_ENABLED=0"
run=$(grep -E '^RUN .*go build' <<<"$stage") || die "no RUN line with 'go build' in the build stage"
[ "$(wc -l <<<"$run")" -eq 1 ] || die "more than one RUN line with 'go build' in the build stage"
for flag in -trimpath '-X main.version=${VERSION}'; do
  grep -qF -- "$flag" <<<"$run" || die "the go build line lacks $flag"
done
# Drop `RUN` and its --mount options; what is left is the shell command.
cmd=$(sed -E -e 's/^RUN[[:space:]]+//' -e 's/--mount=[^[:space:]]+[[:space:]]+//g' <<<"$run")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ctx="$tmp/src"
mkdir -p "$ctx" "$tmp/out"

# 1. The build context. Every COPY source must be let in by .dockerignore.
allowed=$(sed -n 's/^!\(.*\)$/\1/p' .dockerignore | sed 's#/$##')
while read -r _ args; do
  set -- $args
  [ $# -ge 2 ] || die "COPY without a destination: COPY $args"
  srcs=("${@:1:$#-1}")
  for src in "${srcs[@]}"; do
    s=${src%/}
    grep -qxF -- "$s" <<<"$allowed" || die "COPY $src: .dockerignore does not let '$s' in (add !$s)"
    [ -e "$s" ] || die "COPY $src: no such path"
    mkdir -p "$ctx/$(dirname "$s")"
    cp -R "$s" "$ctx/$s"
  done
done < <(grep -E '^COPY ' <<<"$stage" | grep -v -- '--from=')
while read -r pat; do
  name=${pat#\*\*/}; name=${name%/}
  [ -n "$name" ] && find "$ctx" -name "$name" -prune -exec rm -rf {} +
done < <(grep -E '^\*\*/' .dockerignore)

# 2. The build, as written in the Dockerfile.
envs=()
while read -r _ kvs; do
  for kv in $kvs; do envs+=("$kv"); done
done < <(grep -E '^ENV ' <<<"$stage")
goos=$(go env GOOS) goarch=$(go env GOARCH)
log "building with: ${envs[*]} VERSION=$VERSION TARGETOS=$goos TARGETARCH=$goarch"
log "  $cmd"
(cd "$ctx" && env "${envs[@]}" VERSION="$VERSION" TARGETOS="$goos" TARGETARCH="$goarch" \
  bash -ec "${cmd//\/out\//$tmp/out/}") || die "the Dockerfile's go build failed on the filtered context"

# 3. Static, CGO off, trimmed, versioned.
for name in fleetmq-operator fleetmq-broker; do
  bin="$tmp/out/$name"
  [ -x "$bin" ] || die "$name was not built"
  desc=$(file -b "$bin")
  grep -q 'statically linked' <<<"$desc" || die "$name is not statically linked: $desc"
  if ldd "$bin" >/dev/null 2>&1; then die "$name: ldd lists shared libraries: $(ldd "$bin")"; fi
  info=$(go version -m "$bin")
  grep -Eq 'build[[:space:]]+CGO_ENABLED=0' <<<"$info" || die "$name: not built with CGO_ENABLED=0"
  grep -Eq 'build[[:space:]]+-trimpath=true' <<<"$info" || die "$name: not built with -trimpath"
  # -trimpath keeps -ldflags out of the build info: look for the string.
  grep -qaF -- "$VERSION" "$bin" || die "$name: the version $VERSION is not in the binary (-X main.version)"
  log "ok: $name: $(cut -d, -f1-2 <<<"$desc"), statically linked, CGO_ENABLED=0, -trimpath, version $VERSION ($(du -h "$bin" | cut -f1))"
done
got=$("$tmp/out/fleetmq-broker" --version 2>&1) || die "fleetmq-broker --version failed: $got"
[ "$got" = "fleetmq-broker $VERSION" ] || die "fleetmq-broker --version printed '$got', want 'fleetmq-broker $VERSION'"
# The operator has no --version: an unknown flag is a usage error (exit 2),
# which proves the binary starts on this kernel without a loader.
set +e; "$tmp/out/fleetmq-operator" --no-such-flag >/dev/null 2>&1; rc=$?; set -e
[ "$rc" -eq 2 ] || die "fleetmq-operator --no-such-flag exited $rc, want 2 (usage error)"

# The runtime stages: non-root, and the binary each one copies exists.
for target in operator broker; do
  st=$(awk -v t="$target" 'BEGIN{IGNORECASE=1} $0 ~ "^FROM .* AS " t "[[:space:]]*$" {on=1; print; next} /^FROM / {on=0} on' <<<"$joined")
  [ -n "$st" ] || die "no '$target' target in $DOCKERFILE"
  grep -Eq '^FROM +(gcr\.io/distroless/static|scratch)' <<<"$st" || die "target $target is not FROM distroless static or scratch"
  grep -Eq '^USER +[1-9][0-9]*(:[1-9][0-9]*)?$' <<<"$st" || die "target $target does not set a numeric non-root USER"
  grep -Eq "^COPY --from=build /out/fleetmq-$target " <<<"$st" || die "target $target does not copy /out/fleetmq-$target"
done
log "ok: targets operator and broker: distroless static, non-root USER"

# 4. Lint.
if command -v hadolint >/dev/null; then
  hadolint "$DOCKERFILE" || die "hadolint found problems"
  log "ok: hadolint"
else
  log "note: hadolint is not on PATH (not installable from apt, npm or the Go module proxy): Dockerfile lint skipped"
fi
log "Dockerfile checks passed"
