#!/bin/bash
# Restart time of our broker with a large persistent store (docs/benchmarks.md, "Persistence"): a store with
# SESSIONS persistent sessions (2 subscriptions and 2 queued QoS 1 messages each, 1 inbound QoS 2 id every 10th)
# and RETAINED retained messages is written directly with sqlite3 (python3), then the broker is started on it
# RUNS times; each run reports the time from exec to the MQTT listener line, the store's own read time (event 40)
# and the total restore time (event 47), and the broker's RSS once listening.
# Needs: dotnet publish -c Release src/Broker -o /tmp/brokerbin; python3.
# usage: tests/Load/persistence-restart.sh OUTDIR [SESSIONS=19000] [RETAINED=100000] [RUNS=3]
set -u
cd "$(dirname "$0")/../.."
OURS=${OURS_BIN:-/tmp/brokerbin/Broker}
OUT=$1
SESSIONS=${2:-19000}
RETAINED=${3:-100000}
RUNS=${4:-3}
STORE="$OUT/store"
mkdir -p "$OUT"
rm -rf "$STORE"

run_broker() { # log file; prints the pid
  "$OURS" --Broker:Tcp:Port=18832 --Broker:Tcp:Address=127.0.0.1 --Broker:Metrics:Port=0 --Broker:Metrics:Address=127.0.0.1 \
    --Broker:Persistence:Path="$STORE" --Broker:Sys:IntervalSeconds=0 > "$1" 2>&1 &
  echo $!
}

wait_listening() { # log file pid; 0 when listening
  for _ in $(seq 1 1200); do
    grep -q "MQTT listener on" "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

stop_broker() {
  kill "$1" 2>/dev/null
  for _ in $(seq 1 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null
}

# An empty store with the broker's own schema.
pid=$(run_broker "$OUT/create.log")
wait_listening "$OUT/create.log" "$pid" || { echo "broker did not start"; cat "$OUT/create.log"; exit 1; }
stop_broker "$pid"

python3 - "$STORE/broker.db" "$SESSIONS" "$RETAINED" <<'EOF'
import sqlite3, sys, time
db, sessions, retained = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
now = int(time.time() * 1000)
c = sqlite3.connect(db)
c.execute("PRAGMA journal_mode=WAL")
with c:
    c.executemany("INSERT INTO session (client_id, expiry_interval, disconnected_at) VALUES (?, 3600, ?)",
                  ((f"device-{i}", now) for i in range(sessions)))
    # options byte 0x01: QoS 1
    c.executemany("INSERT INTO subscription (client_id, filter, options, subscription_id) VALUES (?, ?, 1, NULL)",
                  ((f"device-{i}", f) for i in range(sessions) for f in (f"fleet/{i}/cmd/#", "fleet/all/config")))
    c.executemany("INSERT INTO message (id, topic, payload, qos, retain, properties, expiry_interval, received_at) VALUES (?, ?, ?, 1, 0, NULL, NULL, ?)",
                  ((m + 1, f"fleet/{m // 2}/cmd/set", bytes(64), now) for m in range(sessions * 2)))
    c.executemany("INSERT INTO session_message (client_id, sequence, message_id, qos, retain, subscription_ids, packet_id, released) VALUES (?, ?, ?, 1, 0, NULL, NULL, 0)",
                  ((f"device-{m // 2}", m % 2 + 1, m + 1) for m in range(sessions * 2)))
    c.executemany("INSERT INTO inbound_qos2 (client_id, packet_id) VALUES (?, 7)", ((f"device-{i}",) for i in range(0, sessions, 10)))
    c.executemany("INSERT INTO retained (topic, payload, qos, properties, expiry_interval, received_at) VALUES (?, ?, 1, NULL, NULL, ?)",
                  ((f"shadow/{r}/state", bytes(100), now) for r in range(retained)))
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.close()
EOF
echo "store: $SESSIONS sessions, $RETAINED retained; $(du -sh "$STORE" | cut -f1) on disk" | tee "$OUT/restart.txt"

for run in $(seq 1 "$RUNS"); do
  echo "-- run $run $(date -u +%H:%M:%S) load: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/restart.txt"
  start=$(date +%s%N)
  pid=$(run_broker "$OUT/run$run.log")
  if ! wait_listening "$OUT/run$run.log" "$pid"; then echo "run $run: broker did not start"; cat "$OUT/run$run.log"; exit 1; fi
  end=$(date +%s%N)
  rss=$(awk '/VmRSS/ {print $2 / 1024 " MiB"}' "/proc/$pid/status")
  read_ms=$(grep -o 'wills in [0-9]* ms' "$OUT/run$run.log" | grep -o '[0-9]*')
  total_ms=$(grep -o 'Restored state in use after [0-9]* ms' "$OUT/run$run.log" | grep -o '[0-9]*')
  echo "run $run: exec to listening $(( (end - start) / 1000000 )) ms; store read ${read_ms} ms, restore total ${total_ms} ms; RSS $rss" | tee -a "$OUT/restart.txt"
  grep -E '\[40\]|\[47\]' "$OUT/run$run.log" | cut -c1-400 >> "$OUT/restart.txt"
  stop_broker "$pid"
done
