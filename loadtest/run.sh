#!/usr/bin/env bash
# Starts `mzchatd all` (release build) on a scratch directory and runs the load scenarios
# against it on loopback. SENDERS, SECONDS_PER_RUN, STREAMS and MESSAGES size the scenarios;
# MZCHATD_FLAGS adds server flags (e.g. --database-url ... --nats-url ... --migrate).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
port="${MZCHAT_BENCH_PORT:-7690}"
data=$(mktemp -d)
home=""
trap 'kill $server $home 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"' EXIT
"$target/release/mzchatd" all --insecure-dev --data-dir "$data" \
  --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1))" --assets-listen "127.0.0.1:$((port + 2))" \
  --push-allow-endpoint-hosts 127.0.0.1 ${MZCHATD_FLAGS:-} >"$data/mzchatd.log" 2>&1 &
server=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
results="${RESULTS:-$data/results.jsonl}"
load="$target/release/mzchat-loadtest --server http://127.0.0.1:$port --json $results --server-pid $server"
backend="SQLite, in-process bus"
[ -n "${MZCHATD_FLAGS:-}" ] && backend="$MZCHATD_FLAGS"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; mzchatd all ${MZCHATD_FLAGS:-(embedded: SQLite, in-process bus)}"
$load --label "send, ${SENDERS:-50} senders ($backend)" send --senders "${SENDERS:-50}" --seconds "${SECONDS_PER_RUN:-10}"
$load --label "fanout to ${STREAMS:-100} streams ($backend)" fanout --streams "${STREAMS:-100}" --messages "${MESSAGES:-20}"
$load --label "push, ${PUSH_MEMBERS:-50} members x ${PUSH_MESSAGES:-20} mentions ($backend)" push --members "${PUSH_MEMBERS:-50}" --messages "${PUSH_MESSAGES:-20}"

# Relayed pushes: the members' home is a second homeserver (embedded), so each push goes
# guild server -> home server -> distributor.
home_port=$((port + 10))
"$target/release/mzchatd" all --insecure-dev --data-dir "$data/home" \
  --listen "127.0.0.1:$home_port" --admin-listen "127.0.0.1:$((home_port + 1))" --assets-listen "127.0.0.1:$((home_port + 2))" \
  --push-allow-endpoint-hosts 127.0.0.1 >"$data/home.log" 2>&1 &
home=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$home_port") 2>/dev/null && break
  sleep 0.1
done
echo "relayed through a second homeserver (embedded):"
$load --label "push relayed B -> A -> distributor, ${RELAY_MEMBERS:-20} members" push --home "http://127.0.0.1:$home_port" --members "${RELAY_MEMBERS:-20}" --messages "${PUSH_MESSAGES:-20}"
