#!/usr/bin/env bash
# Side-by-side `loadtest ceiling` of two or more builds on this machine: each round runs every
# build once, alternating, each on a fresh private redis-server, `vitaqueue all` and a scratch
# PostgreSQL database (the setup of scripts/bench.sh, limits as shipped), all driven by the
# same load generator, or by each build's own when its folder holds a `loadtest` (needed
# when the builds' purchase.lua differ: the raw phase runs the loadtest's copy of the
# script). Alternating matters: the machine's speed drifts between minutes more
# than one build differs from the next. Prints one line per run and the medians per build.
# Everything stays on 127.0.0.1 and is removed at exit.
#
#   ROUNDS=5 LOADTEST=target/release/loadtest ./scripts/ab_ceiling.sh OUT_DIR BIN_DIR_A BIN_DIR_B
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=$1; shift
ROUNDS=${ROUNDS:-5}
LOADTEST=${LOADTEST:-target/release/loadtest}
PURCHASES=${PURCHASES:-30000}
CONC=${CONC:-128}
REDIS_PORT=${REDIS_PORT:-6391}
HTTP_PORT=${HTTP_PORT:-18585}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
mkdir -p "$OUT"
REDIS=; SERVER=; DB=
stop() {
    [ -n "$SERVER" ] && { kill "$SERVER" 2>/dev/null; for _ in $(seq 200); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done; kill -9 "$SERVER" 2>/dev/null || true; }
    [ -n "$REDIS" ] && { kill "$REDIS" 2>/dev/null || true; }
    wait 2>/dev/null || true
    [ -n "$DB" ] && psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
    SERVER=; REDIS=; DB=
}
trap stop EXIT

for r in $(seq "$ROUNDS"); do
    for bin in "$@"; do
        name=$(basename "$bin")
        DB="vq_ab_$(date +%s)_$$"
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
            >"$OUT/redis.log" 2>&1 &
        REDIS=$!
        psql "$PG/postgres" -qc "CREATE DATABASE \"$DB\"" >/dev/null
        for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
        export VQ_REDIS__URL="redis://127.0.0.1:$REDIS_PORT" VQ_REDIS__PREFIX=vqbench \
            VQ_DATABASE__URL="$PG/$DB" VQ_HTTP__PORT="$HTTP_PORT" \
            VQ_AUTH__JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        "$bin/vitaqueue" all >"$OUT/server-$name-$r.log" 2>&1 &
        SERVER=$!
        for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
        lt=$LOADTEST; [ -x "$bin/loadtest" ] && lt=$bin/loadtest
        "$lt" ceiling --api "http://127.0.0.1:$HTTP_PORT" --purchases "$PURCHASES" \
            --concurrency "$CONC" --cpu-pids "vitaqueue=$SERVER,redis-server=$REDIS" \
            --json "$OUT/ceiling-$name-$r.json" >"$OUT/ceiling-$name-$r.txt" 2>&1
        python3 - "$OUT/ceiling-$name-$r.json" "$name" "$r" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
print(f"round {sys.argv[3]} {sys.argv[2]:<12} raw {c['raw']['purchases_per_s']:>7.0f}/s  "
      f"http {c['http']['purchases_per_s']:>7.0f}/s  p99 {c['http']['p99_ms']:6.2f} ms  "
      f"ratio {c['ratio'] * 100:5.1f} %")
PY
        stop
    done
done
python3 - "$OUT" "$ROUNDS" "$@" <<'PY'
import json, os, statistics as st, sys
out, rounds, bins = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for b in bins:
    name = os.path.basename(b)
    cs = [json.load(open(f"{out}/ceiling-{name}-{r}.json")) for r in range(1, rounds + 1)]
    print(f"median {name:<12} http {st.median(c['http']['purchases_per_s'] for c in cs):>7.0f}/s  "
          f"p99 {st.median(c['http']['p99_ms'] for c in cs):6.2f} ms  "
          f"ratio {st.median(c['ratio'] for c in cs) * 100:5.1f} %")
PY
