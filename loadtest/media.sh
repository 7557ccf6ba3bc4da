#!/usr/bin/env bash
# Upload and download throughput, one client and ten at once, on the disk store and on the S3
# store (SeaweedFS on 127.0.0.1:8333, see deploy/dev/services.sh), and the server's peak
# memory as uploads grow from 10 to 200 MiB (it must not grow with the file size).
set -euo pipefail
# Load users send far faster than people: measure throughput with limits lifted
# (loadtest/src/ratelimit.rs measures the limiter itself).
export MZCHAT_RATE_LIMITS="${MZCHAT_RATE_LIMITS:-all=off}"
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
port="${MZCHAT_BENCH_PORT:-7890}"
data=$(mktemp -d)
server=""
trap 'kill $server 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"' EXIT
peak() { awk '/VmHWM/ {printf "%.0f MiB", $2 / 1024}' "/proc/$server/status"; }
run() {
  local name=$1; shift
  "$target/release/mzchatd" all --insecure-dev --data-dir "$data/$name" \
    --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1))" --assets-listen "127.0.0.1:$((port + 2))" \
    --user-quota-bytes 10000000000 "$@" >"$data/$name.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  local load="$target/release/mzchat-loadtest --server http://127.0.0.1:$port --json ${RESULTS:-$data/results.jsonl} --server-pid $server"
  echo "$name: started, peak RSS $(peak)"
  for mib in 10 50 100; do
    $load --label "media on $name, 1 client x $mib MiB" media --clients 1 --mib "$mib"
    echo "  after one $mib MiB upload and download: peak RSS $(peak)"
  done
  $load --label "media on $name, 10 clients x 10 MiB" media --clients 10 --mib 10
  echo "  after ten clients x 10 MiB: peak RSS $(peak)"
  kill "$server"; wait "$server" 2>/dev/null || true
}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; mzchatd all, release build"
run disk
run s3 --media-store s3 --s3-endpoint "http://127.0.0.1:${MZCHAT_TEST_S3_PORT:-8333}" \
  --s3-bucket mzchat-bench --s3-access-key-id bench --s3-secret-access-key bench --s3-path-style
