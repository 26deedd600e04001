#!/usr/bin/env bash
# Runs every go test -fuzz target of the repository for a short time
# (FUZZTIME, default 3s). A crasher makes this fail and is left in the
# package's testdata/fuzz/ directory, where it stays as a regression case
# once committed.
set -euo pipefail
FUZZTIME="${FUZZTIME:-3s}"
cd "$(dirname "$0")/.."
status=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true)
  for t in $targets; do
    echo "fuzz $pkg $t ($FUZZTIME)"
    if ! go test "$pkg" -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME" >/tmp/fleetmq-fuzz.log 2>&1; then
      cat /tmp/fleetmq-fuzz.log
      status=1
    fi
  done
done
exit $status
