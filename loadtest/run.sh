#!/usr/bin/env bash
# Starts `mzchatd all` (release build) on a scratch directory and runs the load scenarios
# against it on loopback. SENDERS, SECONDS_PER_RUN, STREAMS, MESSAGES and JOINS size the
# scenarios. BACKEND=postgres runs the server on PostgreSQL + NATS (make services-up) in scratch
# schemas and a scratch bus prefix, removed afterwards; the default is the embedded defaults.
set -euo pipefail
# Load users send far faster than people: measure throughput with limits lifted
# (loadtest/src/ratelimit.rs measures the limiter itself).
export MZCHAT_RATE_LIMITS="${MZCHAT_RATE_LIMITS:-all=off}"
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
port="${MZCHAT_BENCH_PORT:-7690}"
data=$(mktemp -d)
home=""
flags=()
backend="SQLite, in-process bus"
if [ "${BACKEND:-embedded}" = postgres ]; then
  db="${MZCHAT_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  nats="${MZCHAT_TEST_NATS_URL:-nats://127.0.0.1:4222}"
  prefix="bench$(date +%s)"
  flags=(--database-url "$db" --database-schema-prefix "${prefix}_" --nats-url "$nats" --bus-prefix "$prefix" --migrate)
  backend="PostgreSQL + NATS"
fi
cleanup() {
  kill $server $home 2>/dev/null || true
  wait 2>/dev/null || true
  if [ -n "${prefix:-}" ]; then
    for service in identity guild federation push media; do
      psql "$db" -qc "DROP SCHEMA IF EXISTS \"${prefix}_${service}\" CASCADE" >/dev/null 2>&1 || true
    done
    "$target/release/mzchat-loadtest" drop-streams --nats-url "$nats" --bus-prefix "$prefix" >/dev/null || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT
"$target/release/mzchatd" all --insecure-dev --data-dir "$data" \
  --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1))" --assets-listen "127.0.0.1:$((port + 2))" \
  --push-allow-endpoint-hosts 127.0.0.1 "${flags[@]}" >"$data/mzchatd.log" 2>&1 &
server=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
results="${RESULTS:-$data/results.jsonl}"
load="$target/release/mzchat-loadtest --server http://127.0.0.1:$port --json $results --server-pid $server"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; mzchatd all on $backend"
sleep 2
# Resident memory of the idle server, after start-up (the target is below 50 MiB).
idle_kib=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
echo "idle: $((idle_kib / 1024)) MiB resident"
echo "{\"scenario\":\"idle\",\"label\":\"idle after start ($backend)\",\"server\":{\"peak_rss_mib\":$((idle_kib / 1024))}}" >>"$results"
$load --label "send, ${SENDERS:-50} senders ($backend)" send --senders "${SENDERS:-50}" --seconds "${SECONDS_PER_RUN:-10}"
$load --label "fanout to ${STREAMS:-1000} streams ($backend)" fanout --streams "${STREAMS:-1000}" --messages "${MESSAGES:-20}"
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

# Federated joins: users homed on the second server join a guild here while it is stopped.
$load --label "federated join, home server down, ${JOINS:-300} users ($backend)" join --home "http://127.0.0.1:$home_port" --home-pid "$home" --users "${JOINS:-300}"
