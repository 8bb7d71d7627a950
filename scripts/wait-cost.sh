#!/usr/bin/env bash
# Purchase latency with and without `WAIT` for a replica (BENCHMARKS.md, section "The cost of
# WAIT"). Starts a private Redis primary and one replica on free loopback ports (temp dirs, no
# persistence), runs `loadtest wait-cost` against the primary (the whole server runs
# in-process, once per round, on a scratch database), and removes both Redis servers.
#
# Usage: ./scripts/wait-cost.sh [loadtest wait-cost args, e.g. --purchases 5000 --rounds 3]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(free_port); R=$(free_port)
DIR=$(mktemp -d /tmp/vq-wait-cost.XXXXXX)
cleanup() {
  redis-cli -p "$P" shutdown nosave >/dev/null 2>&1 || true
  redis-cli -p "$R" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
mkdir -p "$DIR/p" "$DIR/r"
redis-server --port "$P" --bind 127.0.0.1 --dir "$DIR/p" --save '' --daemonize yes --logfile "$DIR/p.log"
redis-server --port "$R" --bind 127.0.0.1 --dir "$DIR/r" --save '' --daemonize yes --logfile "$DIR/r.log" \
  --replicaof 127.0.0.1 "$P"
for _ in $(seq 100); do
  redis-cli -p "$R" info replication 2>/dev/null | grep -q 'master_link_status:up' && break
  sleep 0.1
done
cargo build --release -p loadtest
VQ_REDIS__URL="redis://127.0.0.1:$P" VQ_REDIS__WAIT_TIMEOUT=100ms \
  "${CARGO_TARGET_DIR:-target}/release/loadtest" wait-cost "$@"
