#!/usr/bin/env bash
# What clustering costs and what crossing nodes costs: cmd/fleetmq-bench
# against fleetmq-broker processes on loopback, in one run so the ratios
# compare like with like.
#
#   single   one broker, not clustered (replicas: 1)
#   local    publishers and subscribers on node 0 of a three-node cluster
#   cross    publishers on node 0, subscribers on node 1 (every message
#            crosses a NATS route)
#
# Each node binds its own loopback address (127.0.0.1-3), as the stand-in
# kubelet gives each pod one. Cases run in turn against the same processes,
# the order rotating per round; the table gives absolute figures and each
# label's ratio to single.
#
#   hack/bench-cluster.sh                   3 rounds of 10 s windows
#   ROUNDS=1 DURATION=5s hack/bench-cluster.sh
#
# Results: $OUT/results.jsonl (fleetmq-bench --json summaries), $OUT/table.md.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10s}"
ROUNDS="${ROUNDS:-3}"
PAIRS="${PAIRS:-10}"
LATENCY_RATE="${LATENCY_RATE:-1000}"
OUT="${OUT:-$(mktemp -d /tmp/fleetmq-bench-cluster.XXXXXX)}"
PORT_BASE="${PORT_BASE:-32880}"

log() { echo "bench-cluster.sh: $*" >&2; }
mkdir -p "$OUT/bin" "$OUT/logs"
: >"$OUT/results.jsonl"

log "building fleetmq-broker and fleetmq-bench into $OUT/bin"
go build -o "$OUT/bin/fleetmq-broker" ./cmd/broker
go build -o "$OUT/bin/fleetmq-bench" ./cmd/fleetmq-bench
BENCH="$OUT/bin/fleetmq-bench"

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_listening() {
  local addr=$1 i
  for i in $(seq 1 200); do
    if ss -ltnH "src $addr" 2>/dev/null | grep -q .; then return 0; fi
    sleep 0.05
  done
  log "nothing listens on $addr"
  return 1
}

# The standalone broker.
SINGLE="127.0.0.1:$PORT_BASE"
"$OUT/bin/fleetmq-broker" --mqtt-addr "$SINGLE" --admin-addr "" --allow-anonymous \
  --log-level warn 2>>"$OUT/logs/single.log" &
PIDS+=($!)

# Three clustered nodes, one loopback address each.
printf 'route:%s\n' "$(head -c 18 /dev/urandom | base64)" >"$OUT/routes"
PEERS=""
for i in 0 1 2; do PEERS+="\"127.0.0.$((i + 1)):$((PORT_BASE + 2))\", "; done
NODES=()
for i in 0 1 2; do
  ip="127.0.0.$((i + 1))"
  cat >"$OUT/node-$i.yaml" <<EOF
listeners:
  mqtt: "$ip:$((PORT_BASE + 1))"
  admin: ""
allowAnonymous: true
log:
  level: warn
cluster:
  name: bench
  nodeName: bench-$i
  listen: "$ip:$((PORT_BASE + 2))"
  peers: [${PEERS%, }]
  credentialsFile: "$OUT/routes"
EOF
  "$OUT/bin/fleetmq-broker" --config "$OUT/node-$i.yaml" 2>>"$OUT/logs/node-$i.log" &
  PIDS+=($!)
  NODES+=("$ip:$((PORT_BASE + 1))")
done
wait_listening "$SINGLE"
for n in "${NODES[@]}"; do wait_listening "$n"; done
sleep 2 # routes connect in the background; the first case would otherwise measure the mesh forming

# case NAME ARGS...: one fleetmq-bench run per label.
run_case() {
  local name=$1
  shift
  local labels=(single local cross)
  # Rotate the order each round so no label always runs first.
  local k
  for k in $(seq 0 2); do
    local label=${labels[$(((k + ROUND) % 3))]}
    local addr sub=()
    case $label in
      single) addr=$SINGLE ;;
      local) addr=${NODES[0]} ;;
      cross) addr=${NODES[0]} sub=(--sub-addr "${NODES[1]}") ;;
    esac
    log "round $ROUND: $name on $label"
    "$BENCH" "$@" --addr "$addr" "${sub[@]}" --settle 1s --duration "$DURATION" \
      --label "$label" --name "$name" --json --quiet >>"$OUT/results.jsonl" 2>>"$OUT/logs/bench.log" ||
      log "$name on $label reported errors (see $OUT/logs/bench.log)"
  done
}

for ROUND in $(seq 1 "$ROUNDS"); do
  run_case qos0 pairs -c "$PAIRS" --qos 0
  run_case qos1 pairs -c "$PAIRS" --qos 1
  run_case qos1-latency pairs -c "$PAIRS" --qos 1 --rate "$LATENCY_RATE"
  run_case fanout-qos1 fanout -c 100 --qos 1 --rate 100
done

"$BENCH" report --baseline single "$OUT/results.jsonl" | tee "$OUT/table.md"
log "results in $OUT"
