#!/usr/bin/env bash
# Attack probes of issue #11 (docs/security.md, "Hardening: results"), one at a time, each against a fresh broker.
#   tests/Attack/run.sh [ATTACK...]     default: every attack; names: fd-exhaustion deep-topics
#                                       deep-topics-no-level-limit retained-amplification stalled-readers
#                                       partial-publish partial-connect connect-churn log-forging log-forging-refused
# Publishes the broker (Release) to tests/Attack/out/broker, then for each attack waits until the 1-minute load
# average is below $MAX_LOAD (default 4; the machine is shared) and runs it under a 5-minute timeout. Results:
# stderr (figures), stdout (one Markdown row each), tests/Attack/out/results.jsonl. Exit 1 if any target is missed.
set -euo pipefail
cd "$(dirname "$0")"
repo=$(cd ../.. && pwd)
max_load=${MAX_LOAD:-4}
attacks=("$@")
if [ ${#attacks[@]} -eq 0 ]; then
  attacks=(fd-exhaustion deep-topics deep-topics-no-level-limit retained-amplification stalled-readers
           partial-publish partial-connect connect-churn log-forging log-forging-refused)
fi

mkdir -p out
dotnet publish -c Release "$repo/src/Broker" -o out/broker --nologo -v quiet >&2
dotnet build -c Release Attack.csproj -o out/attack --nologo -v quiet >&2
# The probe itself holds 1,100+ sockets in the fd attack.
ulimit -n 8192 2>/dev/null || true

status=0
for attack in "${attacks[@]}"; do
  for _ in $(seq 1 60); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    if awk -v l="$load" -v m="$max_load" 'BEGIN { exit !(l < m) }'; then break; fi
    echo "load average $load >= $max_load: waiting before $attack" >&2
    sleep 30
  done
  echo "load average before $attack: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  # The probe kills its broker itself; the timeout (TERM, then KILL) bounds the probe, and the broker whose pid the
  # probe wrote to out/broker.pid is killed after it in case the probe died first.
  rm -f out/broker.pid
  ATTACK_PIDFILE="$PWD/out/broker.pid" timeout -k 10 300 dotnet out/attack/Attack.dll --broker "$PWD/out/broker/Broker.dll" \
    --appsettings "$repo/appsettings.json" --attack "$attack" --results out/results.jsonl || status=1
  if [ -s out/broker.pid ] && kill -0 "$(cat out/broker.pid)" 2>/dev/null; then
    echo "killing the broker left behind by $attack" >&2
    kill -9 "$(cat out/broker.pid)" || true
  fi
done
exit $status
