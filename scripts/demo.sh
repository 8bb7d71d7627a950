#!/usr/bin/env bash
# End-to-end demo drop: builds the release binaries, starts `vitaqueue all` (api + admission +
# worker in one process) on 127.0.0.1:${VQ_HTTP__PORT:-8080}, then runs the load generator
# against it and exits with the load generator's status (non-zero if an invariant failed).
#
# Knobs (environment): BUYERS (2000), STOCK (100), RATE (500 admissions/s), TTL (30 s token
# lifetime), VQ_HTTP__PORT (8080). Extra arguments are passed to `loadtest drop`.
# Server log: .vq/demo-server.log
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/services.sh

if ! command -v curl >/dev/null 2>&1; then
    vq_apt_install curl
fi

echo "[vq] building release binaries" >&2
cargo build --release -p vitaqueue -p loadtest

PORT=${VQ_HTTP__PORT:-8080}
export VQ_HTTP__HOST=127.0.0.1
# Every simulated buyer connects from loopback: no per-address connection cap.
export VQ_HTTP__MAX_CONNECTIONS_PER_IP=0
export VQ_HTTP__PORT="$PORT"
# A fresh secret and key namespace per run, so demos never see each other's state.
VQ_AUTH__JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export VQ_AUTH__JWT_SECRET
export VQ_REDIS__PREFIX="demo-$(date +%s)"

BASE="http://127.0.0.1:$PORT"
if curl -fsS -o /dev/null --max-time 2 "$BASE/healthz" 2>/dev/null; then
    echo "[vq] ERROR: something already answers on $BASE; stop it or set VQ_HTTP__PORT" >&2
    exit 1
fi

mkdir -p .vq
LOG=.vq/demo-server.log
SERVER_PID=""

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        local i
        for ((i = 0; i < 100; i++)); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "[vq] server did not stop within 10 s; killing it" >&2
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "[vq] starting vitaqueue all on $BASE (prefix $VQ_REDIS__PREFIX, log $LOG)" >&2
target/release/vitaqueue all >"$LOG" 2>&1 &
SERVER_PID=$!

ready=0
deadline=$((SECONDS + 30))
while [ "$SECONDS" -lt "$deadline" ]; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$BASE/healthz" 2>/dev/null || true)
    if [ "$code" = 200 ]; then
        ready=1
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        break
    fi
    sleep 0.2
done
if [ "$ready" != 1 ]; then
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "[vq] ERROR: server did not become healthy within 30 s; last log lines:" >&2
    else
        echo "[vq] ERROR: server exited during start-up; last log lines:" >&2
    fi
    tail -n 30 "$LOG" >&2 || true
    exit 1
fi
echo "[vq] server is up; running the drop" >&2

set +e
target/release/loadtest drop --api "$BASE" \
    --buyers "${BUYERS:-2000}" --stock "${STOCK:-100}" --rate "${RATE:-500}" \
    --token-ttl "${TTL:-30}" --server-pid "$SERVER_PID" --json .vq/demo-summary.json "$@"
rc=$?
set -e

if [ "$rc" = 0 ]; then
    echo "[vq] demo finished OK" >&2
else
    echo "[vq] loadtest exited with status $rc (server log: $LOG)" >&2
fi
exit "$rc"
