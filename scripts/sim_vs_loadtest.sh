#!/usr/bin/env bash
# Simulator vs loadtest: for three small drop settings (plus one of them with the overbook
# cap lifted, for tokens per unit before/after the cap), `vitaqueue simulate --json` predicts
# sell-out time, median wait, tokens per unit and buyers served, and `loadtest drop` measures
# them on a real server (`vitaqueue all` started here); prints a Markdown table with the
# relative difference (the target is within 10 % on sell-out and p50 wait) and the ETA error
# loadtest measured. Bounded: four drops of at most 1500 buyers, about two minutes in all.
#
# The drop's expected_abandon (the ETA forecast's prior) is the setting's abandon share, as
# the simulator is given it too; PRIOR=none leaves it unset (server default 0) to show what
# a wrong prior costs.
#
# Knobs: PROFILE (release | debug, default release), VQ_HTTP__PORT (8080), PRIOR (set |
# none, default set), SIMVS_PREFIX (Redis key prefix stem), SIMVS_DB (database name). Uses the Redis
# and PostgreSQL of scripts/services.sh under a fresh key prefix. Files: .vq/simvs-*.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/services.sh

PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then
    cargo build --release -p vitaqueue -p loadtest
else
    cargo build -p vitaqueue -p loadtest
fi
BIN=${CARGO_TARGET_DIR:-target}/$PROFILE
PORT=${VQ_HTTP__PORT:-8080}
export VQ_HTTP__HOST=127.0.0.1 VQ_HTTP__PORT="$PORT" VQ_HTTP__MAX_CONNECTIONS_PER_IP=0
VQ_AUTH__JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export VQ_AUTH__JWT_SECRET
export VQ_REDIS__PREFIX="${SIMVS_PREFIX:-simvs}-$(date +%s)"
# SIMVS_DB: a database of its own (created if missing), e.g. for a branch whose migrations
# the shared `vitaqueue` database must not see.
if [ -n "${SIMVS_DB:-}" ]; then
    psql "${VQ_DATABASE__URL%/*}/postgres" -qtc "CREATE DATABASE \"$SIMVS_DB\"" 2>/dev/null || true
    export VQ_DATABASE__URL="${VQ_DATABASE__URL%/*}/$SIMVS_DB"
fi
mkdir -p .vq
"$BIN/vitaqueue" all >.vq/simvs-server.log 2>&1 &
SERVER_PID=$!
trap 'kill -TERM $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 150); do
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break
    sleep 0.2
done

# name buyers stock rate ttl abandon fail overbook
SETTINGS=(
    "clean 1000 200 100 5 0 0 1.5"
    "abandon30 1500 300 150 5 0.3 0 1.5"
    "abandon30-nocap 1500 300 150 5 0.3 0 100"
    "tight-cap 1000 200 200 5 0.2 0 1.0"
)
echo "| setting | sell-out sim / measured (s) | Δ | p50 wait sim / measured (s) | Δ | tokens per unit sim / measured | served sim / measured | ETA error p50 / p95 | later than eta_hi_s |"
echo "|---|---|---|---|---|---|---|---|---|"
for s in "${SETTINGS[@]}"; do
    read -r name buyers stock rate ttl abandon fail overbook <<<"$s"
    prior=()
    [ "${PRIOR:-set}" = none ] || prior=(--expected-abandon "$abandon")
    "$BIN/vitaqueue" simulate --buyers "$buyers" --stock "$stock" --rate "$rate" \
        --token-ttl "$ttl" --abandon "$abandon" --fail "$fail" --overbook "$overbook" \
        --json >".vq/simvs-$name-sim.json"
    "$BIN/loadtest" drop --api "http://127.0.0.1:$PORT" --buyers "$buyers" --stock "$stock" \
        --rate "$rate" --token-ttl "$ttl" --abandon "$abandon" --fail "$fail" \
        --overbook "$overbook" --max-holders 100000 --timeout-s 60 "${prior[@]}" \
        --json ".vq/simvs-$name-run.json" >".vq/simvs-$name-run.log" 2>&1 ||
        echo "[simvs] $name: loadtest reported failures (see .vq/simvs-$name-run.log)" >&2
    python3 - "$name" ".vq/simvs-$name-sim.json" ".vq/simvs-$name-run.json" "$buyers" <<'PY'
import json, sys
name, sim, run, buyers = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3])), int(sys.argv[4])
f = run["fairness"]; r = f["report"]
def d(a, b): return "n/a" if not a or b is None else f"{(b - a) / a * 100:+.1f} %"
so, p50 = r.get("sell_out_s"), f["wait_p50_s"]
served = run["outcomes"].get("bought", 0) / buyers
print(f"| {name} | {sim['sell_out_s']} / {so} | {d(sim['sell_out_s'], so)} | {sim['wait_p50_s']} / {p50:.3f} | "
      f"{d(sim['wait_p50_s'], p50)} | {sim['tokens_per_unit']} / {r.get('tokens_per_unit')} | "
      f"{sim['served_share']:.3f} / {served:.3f} | {f['eta']['median']*100:.1f} % / {f['eta']['p95']*100:.1f} % | "
      f"{f['eta']['later_than_hi']*100:.1f} % |")
PY
done
