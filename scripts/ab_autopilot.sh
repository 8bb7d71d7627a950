#!/usr/bin/env bash
# The autopilot against a fixed rate at 75 % of measured capacity (Cloudflare's advice), with
# the same crowd, in one run: a private redis-server, `vitaqueue all` on a scratch PostgreSQL
# database (shipped defaults), then
#   1. capacity: an always-buying crowd, rate uncapped: purchases/s of this machine's checkout;
#   2. fixed: the crowd (--abandon share never buys) at round(0.75 × capacity);
#   3. autopilot: the same crowd, the rate starting at the same fixed rate, band
#      [capacity / 10, 2 × capacity], targets as shipped (p99 200 ms, order lag 5 s).
# Prints sell-out time, purchase p99 and tokens per unit sold for both, and the ratios
# autopilot / fixed. Exits non-zero when a run fails its audit (oversold, lost or duplicate
# orders), when a drop does not sell out, or when the autopilot takes more than
# MAX_SELL_RATIO (1.5) × the fixed rate's sell-out time (the run-to-run noise of a
# 20-second drop on 2 shared cores is about ±25 %).
# Everything stays on 127.0.0.1 and is removed at exit.
#
#   BUYERS=6000 STOCK=2000 ABANDON=0.5 ./scripts/ab_autopilot.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
OUT=${OUT:-${CARGO_TARGET_DIR:-target}/bench-autopilot}
BUYERS=${BUYERS:-6000}
STOCK=${STOCK:-2000}
ABANDON=${ABANDON:-0.5}
TTL=${TTL:-5}
MAX_SELL_RATIO=${MAX_SELL_RATIO:-1.5}
REDIS_PORT=${REDIS_PORT:-18210}
HTTP_PORT=${HTTP_PORT:-18211}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
mkdir -p "$OUT"
DB="vqap_bench_$(date +%s)_$$"
REDIS=; SERVER=
cleanup() {
    [ -n "$SERVER" ] && { kill "$SERVER" 2>/dev/null; for _ in $(seq 200); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done; kill -9 "$SERVER" 2>/dev/null || true; }
    [ -n "$REDIS" ] && { kill "$REDIS" 2>/dev/null || true; }
    wait 2>/dev/null || true
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >"$OUT/redis.log" 2>&1 &
REDIS=$!
psql "$PG/postgres" -qc "CREATE DATABASE \"$DB\"" >/dev/null
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
export VQ_REDIS__URL="redis://127.0.0.1:$REDIS_PORT" VQ_REDIS__PREFIX=vqapbench \
    VQ_DATABASE__URL="$PG/$DB" VQ_HTTP__PORT="$HTTP_PORT" \
    VQ_AUTH__JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
"$BIN/vitaqueue" all >"$OUT/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

run() { # name, extra args...
    local name=$1; shift
    # One loopback source per 200 buyers: the shipped per-address cap is 256 connections.
    "$BIN/loadtest" drop --api "http://127.0.0.1:$HTTP_PORT" --no-pay --max-holders 100000 \
        --sources "$(( BUYERS / 200 + 1 ))" \
        --token-ttl "$TTL" --overbook 3 --json "$OUT/$name.json" "$@" >"$OUT/$name.txt" 2>&1 \
        || { echo "$name failed its audit:"; tail -20 "$OUT/$name.txt"; exit 1; }
}
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$OUT/$1.json" "$2"; }

run capacity --buyers "$STOCK" --stock "$STOCK" --rate 1000000 --abandon 0
CAP=$(field capacity purchases_per_s)
FIXED=$(python3 -c "print(max(1, round(0.75 * $CAP)))")
BAND=$(python3 -c "print(f'{max(1, round($CAP / 10))},{max(2, round(2 * $CAP))}')")
echo "capacity $CAP purchases/s; fixed rate $FIXED/s; autopilot band $BAND, starting at $FIXED/s"
run fixed --buyers "$BUYERS" --stock "$STOCK" --rate "$FIXED" --abandon "$ABANDON"
run autopilot --buyers "$BUYERS" --stock "$STOCK" --rate "$FIXED" --abandon "$ABANDON" --autopilot "$BAND"
AP_DROP=$(field autopilot drop_id)
redis-cli -p "$REDIS_PORT" LRANGE "vqapbench:{drop:$AP_DROP}:ratelog" 0 -1 >"$OUT/rate_changes.txt"
echo "autopilot rate changes: $(python3 -c "
import json, sys
print(' '.join(f\"{c['new']}({c['reason']})\" for c in map(json.loads, filter(str.strip, open(sys.argv[1])))) or 'none')" "$OUT/rate_changes.txt")"
python3 - "$OUT" "$MAX_SELL_RATIO" <<'PY'
import json, sys
out, bound = sys.argv[1], float(sys.argv[2])
rows = {n: json.load(open(f"{out}/{n}.json")) for n in ("fixed", "autopilot")}
# --no-pay: a unit sold is a 201 (reserved); `sold` counts paid units only.
def units(s): return s["bought_by_clients"]
def tpu(s): return s["admitted_total"] / max(1, units(s))
print(f"{'':10} {'sell-out s':>10} {'p99 ms':>8} {'tokens/unit':>12} {'sold':>6}")
for n, s in rows.items():
    print(f"{n:10} {s['sell_out_s']:10.2f} {s['purchase_p99_ms']:8.1f} {tpu(s):12.2f} {units(s):6}")
f, a = rows["fixed"], rows["autopilot"]
sell = a["sell_out_s"] / f["sell_out_s"]
print(f"ratio autopilot/fixed: sell-out {sell:.2f}, p99 {a['purchase_p99_ms'] / f['purchase_p99_ms']:.2f}, "
      f"tokens/unit {tpu(a) / tpu(f):.2f}")
for n, s in rows.items():
    if units(s) < s["stock"]:
        sys.exit(f"{n}: the drop did not sell out ({units(s)} of {s['stock']})")
if sell > bound:
    sys.exit(f"the autopilot sold out slower than {bound} × the fixed rate's time")
PY
