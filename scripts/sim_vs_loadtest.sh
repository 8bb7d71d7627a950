#!/usr/bin/env bash
# Simulator vs loadtest: for three small drop settings (plus one of them with the overbook
# cap lifted, for tokens per unit before/after the cap), `vitaqueue simulate --json` predicts
# sell-out time, median wait, tokens per unit and buyers served, and `loadtest drop` measures
# them on a real server (`vitaqueue all` started here), SEEDS times per setting (default 5).
# Seed s is given to both (`--seed s`): the same admissions abandon in the model and in the
# real drop (common random numbers), so the difference measures the model, not two draws
# of who walks away. Prints one Markdown row per run, then per setting the mean sell-out of
# each, the mean |Δ| over the paired runs and the ETA range's coverage (`eta_coverage`,
# the share of buyers admitted inside the [eta_s, eta_hi_s] range their first position
# after the start showed). Exits 1 when a setting's mean |Δ| of sell-out exceeds MAX_DELTA
# (default 0.15) or a run fails its invariants. Bounded: 4 × SEEDS drops of at most 1500
# buyers, about ten minutes at SEEDS=5.
#
# The server is NOT told the abandon share: the drop's expected_abandon stays unset, so the
# ETA forecast has to learn it from the drop's own tokens. PRIOR=set passes the true share
# as --expected-abandon (handing the model the answer; for comparison only).
#
# Knobs: PROFILE (release | debug, default release), VQ_HTTP__PORT (8080), SEEDS (5),
# MAX_DELTA (0.15), PRIOR (none | set, default none), SIMVS_PREFIX (Redis key prefix stem),
# SIMVS_DB (database name), ONLY (run only the settings whose name matches this regex).
# Uses the Redis and PostgreSQL of scripts/services.sh under a fresh key prefix.
# Files: .vq/simvs-*.
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
SEEDS=${SEEDS:-5}
RUNS=.vq/simvs-runs.jsonl
: >"$RUNS"
status=0
for s in "${SETTINGS[@]}"; do
    read -r name buyers stock rate ttl abandon fail overbook <<<"$s"
    [[ $name =~ ${ONLY:-.} ]] || continue
    prior=()
    [ "${PRIOR:-none}" != set ] || prior=(--expected-abandon "$abandon")
    for seed in $(seq "$SEEDS"); do
        "$BIN/vitaqueue" simulate --buyers "$buyers" --stock "$stock" --rate "$rate" \
            --token-ttl "$ttl" --abandon "$abandon" --fail "$fail" --overbook "$overbook" \
            --seed "$seed" --json >".vq/simvs-$name-$seed-sim.json"
        if ! "$BIN/loadtest" drop --api "http://127.0.0.1:$PORT" --buyers "$buyers" \
            --stock "$stock" --rate "$rate" --token-ttl "$ttl" --abandon "$abandon" \
            --fail "$fail" --overbook "$overbook" --max-holders 100000 --timeout-s 60 \
            --seed "$seed" "${prior[@]}" --json ".vq/simvs-$name-$seed-run.json" \
            >".vq/simvs-$name-$seed-run.log" 2>&1; then
            echo "[simvs] $name seed $seed: loadtest reported failures (see .vq/simvs-$name-$seed-run.log)" >&2
            status=1
        fi
        python3 scripts/sim_vs_loadtest.py row "$name" "$seed" "$buyers" \
            ".vq/simvs-$name-$seed-sim.json" ".vq/simvs-$name-$seed-run.json" >>"$RUNS"
    done
done
python3 scripts/sim_vs_loadtest.py table "$RUNS" "${MAX_DELTA:-0.15}" || status=1
exit "$status"
