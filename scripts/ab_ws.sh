#!/usr/bin/env bash
# Side-by-side 19k-socket drops of two or more builds on this machine: each round runs
# `WS=$WS RUNS=0 BIN=<build> ./scripts/bench.sh` once per build, alternating (the machine's
# speed drifts between minutes more than one build differs from the next), so each run has
# bench.sh's own setup: a private redis-server, `vitaqueue all` on a scratch database, the
# shipped limits, 160 source addresses, purchase on the room socket. Every build is driven
# by the same load generator (LOADTEST), or by its own when its folder holds a `loadtest`.
# Prints one line per run and the medians per build. Everything stays on 127.0.0.1.
#
#   ROUNDS=5 WS=19000 ./scripts/ab_ws.sh OUT_DIR BIN_DIR_A BIN_DIR_B
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=$1; shift
ROUNDS=${ROUNDS:-5}
WS=${WS:-19000}
LOADTEST=${LOADTEST:-target/release/loadtest}
mkdir -p "$OUT"

for r in $(seq "$ROUNDS"); do
    for bin in "$@"; do
        name=$(basename "$bin")
        run=$OUT/run-$name-$r
        mkdir -p "$run"
        dir=$bin
        if [ ! -x "$bin/loadtest" ]; then
            dir=$run/bin; mkdir -p "$dir"
            ln -sf "$(realpath "$bin/vitaqueue")" "$dir/vitaqueue"
            ln -sf "$(realpath "$LOADTEST")" "$dir/loadtest"
        fi
        if ! WS=$WS RUNS=0 BIN=$dir OUT=$run ./scripts/bench.sh >"$run/out.txt" 2>&1; then
            echo "round $r $name: bench.sh failed, see $run/out.txt"; exit 1
        fi
        python3 - "$run/ws.json" "$name" "$r" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
cpu = (s.get("cpu") or {}).get("server_us_per_buyer") or 0
first = (s.get("fairness") or {}).get("first_place_p99_ms") or 0
print(f"round {sys.argv[3]} {sys.argv[2]:<10} buy p50 {s['purchase_p50_ms']:6.1f} p99 {s['purchase_p99_ms']:7.1f} ms  "
      f"push p99 {s['position_push_p99_ms']:6.0f} ms  first place p99 {first:5.0f} ms  join p99 {s['join_p99_ms']:4.0f} ms  "
      f"{cpu:4.0f} µs/buyer  RSS {s['server_rss_mb']:5.1f} MB  {s['outcomes']}  "
      f"{'all hold' if not s['failures'] else '; '.join(s['failures'])}")
PY
    done
done
python3 - "$OUT" "$ROUNDS" "$@" <<'PY'
import json, os, statistics as st, sys
out, rounds, bins = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for b in bins:
    name = os.path.basename(b)
    ss = [json.load(open(f"{out}/run-{name}-{r}/ws.json")) for r in range(1, rounds + 1)]
    med = lambda k: st.median(s[k] for s in ss)
    cpu = st.median((s.get("cpu") or {}).get("server_us_per_buyer") or 0 for s in ss)
    first = st.median((s.get("fairness") or {}).get("first_place_p99_ms") or 0 for s in ss)
    print(f"median {name:<10} buy p50 {med('purchase_p50_ms'):6.1f} p99 {med('purchase_p99_ms'):7.1f} ms  "
          f"push p99 {med('position_push_p99_ms'):6.0f} ms  first place p99 {first:5.0f} ms  {cpu:4.0f} µs/buyer  "
          f"p99s {sorted(round(s['purchase_p99_ms']) for s in ss)}")
PY
