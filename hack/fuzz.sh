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
    ok=0
    for attempt in 1 2; do
      if go test "$pkg" -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME" >/tmp/fleetmq-fuzz.log 2>&1; then
        ok=1; break
      fi
      # The fuzzing engine itself sometimes gives up on a loaded machine
      # ("context deadline exceeded" with no failing input): try once more.
      # A real crasher is always reported with the input it wrote.
      if grep -q "Failing input written to" /tmp/fleetmq-fuzz.log || ! grep -q "context deadline exceeded" /tmp/fleetmq-fuzz.log; then
        break
      fi
      echo "  fuzz engine timed out without a failing input; retrying"
    done
    if [ "$ok" != 1 ]; then
      cat /tmp/fleetmq-fuzz.log
      status=1
    fi
  done
done
exit $status
