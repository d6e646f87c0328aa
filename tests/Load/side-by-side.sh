#!/bin/bash
# The load figures of docs/benchmarks.md: each scenario against a fresh broker, ours then Mosquitto,
# in one session. Run from anywhere; needs
#   dotnet publish -c Release src/Broker -o /tmp/brokerbin && dotnet build -c Release tests/Load
#   apt-get install -y mosquitto
# usage: tests/Load/side-by-side.sh OUTDIR [hold silent connect storm fanout0 fanin0 fanout0paced pairs1 pairs1p
#                                           ovpairs1 ovfanin0 ovfanin1 ovstall ovstallbase connect19k
#                                           ovpairs1sep ovfanin0sep ovfanin1sep]
# env: SMALL=1 (tiny sizes, a dry run), DUR=S (hold seconds, 60), BROKERS="ours mosquitto" (also: ours-off, ours
#      without persistence), OURS_ENV="NAME=VALUE ..." (environment of our broker, for runtime-setting variants),
#      OURS_ARGS="--Broker:... ..." (extra arguments of our broker)
# Our broker gets a fresh store in OUTDIR for every run (the load tool's clients use clean sessions unless
# --clean-start false, so it writes nothing); pairs1p (persistent sessions) runs Mosquitto with
# `persistence true` in a store of its own in OUTDIR.
# Every broker started here is stopped here; each load run stops itself (its deadline) and is
# bounded by `timeout 100` on top.
set -u
cd "$(dirname "$0")/../.."
LOAD=tests/Load/bin/Release/net10.0/Broker.Load
OURS=${OURS_BIN:-/tmp/brokerbin/Broker}
OUT=$1; shift
mkdir -p "$OUT"
n() { if [ "${SMALL:-0}" = 1 ]; then echo "$2"; else echo "$1"; fi; }
D=${DUR:-60}
SCENARIOS=${*:-hold silent connect storm fanout0 fanin0 fanout0paced pairs1}

wait_port() { for _ in $(seq 1 100); do ss -ltn | grep -q "127.0.0.1:$1 " && return 0; sleep 0.1; done; echo "port $1 not listening" >&2; return 1; }

start_broker() { # ours|ours-off|mosquitto name
  if [ "$1" = ours ] || [ "$1" = ours-off ]; then
    rm -rf "$OUT/store-$2-$1"
    local persistence=--Broker:Persistence:Path="$OUT/store-$2-$1"
    [ "$1" = ours-off ] && persistence=--Broker:Persistence:Enabled=false
    env ${OURS_ENV:-} "$OURS" --Broker:Tcp:Port=18831 --Broker:Tcp:Address=127.0.0.1 --Logging:LogLevel:Default=Warning --Broker:Metrics:Port=0 "$persistence" ${OURS_ARGS:-} > "$OUT/$2-$1.broker.log" 2>&1 &
    PORT=18831
  elif [ "$2" = pairs1p ]; then
    # Mosquitto's own persistence: an in-memory broker that writes its state to mosquitto.db at autosave_interval and
    # at shutdown (no fsync per acknowledged message).
    rm -rf "$OUT/mosquitto-store" && mkdir -p "$OUT/mosquitto-store"
    { cat tests/Load/mosquitto.conf | grep -v '^persistence'; echo "persistence true"; echo "persistence_location $OUT/mosquitto-store/"; \
      echo "max_queued_messages 1000"; } > "$OUT/mosquitto-persist.conf"
    mosquitto -c "$OUT/mosquitto-persist.conf" > "$OUT/$2-mosquitto.broker.log" 2>&1 &
    PORT=18830
  else
    mosquitto -c tests/Load/mosquitto.conf > "$OUT/$2-mosquitto.broker.log" 2>&1 &
    PORT=18830
  fi
  PID=$!
  wait_port $PORT
}

stop_broker() {
  kill "$PID" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$PID" 2>/dev/null
}

run() { # name broker load-args... ('$PID' stands for the broker's pid)
  local name=$1 broker=$2; shift 2
  echo "-- $name $broker $(date -u +%H:%M:%S) load: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/env.txt"
  ps -eo pid,pcpu,etime,args --sort=-pcpu | head -4 | cut -c1-160 >> "$OUT/env.txt"
  start_broker "$broker" "$name"
  local idle=
  if [ "${SEPARATE_IDLE:-0}" = 1 ]; then
    timeout 60 "$LOAD" hold --clients $(n 1000 100) --keepalive 5 --duration 9 --rate 2000 --workers 1 --port "$PORT" \
      --no-progress --json-out "$OUT/$name-$broker.idle.json" > "$OUT/$name-$broker.idle.txt" 2>&1 &
    idle=$!
    echo "== $name $broker idle clients beside it: $LOAD hold --clients $(n 1000 100) --keepalive 5 --duration 9 --rate 2000 --workers 1 --port $PORT" >> "$OUT/commands.txt"
    sleep 1.5
  fi
  local args=(); for a in "$@"; do [ "$a" = '$PID' ] && a=$PID; args+=("$a"); done
  echo "== $name $broker $(date -u +%H:%M:%S) $LOAD ${args[*]} --port $PORT" | tee -a "$OUT/commands.txt"
  timeout 100 "$LOAD" "${args[@]}" --port $PORT --no-progress --json-out "$OUT/$name-$broker.json" > "$OUT/$name-$broker.txt" 2> "$OUT/$name-$broker.err"
  echo "exit $?" >> "$OUT/$name-$broker.txt"
  [ -n "$idle" ] && wait "$idle"
  grep -v '^RESULT' "$OUT/$name-$broker.txt"
  echo "broker alive at the end: $(kill -0 $PID 2>/dev/null && echo yes || echo NO)"
  stop_broker
}

