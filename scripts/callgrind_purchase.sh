#!/usr/bin/env bash
# Instructions per HTTP purchase, load-independent: the api role runs under
# `valgrind --tool=callgrind` (and redis-server too, with REDIS_CG=1), admission and worker
# run natively in their own processes, and `loadtest ceiling --pause-before-http` stops
# after its setup so the counters are zeroed right before the N purchases and dumped right
# after them. Prints Ir per purchase of the api (and of Redis). Callgrind sees user space
# only; PERF_STAT=1 instead runs both natively and counts, with `perf stat` over the same
# window, the system calls (where the round trips cost: loopback TCP) and the CPU time per
# purchase. Everything stays on 127.0.0.1 and is removed at exit.
#
#   BIN=target/release N=2000 REDIS_PORT=6431 HTTP_PORT=7301 OUT=target/cg ./scripts/callgrind_purchase.sh
#   PERF_STAT=1 N=20000 CONC=128 ... ./scripts/callgrind_purchase.sh
#   API_CG=0 REDIS_CG=1 N=20000 ... ./scripts/callgrind_purchase.sh   # Redis only, the api
#       native: the HTTP phase then lasts seconds, not minutes, so the Redis count is not
#       swollen by the admission ticks that run on the clock meanwhile
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=${BIN:-target/release}
LOADTEST=${LOADTEST:-$BIN/loadtest}
N=${N:-2000}
CONC=${CONC:-16}
OUT=${OUT:-target/callgrind}
REDIS_PORT=${REDIS_PORT:-6391}
HTTP_PORT=${HTTP_PORT:-18585}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
mkdir -p "$OUT"
rm -f "$OUT"/callgrind.*
DB="vq_cg_$(date +%s)_$$"
pids=()
cleanup() {
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill "${pids[i]}" 2>/dev/null || continue
        for _ in $(seq 300); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.1; done
        kill -9 "${pids[i]}" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

CG=(valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.%p")
PERF_STAT=${PERF_STAT:-0}
if [ "$PERF_STAT" = 1 ]; then CG=(); REDIS_CG=1; fi
REDIS_CMD=(redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no)
if [ "${REDIS_CG:-0}" = 1 ]; then REDIS_CMD=("${CG[@]}" "${REDIS_CMD[@]}"); fi
"${REDIS_CMD[@]}" >"$OUT/redis.log" 2>&1 &
REDIS=$!
pids+=("$REDIS")
psql "$PG/postgres" -qc "CREATE DATABASE \"$DB\"" >/dev/null

export VQ_REDIS__URL="redis://127.0.0.1:$REDIS_PORT"
export VQ_REDIS__PREFIX=vqcg
export VQ_DATABASE__URL="$PG/$DB"
export VQ_AUTH__JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export VQ_HTTP__PORT="$HTTP_PORT"
API="http://127.0.0.1:$HTTP_PORT"

for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.2; done
API_CMD=("$BIN/vitaqueue" api)
if [ "${API_CG:-1}" = 1 ]; then API_CMD=("${CG[@]}" "${API_CMD[@]}"); fi
"${API_CMD[@]}" >"$OUT/api.log" 2>&1 &
SERVER=$!
pids+=("$SERVER")
for _ in $(seq 600); do curl -sf "$API/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
"$BIN/vitaqueue" admission >"$OUT/admission.log" 2>&1 &
pids+=("$!")
"$BIN/vitaqueue" worker >"$OUT/worker.log" 2>&1 &
pids+=("$!")

watched=()
if [ "${API_CG:-1}" = 1 ] || [ "$PERF_STAT" = 1 ]; then watched+=("$SERVER"); fi
if [ "${REDIS_CG:-0}" = 1 ]; then watched+=("$REDIS"); fi
coproc LT { "$LOADTEST" ceiling --api "$API" --purchases "$N" --concurrency "$CONC" \
    --connections 2 --timeout-s 600 --pause-before-http 2>&1; }
LTPID=$LT_PID
# Own copies of the coprocess's pipes: bash unsets LT as soon as it exits.
exec {LT_OUT}<&"${LT[0]}" {LT_IN}>&"${LT[1]}"
while IFS= read -r line <&"$LT_OUT"; do
    echo "$line"
    case "$line" in paused*) break ;; esac
done
perfs=()
for p in "${watched[@]}"; do
    if [ "$PERF_STAT" = 1 ]; then
        perf stat -e raw_syscalls:sys_enter,task-clock -p "$p" -o "$OUT/perf.$p.txt" &
        perfs+=("$!")
    else
        callgrind_control -z "$p" >/dev/null
    fi
done
echo >&"$LT_IN"
# Dump as soon as the HTTP phase ends, before the audit's wait for the order writer.
while IFS= read -r line <&"$LT_OUT"; do
    echo "$line"
    case "$line" in "http phase done"*) break ;; esac
done
if [ "$PERF_STAT" = 1 ]; then
    for p in "${perfs[@]}"; do kill -INT "$p"; wait "$p" || true; done
else
    for p in "${watched[@]}"; do callgrind_control -d "$p" >/dev/null; done
fi
cat <&"$LT_OUT" || true
wait "$LTPID" || true
sleep 1
for p in "${watched[@]}"; do
    name=api; [ "$p" = "$REDIS" ] && name=redis-server
    if [ "$PERF_STAT" = 1 ]; then
        sc=$(awk '/raw_syscalls:sys_enter/ {gsub(",", "", $1); print $1}' "$OUT/perf.$p.txt")
        ms=$(awk '/task-clock/ {gsub(",", "", $1); print $1}' "$OUT/perf.$p.txt")
        echo "perf $name: $sc syscalls, $ms ms CPU over $N purchases = $((sc / N)) syscalls and $(echo "$ms * 1000 / $N" | bc -l | cut -c1-6) us CPU per purchase"
        continue
    fi
    f=$(ls -t "$OUT"/callgrind."$p".* 2>/dev/null | head -1)
    ir=$(grep -m1 -E '^(summary|totals):' "$f" | awk '{print $2}')
    echo "callgrind $name: $ir Ir over $N purchases = $((ir / N)) Ir per purchase ($f)"
done
