#!/usr/bin/env bash
# The server's resident memory under a login flood (docs/operations.md, section "Memory under
# a login flood"): builds the release binaries, starts a private redis-server and
# `vitaqueue all` (mimalloc, as shipped, every limit as shipped) on a scratch database, then
# runs `loadtest logins` (300 concurrent logins, 3 rounds, from 32 loopback addresses) and
# exits with its status: non-zero when the peak RSS grew past the bound or a 5xx other
# than 503 busy came back.
#
#   ./scripts/login_rss.sh                 # CONC=300 ROUNDS=3 MAX_GROWTH_MB=200
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CONC=${CONC:-300}
ROUNDS=${ROUNDS:-3}
MAX_GROWTH_MB=${MAX_GROWTH_MB:-200}
REDIS_PORT=${REDIS_PORT:-6396}
HTTP_PORT=${HTTP_PORT:-18586}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
OUT=${OUT:-target/bench}
BIN=${BIN:-}
if [ -z "$BIN" ]; then
    cargo build --release -p loadtest -p vitaqueue --bins
    BIN=target/release
fi
mkdir -p "$OUT"
DB="vq_bench_logins_$(date +%s)_$$"
pids=()
cleanup() {
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill "${pids[i]}" 2>/dev/null || continue
        for _ in $(seq 100); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.1; done
        kill -9 "${pids[i]}" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    >"$OUT/logins-redis.log" 2>&1 &
pids+=("$!")
psql "$PG/postgres" -qc "CREATE DATABASE \"$DB\"" >/dev/null
key() { head -c 32 /dev/urandom | base64; }
export VQ_REDIS__URL="redis://127.0.0.1:$REDIS_PORT" VQ_REDIS__PREFIX=vqlogins
export VQ_DATABASE__URL="$PG/$DB" VQ_HTTP__PORT="$HTTP_PORT"
export VQ_AUTH__JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export VQ_AUTH__PII_KEY="$(key)" VQ_AUTH__EMAIL_HASH_KEY="$(key)"
"$BIN/vitaqueue" all >"$OUT/logins-server.log" 2>&1 &
SERVER=$!
pids+=("$SERVER")
API="http://127.0.0.1:$HTTP_PORT"
for _ in $(seq 200); do
    curl -sf "$API/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
"$BIN/loadtest" logins --api "$API" --server-pid "$SERVER" --concurrency "$CONC" \
    --rounds "$ROUNDS" --max-growth-mb "$MAX_GROWTH_MB" --sources 32 --source-block 9 \
    --json "$OUT/logins.json"
