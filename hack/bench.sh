#!/usr/bin/env bash
# Side-by-side MQTT benchmark: fleetmq against Mosquitto (Debian apt) and
# mochi-mqtt v2.7.9 (built from the Go module proxy in a throwaway module
# outside the checkout), driven by cmd/fleetmq-bench on loopback. Every
# scenario runs against a fresh process of each broker in turn, the order
# rotating from one scenario to the next, and the table at the end gives
# absolute figures and ratios to Mosquitto from this one run. Broker and
# load generator share the machine: compare ratios, not absolute numbers
# across machines or runs.
#
#   hack/bench.sh                              everything (~7 minutes on 2 cores)
#   QUICK=1 hack/bench.sh                      5 s windows, 5,000 idle connections
#   BROKERS="fleetmq mosquitto" SCENARIOS="qos0 qos1" hack/bench.sh
#   ROUNDS=3 hack/bench.sh                     repeat; the table shows medians
#   PROFILE=1 hack/bench.sh                    also save fleetmq CPU profiles
#
# Environment: DURATION (measured window, default 10s), IDLE_CONNS (10000),
# MAX_CONNS (connections the max-conns scenario tries to hold; default the
# hard RLIMIT_NOFILE minus 200), OUT (results directory, default a new one
# under /tmp). Results: $OUT/results.jsonl (one fleetmq-bench --json summary
# per run), $OUT/table.md, $OUT/logs/, $OUT/profiles/ with PROFILE=1.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${FLEETMQ_CACHE:-$HOME/.cache/fleetmq}"
MOCHI_VERSION=v2.7.9
QUICK="${QUICK:-}"
DURATION="${DURATION:-$([ -n "$QUICK" ] && echo 5s || echo 10s)}"
IDLE_CONNS="${IDLE_CONNS:-$([ -n "$QUICK" ] && echo 5000 || echo 10000)}"
ROUNDS="${ROUNDS:-1}"
BROKERS="${BROKERS:-fleetmq mosquitto mochi}"
SCENARIOS="${SCENARIOS:-qos0 qos1 qos1-latency fanout fanin idle storm-auth max-conns}"
OUT="${OUT:-$(mktemp -d /tmp/fleetmq-bench.XXXXXX)}"
PROFILE="${PROFILE:-}"
PORT_BASE="${PORT_BASE:-31880}"
BENCH_USER=bench
BENCH_PASSWORD=bench-secret

log() { echo "bench.sh: $*" >&2; }

# Every connection costs a descriptor in the broker and one in the load
# generator (separate processes): raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)"
HARD_NOFILE=$(ulimit -Hn)
MAX_CONNS="${MAX_CONNS:-$((HARD_NOFILE - 200))}"
if [ "$IDLE_CONNS" -gt "$MAX_CONNS" ]; then
  log "IDLE_CONNS $IDLE_CONNS does not fit under RLIMIT_NOFILE $HARD_NOFILE: using $MAX_CONNS"
  IDLE_CONNS=$MAX_CONNS
fi
mkdir -p "$OUT/bin" "$OUT/logs" "$OUT/profiles"
: >"$OUT/results.jsonl"

# --- tools -----------------------------------------------------------------

if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
  log "apt-get install mosquitto"
  sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
MOSQUITTO_PASSWD=$(command -v mosquitto_passwd || echo /usr/bin/mosquitto_passwd)

log "building fleetmq-broker and fleetmq-bench into $OUT/bin"
go build -o "$OUT/bin/fleetmq-broker" ./cmd/broker
go build -o "$OUT/bin/fleetmq-bench" ./cmd/fleetmq-bench
BENCH="$OUT/bin/fleetmq-bench"

# The mochi runner is generated here and built in its own module under the
# cache, never inside the repository.
build_mochi() {
  local src="$CACHE/src/mochi-runner"
  mkdir -p "$src" "$CACHE/bin"
  cat >"$src/main.go" <<'EOF'
// Command mochi-runner serves mochi-mqtt on one TCP listener for
// fleetmq's hack/bench.sh: anonymous, or one user via the auth ledger.
package main

import (
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:1883", "listen address")
	user := flag.String("user", "", "user:password allowed in (auth ledger); empty allows everyone")
	flag.Parse()
	server := mqtt.New(&mqtt.Options{
		InlineClient: false,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	var err error
	if *user == "" {
		err = server.AddHook(new(auth.AllowHook), nil)
	} else {
		u, p, _ := strings.Cut(*user, ":")
		err = server.AddHook(new(auth.Hook), &auth.Options{Ledger: &auth.Ledger{
			Auth: auth.AuthRules{{Username: auth.RString(u), Password: auth.RString(p), Allow: true}},
			ACL:  auth.ACLRules{{Username: auth.RString(u), Filters: auth.Filters{"#": auth.ReadWrite}}},
		}})
	}
	if err != nil {
		log.Fatal(err)
	}
	if err := server.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: *addr})); err != nil {
		log.Fatal(err)
	}
	if err := server.Serve(); err != nil {
		log.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	server.Close()
}
EOF
  local sum bin
  sum=$(sha256sum "$src/main.go" | cut -c1-12)
  bin="$CACHE/bin/mochi-runner-$MOCHI_VERSION-$sum"
  if [ ! -x "$bin" ]; then
    log "building mochi-mqtt $MOCHI_VERSION runner in $src"
    (
      cd "$src"
      [ -f go.mod ] || go mod init fleetmq.local/mochi-runner >/dev/null 2>&1
      GOFLAGS=-mod=mod go get "github.com/mochi-mqtt/server/v2@$MOCHI_VERSION" >/dev/null 2>&1
      GOFLAGS=-mod=mod go build -o "$bin" .
    )
  fi
  MOCHI="$bin"
}
case " $BROKERS " in *" mochi "*) build_mochi ;; esac

