#!/usr/bin/env bash
# The main job, locally: the broker on :1883 (anonymous access on, a
# playground), and, when a Kubernetes cluster is reachable (KUBECONFIG,
# ~/.kube/config or in-cluster), the operator against it with the CRDs
# installed. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
MQTT_ADDR="${MQTT_ADDR:-:1883}"
ADMIN_ADDR="${ADMIN_ADDR:-127.0.0.1:8081}"

make --no-print-directory build >&2

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait || true; }
trap cleanup EXIT INT TERM

bin/fleetmq-broker --mqtt-addr "$MQTT_ADDR" --admin-addr "$ADMIN_ADDR" --allow-anonymous --log-format text &
pids+=($!)

kubeconfig="${KUBECONFIG:-$HOME/.kube/config}"
if [ -n "${KUBERNETES_SERVICE_HOST:-}" ] || [ -f "$kubeconfig" ]; then
  kubectl=$(command -v kubectl || true)
  [ -n "$kubectl" ] || kubectl="$(hack/envtest.sh assets)/kubectl"
  if "$kubectl" version --request-timeout=5s >/dev/null 2>&1; then
    echo "hack/run.sh: cluster reachable: installing CRDs and starting the operator" >&2
    "$kubectl" apply --server-side -k config/crd >&2
    bin/fleetmq-operator --leader-elect=false --metrics-bind-address=127.0.0.1:8080 \
      --health-probe-bind-address=127.0.0.1:8082 &
    pids+=($!)
  else
    echo "hack/run.sh: no reachable cluster; running the broker only" >&2
  fi
else
  echo "hack/run.sh: no kubeconfig; running the broker only" >&2
fi
wait -n "${pids[@]}"
