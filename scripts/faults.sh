#!/usr/bin/env bash
# The fault matrix (docs/operations.md, section "Fault matrix"): for each fault – kill -9 of an
# api node (of 2), of an admission process (of 2), of a worker (of 2), kill -9 of the Redis
# primary with Sentinel failover, and a restart (pg_ctl stop -m fast / start) of a private
# PostgreSQL – one drop of 100 units for 300 buyers, then the books: oversold, 201s without an
# order, duplicate orders, buyers without a final message. All must be 0. Loopback only;
# bounded by VQ_FAULTS_TIMEOUT (seconds, default 1200). Prints the markdown table recorded in
# BENCHMARKS.md, section "Fault matrix".
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/services.sh
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
timeout "${VQ_FAULTS_TIMEOUT:-1200}" cargo test -p vq-api --test api -- \
    --ignored --exact matrix::fault_matrix --nocapture --test-threads=1 >"$out" 2>&1 || status=$?
grep -E '^\|' "$out" || true
if [ "$status" -ne 0 ]; then
    grep -E 'panicked|FAILED' -A5 "$out" | head -40 >&2
    echo "[vq] fault matrix failed (exit $status)" >&2
fi
exit "$status"