# --- auth files ------------------------------------------------------------

"$MOSQUITTO_PASSWD" -b -c "$OUT/mosquitto.passwd" "$BENCH_USER" "$BENCH_PASSWORD" 2>/dev/null
chmod 0600 "$OUT/mosquitto.passwd"
HASH=$(printf '%s' "$BENCH_PASSWORD" | "$OUT/bin/fleetmq-broker" passwd)
cat >"$OUT/fleetmq-auth.json" <<EOF
{"apiVersion":"authz.fleetmq.io/v1","revision":1,"allowAnonymous":false,
 "users":[{"username":"$BENCH_USER","passwordHash":"$HASH"}],
 "rules":[{"subjects":{"users":["$BENCH_USER"]},"topics":["#"],"actions":["publish","subscribe"],"effect":"allow"}]}
EOF

# --- brokers ---------------------------------------------------------------

BROKER_PID=""
BROKER_PORT=""
PPROF_PORT=$((PORT_BASE + 9))

wait_listening() {
  local port=$1 i
  for i in $(seq 1 100); do
    if ss -ltnH "sport = :$port" 2>/dev/null | grep -q .; then return 0; fi
    sleep 0.05
  done
  log "nothing listens on port $port"
  return 1
}

# start_broker NAME AUTH(0|1) LOGFILE
start_broker() {
  local name=$1 auth=$2 logf=$3
  case $name in
    fleetmq)
      BROKER_PORT=$((PORT_BASE + 1))
      local authargs=(--allow-anonymous)
      [ "$auth" = 1 ] && authargs=(--auth-file "$OUT/fleetmq-auth.json")
      if [ -n "$PROFILE" ] && [ "$auth" = 0 ]; then
        # The same broker package and defaults, in the bench binary, with
        # net/http/pprof (fleetmq-broker has no profiling endpoint).
        "$BENCH" broker --addr "127.0.0.1:$BROKER_PORT" --pprof-addr "127.0.0.1:$PPROF_PORT" 2>>"$logf" &
      else
        "$OUT/bin/fleetmq-broker" --mqtt-addr "127.0.0.1:$BROKER_PORT" --admin-addr "127.0.0.1:$((PORT_BASE + 2))" \
          --log-level warn "${authargs[@]}" 2>>"$logf" &
      fi
      ;;
    mosquitto)
      BROKER_PORT=$((PORT_BASE + 3))
      {
        echo "listener $BROKER_PORT 127.0.0.1"
        echo "user $(id -un)" # as root, mosquitto would switch to a user that cannot read $OUT
        echo "max_connections -1"
        echo "max_inflight_messages 128" # fleetmq's MaxInflight
        echo "max_queued_messages 1000"  # fleetmq's MaxQueuedMessages
        echo "set_tcp_nodelay true"      # Go's default: no Nagle delay
        echo "persistence false"
        echo "log_dest stderr"
        echo "log_type error"
        if [ "$auth" = 1 ]; then
          echo "allow_anonymous false"
          echo "password_file $OUT/mosquitto.passwd"
        else
          echo "allow_anonymous true"
        fi
      } >"$OUT/mosquitto.conf"
      "$MOSQUITTO" -c "$OUT/mosquitto.conf" 2>>"$logf" &
      ;;
    mochi)
      BROKER_PORT=$((PORT_BASE + 4))
      local userargs=()
      [ "$auth" = 1 ] && userargs=(--user "$BENCH_USER:$BENCH_PASSWORD")
      "$MOCHI" --addr "127.0.0.1:$BROKER_PORT" "${userargs[@]}" 2>>"$logf" &
      ;;
    *) log "unknown broker $name"; exit 2 ;;
  esac
  BROKER_PID=$!
  wait_listening "$BROKER_PORT"
}

