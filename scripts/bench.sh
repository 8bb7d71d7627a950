#!/usr/bin/env bash
# Reproduces the figures in BENCHMARKS.md: builds the release binaries, starts a private
# redis-server (no persistence, like the shared one) and `vitaqueue all` on a scratch
# PostgreSQL database, then runs `loadtest strategies` and `loadtest ceiling` RUNS times
# against it and prints the medians. Everything stays on 127.0.0.1 and is removed at exit.
#
#   RUNS=3 STOCK=10000 BUYERS=20000 CONC=128 PURCHASES=30000 ./scripts/bench.sh
#   PERF=1 ./scripts/bench.sh     # also records a perf profile of the server (root only)
#   WS=19000 RUNS=0 ./scripts/bench.sh   # 19k WebSockets on one api process, buying on
#                                         # the socket (WS_BUY=http: over HTTP)
#   WS=19000 WS_HERD=1 RUNS=0 ./scripts/bench.sh   # join herd: all connect within 1 s of the
#                                                   # start, read against raw join.lua EVALSHA
#   WS=19000 WS_NODES=3 RUNS=0 ./scripts/bench.sh   # 3 api processes × 19k, 3 generators
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-3}
STOCK=${STOCK:-10000}
BUYERS=${BUYERS:-20000}
CONC=${CONC:-128}
PURCHASES=${PURCHASES:-30000}
OUT=${OUT:-target/bench}
REDIS_PORT=${REDIS_PORT:-6391}
HTTP_PORT=${HTTP_PORT:-18585}
PG=${PG:-postgres://postgres@127.0.0.1:5432}

# BIN=dir runs binaries built elsewhere (A/B of two builds), without building.
BIN=${BIN:-}
if [ -z "$BIN" ]; then
    cargo build --release -p loadtest -p vitaqueue --bins
    BIN=target/release
fi
mkdir -p "$OUT"
DB="vq_bench_$(date +%s)_$$"
pids=()
cleanup() {
    # Server first (and waited for, up to 20 s), then Redis: a server whose Redis vanished
    # mid-shutdown can hang in reconnect back-off.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill "${pids[i]}" 2>/dev/null || continue
        for _ in $(seq 200); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.1; done
        kill -9 "${pids[i]}" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    >"$OUT/redis.log" 2>&1 &
REDIS=$!
pids+=("$REDIS")
psql "$PG/postgres" -qc "CREATE DATABASE \"$DB\"" >/dev/null

export VQ_REDIS__URL="redis://127.0.0.1:$REDIS_PORT"
export VQ_REDIS__PREFIX=vqbench
export VQ_DATABASE__URL="$PG/$DB"
export VQ_AUTH__JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export VQ_HTTP__PORT="$HTTP_PORT"
# Protection stays as shipped: the simulated crowd spreads over many loopback source
# addresses (127.0.B.x, see `--sources`), each with its own per-address budget. Anything the
# caller relaxed through the environment is printed, never applied silently.
relaxed=$(env | grep -E '^VQ_(LIMITS__|HTTP__MAX_CONNECTIONS_PER_IP)' || true)
if [ -n "$relaxed" ]; then
    echo "NOTE: protection changed from the shipped defaults by the environment:"
    echo "$relaxed" | sed 's/^/  /'
else
    echo "rate limits and per-address connection cap: as shipped (no VQ_LIMITS__*, no VQ_HTTP__MAX_CONNECTIONS_PER_IP)"
fi
API="http://127.0.0.1:$HTTP_PORT"

"$BIN/vitaqueue" all >"$OUT/server.log" 2>&1 &
SERVER=$!
pids+=("$SERVER")
# Only our server and Redis count under their names; same-named processes of others on a
# shared machine show up as "other".
PINS="vitaqueue=$SERVER,redis-server=$REDIS"
for _ in $(seq 100); do
    curl -sf "$API/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

if [ "${PERF:-0}" = 1 ]; then
    # Profile the server during one ceiling run (HTTP phase included).
    perf record -F 499 -g -p "$SERVER" -o "$OUT/server.perf" >/dev/null 2>&1 &
    PERFPID=$!
    "$BIN/loadtest" ceiling --api "$API" --purchases "$PURCHASES" \
        --concurrency "$CONC" --cpu-pids "$PINS" | tee "$OUT/ceiling-perf.txt"
    kill -INT "$PERFPID"; wait "$PERFPID" || true
    perf report -i "$OUT/server.perf" --no-children --stdio -g none --percent-limit 0.7 \
        2>/dev/null | grep -v '^$' | head -90 >"$OUT/server-perf.txt" || true
    echo "server profile: $OUT/server-perf.txt"
fi

for i in $(seq "$RUNS"); do
    echo "== run $i/$RUNS ($(cut -d' ' -f1-3 /proc/loadavg) load) =="
    "$BIN/loadtest" strategies --api "$API" --stock "$STOCK" --buyers "$BUYERS" \
        --concurrency "$CONC" --cpu-pids "$PINS" --json "$OUT/strategies-$i.json"
    "$BIN/loadtest" ceiling --api "$API" --purchases "$PURCHASES" \
        --concurrency "$CONC" --cpu-pids "$PINS" --json "$OUT/ceiling-$i.json"
done

if [ "${WS:-0}" -gt 0 ]; then
    # WebSocket crowd: WS sockets per api process, positions pushed on every tick while
    # admission walks through the queue (see `loadtest drop --help`). WS_NODES=N runs N api
    # processes (the first is `vitaqueue all`, the others `vitaqueue api` on the next ports),
    # each with its own drop and its own load generator process, all at once.
    ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
    nodes=(); ports=()
    for ((i = 1; i <= ${WS_NODES:-1}; i++)); do
        if [ "$i" = 1 ]; then nodes+=("$SERVER"); ports+=("$HTTP_PORT"); continue; fi
        port=$((HTTP_PORT + i - 1))
        VQ_HTTP__PORT=$port "$BIN/vitaqueue" api >"$OUT/server-$i.log" 2>&1 &
        nodes+=("$!"); ports+=("$port"); pids+=("$!")
        for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    done
    if [ "${WS_HERD:-0}" = 1 ]; then
        WS_RAMP=${WS_RAMP:-1}; WS_START_IN=${WS_START_IN:-0}
        "$BIN/loadtest" join-ceiling --api "$API" --raw-only --joins "$WS" \
            --cpu-pids "$PINS" --json "$OUT/join-raw.json" >"$OUT/join-raw.txt"
    fi
    gens=()
    for ((i = 1; i <= ${#nodes[@]}; i++)); do
        "$BIN/loadtest" drop --api "http://127.0.0.1:${ports[i-1]}" --buyers "$WS" \
            --stock "${WS_STOCK:-6000}" --rate "${WS_RATE:-1500}" --max-holders 20000 \
            --token-ttl 60 --sources 160 --ramp-s "${WS_RAMP:-10}" \
            ${WS_START_IN:+--start-in "$WS_START_IN"} --timeout-s 300 \
            --server-pid "${nodes[i-1]}" --cpu-pids "vitaqueue=${nodes[i-1]},redis-server=$REDIS" \
            --buy-over "${WS_BUY:-socket}" --no-pay --json "$OUT/ws-$i.json" >"$OUT/ws-$i.txt" 2>&1 &
        gens+=("$!")
    done
    failed=0
    for g in "${gens[@]}"; do wait "$g" || failed=1; done
    cp "$OUT/ws-1.json" "$OUT/ws.json"; cp "$OUT/ws-1.txt" "$OUT/ws.txt"
    [ "${#nodes[@]}" = 1 ] && cat "$OUT/ws.txt"
    python3 - "$OUT" "${#nodes[@]}" "$WS" <<'EOF'
import json, sys
out, n, ws = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print(f"\n{'node':>4} {'buyers':>7} {'join p99':>9} {'push p99':>9} {'buy p99':>9} {'RSS MB':>7} {'KB/sock':>8} {'µs/buyer':>9}  invariants")
for i in range(1, n + 1):
    s = json.load(open(f"{out}/ws-{i}.json"))
    cpu = (s.get("cpu") or {}).get("server_us_per_buyer") or 0
    rss = s.get("server_rss_mb") or 0
    print(f"{i:>4} {s['buyers']:>7} {s['join_p99_ms']:>9.0f} {s['position_push_p99_ms']:>9.0f} "
          f"{s['purchase_p99_ms']:>9.0f} {rss:>7.1f} {rss * 1024 / ws:>8.1f} {cpu:>9.0f}  "
          f"{'all hold' if not s['failures'] else '; '.join(s['failures'])}")
EOF
    if [ -f "$OUT/join-raw.json" ] && [ "${WS_HERD:-0}" = 1 ]; then
        python3 - "$OUT" <<'EOF'
import json, sys
raw = json.load(open(f"{sys.argv[1]}/join-raw.json"))["raw"]
herd = json.load(open(f"{sys.argv[1]}/ws-1.json"))
print(f"join herd: {herd['joins_per_s']:.0f} joins/s over the room socket (p99 {herd['join_p99_ms']:.0f} ms) "
      f"vs raw join.lua EVALSHA {raw['purchases_per_s']:.0f}/s (p99 {raw['p99_ms']:.1f} ms): "
      f"{herd['joins_per_s'] / max(raw['purchases_per_s'], 1e-9) * 100:.1f} %")
EOF
    fi
    [ "$failed" = 0 ] || { echo "a load generator failed: see $OUT/ws-*.txt"; exit 1; }
fi

[ "$RUNS" -gt 0 ] || exit 0
python3 - "$OUT" "$RUNS" <<'EOF'
import json, statistics as st, sys
out, runs = sys.argv[1], int(sys.argv[2])
med = lambda xs: st.median(xs)
rows = {}
for i in range(1, runs + 1):
    for r in json.load(open(f"{out}/strategies-{i}.json"))["rows"]:
        rows.setdefault(r["strategy"], []).append(r)
print(f"\nmedians over {runs} runs")
print(f"{'strategy':<20} {'TPS':>8} {'purch/s':>8} {'mean_ms':>8} {'p99_ms':>8} {'oversold':>8}")
for name, rs in rows.items():
    print(f"{name:<20} {med([r['attempts_per_s'] for r in rs]):>8.0f} "
          f"{med([r['purchases_per_s'] for r in rs]):>8.0f} {med([r['mean_ms'] for r in rs]):>8.2f} "
          f"{med([r['p99_ms'] for r in rs]):>8.2f} {max(r['oversold'] for r in rs):>8}")
cs = [json.load(open(f"{out}/ceiling-{i}.json")) for i in range(1, runs + 1)]
for p in ("raw", "http"):
    print(f"ceiling {p:<5} purchases/s {med([c[p]['purchases_per_s'] for c in cs]):>8.0f} "
          f"p50 {med([c[p]['p50_ms'] for c in cs]):.2f} ms p99 {med([c[p]['p99_ms'] for c in cs]):.2f} ms")
ratios = ", ".join("%.1f%%" % (c["ratio"] * 100) for c in cs)
print(f"ceiling ratio http/raw: median {med([c['ratio'] for c in cs]) * 100:.1f}% (runs: {ratios})")
EOF