# The overload scenarios with their 1,000 idle pinging clients in a load process of their own: the in-process
# idle clients share one load process (one core at most) with the saturating publishers, so their PINGRESP figures
# include that process's own queueing, which grows with the broker's throughput. Here the idle clients connect
# first, then hold for 9 s inside the 10 s of overload; their figures are in NAME-BROKER.idle.txt.
run_separate_idle() { # name broker load-args...
  local name=$1 broker=$2
  SEPARATE_IDLE=1 run "$@"
  grep -E '^\| (ping|unexpected)' "$OUT/$name-$broker.idle.txt"
}

for scenario in $SCENARIOS; do
  for broker in ${BROKERS:-ours mosquitto}; do
    case $scenario in
      hold)
        # Kernel socket memory in the middle of the hold (both ends are on this machine).
        (sleep 40; cat /proc/net/sockstat > "$OUT/hold-$broker.sockstat") &
        run hold $broker hold --clients $(n 19000 2000) --keepalive 60 --duration $D --rate 3000 --workers 2 --broker-pid '$PID' ;;
      silent) run silent $broker silent --clients $(n 10000 1000) --keepalive 4 --duration 4 --rate 5000 --workers 2 --mqtt 5 --silent-fraction 0.5 ;;
      connect) run connect $broker connect --clients $(n 10000 1000) --rate 0 --workers 2 --max-pending 1000 ;;
      storm) run storm $broker reconnect-storm --clients $(n 10000 1000) --keepalive 60 --rate 5000 --workers 2 --max-pending 0 --drop rst ;;
      fanout0) run fanout0 $broker pubsub --mode fan-out --clients $(n 501 51) --qos 0 --duration 10 --rate 0 --drain 5 ;;
      fanin0) run fanin0 $broker pubsub --mode fan-in --clients $(n 501 51) --qos 0 --duration 10 --rate 0 --drain 5 ;;
      fanout0paced) run fanout0paced $broker pubsub --mode fan-out --clients $(n 501 51) --qos 0 --duration 10 --rate 200 --drain 5 ;;
      pairs1) run pairs1 $broker pubsub --mode pairs --clients $(n 1000 100) --qos 1 --duration 10 --rate 0 --drain 5 ;;
      # The same with persistent sessions: every message is written for its subscriber's session before the PUBACK.
      pairs1p) run pairs1p $broker pubsub --mode pairs --clients $(n 1000 100) --qos 1 --duration 10 --rate 0 --drain 5 --clean-start false ;;
      # Overload (docs/overload.md): unpaced publishers, with 1,000 idle clients pinging every 5 s beside them.
      ovpairs1) run ovpairs1 $broker pubsub --mode pairs --clients 100 --qos 1 --max-inflight 64 --duration 10 --rate 0 --drain 10 --idle-clients $(n 1000 100) --keepalive 5 --broker-pid '$PID' ;;
      ovfanin0) run ovfanin0 $broker pubsub --mode fan-in --clients 101 --qos 0 --duration 10 --rate 0 --drain 10 --idle-clients $(n 1000 100) --keepalive 5 --broker-pid '$PID' ;;
      ovfanin1) run ovfanin1 $broker pubsub --mode fan-in --clients 101 --qos 1 --duration 10 --rate 0 --drain 10 --idle-clients $(n 1000 100) --keepalive 5 --broker-pid '$PID' ;;
      # A subscriber that stops reading for 30 s while 100 others receive paced traffic, and the same run without it.
      ovpairs1sep) run_separate_idle ovpairs1sep $broker pubsub --mode pairs --clients 100 --qos 1 --max-inflight 64 --duration 10 --rate 0 --drain 10 --broker-pid '$PID' ;;
      ovfanin0sep) run_separate_idle ovfanin0sep $broker pubsub --mode fan-in --clients 101 --qos 0 --duration 10 --rate 0 --drain 10 --broker-pid '$PID' ;;
      ovfanin1sep) run_separate_idle ovfanin1sep $broker pubsub --mode fan-in --clients 101 --qos 1 --duration 10 --rate 0 --drain 10 --broker-pid '$PID' ;;
      ovstall) run ovstall $broker pubsub --mode fan-out --clients 102 --qos 0 --duration 40 --rate 100 --drain 10 --stall-subscribers 1 --stall-seconds 30 --stall-at 5 --idle-clients $(n 1000 100) --keepalive 5 --broker-pid '$PID' ;;
      ovstallbase) run ovstallbase $broker pubsub --mode fan-out --clients 102 --qos 0 --duration 40 --rate 100 --drain 10 --idle-clients $(n 1000 100) --keepalive 5 --broker-pid '$PID' ;;
      # Issue #9's connect figure: a whole idle fleet connecting unpaced with 100 in flight, then holding for 30 s.
      connect19k) run connect19k $broker hold --clients $(n 19000 2000) --keepalive 60 --duration 30 --rate 0 --max-pending 100 --workers 2 --broker-pid '$PID' ;;
      *) echo "unknown scenario $scenario" >&2 ;;
    esac
  done
done