stop_broker() {
  [ -n "$BROKER_PID" ] || return 0
  kill -TERM "$BROKER_PID" 2>/dev/null || true
  local i
  for i in $(seq 1 100); do
    kill -0 "$BROKER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$BROKER_PID" 2>/dev/null || true
  wait "$BROKER_PID" 2>/dev/null || true
  BROKER_PID=""
}
trap stop_broker EXIT

# --- scenarios -------------------------------------------------------------

# scenario_args NAME: the fleetmq-bench arguments; sets AUTH.
scenario_args() {
  AUTH=0
  case $1 in
    qos0) echo pairs -c 10 --qos 0 --duration "$DURATION" ;;
    qos1) echo pairs -c 10 --qos 1 --duration "$DURATION" ;;
    # 100 pairs x 100 msg/s = 10,000 msg/s: the latency goal.
    qos1-latency) echo pairs -c 100 --qos 1 --rate 100 --duration "$DURATION" ;;
    # One publisher at 100 msg/s to 1,000 subscribers: 100,000 deliveries/s.
    fanout) echo fanout -c 1000 --qos 0 --rate 100 --duration "$DURATION" --connect-rate 5000 ;;
    # 1,000 publishers at 100 msg/s each into one subscriber: 100,000 msg/s.
    fanin) echo fanin -c 1000 --qos 0 --rate 100 --duration "$DURATION" --connect-rate 5000 ;;
    # Idle connections, one subscription each: broker RSS per connection.
    idle) echo conn -c "$IDLE_CONNS" --connect-rate 5000 --sub "idle/%i" --qos 1 --duration "$DURATION" --sources 127.0.0.1-4 ;;
    # Connect/disconnect as fast as 32 workers go, username and password.
    storm-auth) AUTH=1; echo conn --storm -c 32 --duration "$DURATION" -u "$BENCH_USER" -P "$BENCH_PASSWORD" --sources 127.0.0.1-8 ;;
    # As many connections as the descriptor limit lets one broker hold.
    max-conns) echo conn -c "$MAX_CONNS" --connect-rate 5000 --duration 5s --sources 127.0.0.1-8 --max-errors "$MAX_CONNS" ;;
    *) log "unknown scenario $1"; exit 2 ;;
  esac
}

read -r -a broker_list <<<"$BROKERS"
read -r -a scenario_list <<<"$SCENARIOS"
nb=${#broker_list[@]}
log "results in $OUT; brokers: $BROKERS; scenarios: $SCENARIOS; window $DURATION; RLIMIT_NOFILE $HARD_NOFILE"
start_time=$(date +%s)
run_no=0
for round in $(seq 1 "$ROUNDS"); do
  for s in "${scenario_list[@]}"; do
    args=$(scenario_args "$s")
    scenario_args "$s" >/dev/null # sets AUTH in this shell
    read -r -a argv <<<"$args"
    for k in $(seq 0 $((nb - 1))); do
      b=${broker_list[$(((k + run_no) % nb))]}
      logf="$OUT/logs/$s-$b-$round.log"
      if ! start_broker "$b" "$AUTH" "$logf"; then
        log "$s $b: the broker did not start; see $logf"
        stop_broker
        continue
      fi
      prof_pid=""
      if [ -n "$PROFILE" ] && [ "$b" = fleetmq ] && [ "$AUTH" = 0 ]; then
        secs=$(( ${DURATION%s} > 2 ? ${DURATION%s} - 1 : 1 ))
        (sleep 1; curl -sf -o "$OUT/profiles/$s-$round.pprof" "http://127.0.0.1:$PPROF_PORT/debug/pprof/profile?seconds=$secs") &
        prof_pid=$!
      fi
      set +e
      # The scenario's own flags come last so that they win (max-conns
      # raises --max-errors: it is meant to find the limit).
      "$BENCH" "${argv[0]}" --addr "127.0.0.1:$BROKER_PORT" --label "$b" --name "$s" \
        --broker-pid "$BROKER_PID" --json --max-errors "${MAX_ERRORS:-100}" "${argv[@]:1}" \
        >>"$OUT/results.jsonl" 2>>"$logf"
      rc=$?
      set -e
      [ -n "$prof_pid" ] && wait "$prof_pid" 2>/dev/null || true
      stop_broker
      log "$(printf '%-13s %-10s rc=%d  %s' "$s" "$b" "$rc" "$(tail -n 1 "$OUT/results.jsonl" | cut -c1-160)")"
    done
    run_no=$((run_no + 1))
  done
done
log "done in $(($(date +%s) - start_time)) s"

{
  echo "fleetmq-bench comparison, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, window $DURATION, RLIMIT_NOFILE $HARD_NOFILE, rounds $ROUNDS"
  echo
  "$BENCH" report --baseline mosquitto "$OUT/results.jsonl"
} | tee "$OUT/table.md"
log "table: $OUT/table.md"
