#!/usr/bin/env bash
# VerifyUser throughput of federation-sync with one replica, then two, against a stand-in peer
# that answers after LATENCY_MS (50). Needs PostgreSQL and NATS (make services-up); uses its own
# schemas and bus prefix and removes them afterwards. JOBS (2000) sizes each run; CONCURRENCY
# (16) caps calls in flight per replica, so the figures show what a second replica adds.
set -euo pipefail
# Load users send far faster than people: measure throughput with limits lifted
# (loadtest/src/ratelimit.rs measures the limiter itself).
export MZCHAT_RATE_LIMITS="${MZCHAT_RATE_LIMITS:-all=off}"
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
db="${MZCHAT_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
nats="${MZCHAT_TEST_NATS_URL:-nats://127.0.0.1:4222}"
prefix="benchfed$(date +%s)"
port="${MZCHAT_BENCH_PORT:-7790}"
data=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  for service in identity guild federation; do
    psql "$db" -qc "DROP SCHEMA IF EXISTS \"${prefix}_${service}\" CASCADE" >/dev/null 2>&1 || true
  done
  "$target/release/mzchat-loadtest" drop-streams --nats-url "$nats" --bus-prefix "$prefix" || true
  rm -rf "$data"
}
trap cleanup EXIT
common=(--insecure-dev --database-url "$db" --database-schema-prefix "${prefix}_" --nats-url "$nats"
  --bus-prefix "$prefix" --internal-token "$prefix-internal" --federation-concurrency "${CONCURRENCY:-16}")
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; }
"$target/release/mzchatd" all "${common[@]}" --migrate --data-dir "$data/all" \
  --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1))" --assets-listen "127.0.0.1:$((port + 2))" \
  >"$data/all.log" 2>&1 &
pids+=($!)
wait_port "$port"
sleep 1
load="$target/release/mzchat-loadtest --server http://127.0.0.1:$port --json ${RESULTS:-$data/results.jsonl}"
verify="verify --nats-url $nats --bus-prefix $prefix --jobs ${JOBS:-2000} --latency-ms ${LATENCY_MS:-50}"
echo "machine: $(nproc) cores; mzchatd all on PostgreSQL + NATS, federation concurrency ${CONCURRENCY:-16} per replica"
echo "one federation-sync replica:"
$load --label "VerifyUser jobs, one federation-sync replica (${CONCURRENCY:-16} calls each)" $verify
"$target/release/mzchatd" federation-sync "${common[@]}" --data-dir "$data/sync" \
  --origin "http://127.0.0.1:$port" --identity-internal-url "http://127.0.0.1:$port" \
  --listen "127.0.0.1:$((port + 3))" --admin-listen "127.0.0.1:$((port + 4))" \
  >"$data/sync.log" 2>&1 &
pids+=($!)
wait_port "$((port + 3))"
sleep 1
echo "two federation-sync replicas:"
$load --label "VerifyUser jobs, two federation-sync replicas (${CONCURRENCY:-16} calls each)" $verify
