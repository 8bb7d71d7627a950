#!/usr/bin/env bash
# The fault matrix (docs/operations.md, section "Fault matrix") on the release build: each fault VQ_FAULTS_RUNS times (default 5) – kill -9
# of an api node (of 2), of an admission process (of 2), of a worker (of 2), kill -9 of the
# Redis primary with Sentinel failover, and a restart (pg_ctl stop -m fast / start) of a
# private PostgreSQL – each injected during the purchase burst of one drop of 100 units for
# 300 buyers, with the defaults as shipped; then the books: oversold, 201s without an order,
# duplicate orders, buyers without a final message. Exits non-zero unless every count of
# every run is 0 and every fault landed mid-burst. Loopback only; bounded by
# VQ_FAULTS_TIMEOUT (seconds, default 1800). Prints the markdown tables recorded in
# BENCHMARKS.md ("Fault matrix on the release build").
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/services.sh
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
timeout "${VQ_FAULTS_TIMEOUT:-1800}" cargo test --release -p vq-api --test api -- \
    --ignored --exact matrix::fault_matrix --nocapture --test-threads=1 >"$out" 2>&1 || status=$?
grep -E '^\|' "$out" || true
if [ "$status" -ne 0 ]; then
    grep -E 'panicked|FAILED' -A5 "$out" | head -40 >&2
    echo "[vq] fault matrix failed (exit $status)" >&2
fi
exit "$status"
