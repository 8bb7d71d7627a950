# shellcheck shell=bash
# VitaQueue: make Redis, PostgreSQL and a Rust toolchain available, then export
# the URLs the binaries and tests read.
#
# Usage (from another script or an interactive shell):   . scripts/services.sh
#
# Exports on success:
#   VQ_TEST_REDIS_URL     redis://127.0.0.1:PORT            (tests use unique key prefixes)
#   VQ_TEST_DATABASE_URL  postgres://postgres@127.0.0.1:PORT/postgres
#                         (admin URL; tests create a fresh database per test from it)
#   VQ_REDIS__URL         same Redis, for the vitaqueue binaries
#   VQ_DATABASE__URL      postgres://postgres@127.0.0.1:PORT/vitaqueue (created if missing)
#
# What it does:
#   Redis:      uses 127.0.0.1:6379 if it answers PING; otherwise installs redis-server via
#               apt-get if needed and runs a private instance on 127.0.0.1:6390
#               (data/log in <repo>/.vq/).
#   PostgreSQL: uses 127.0.0.1:5432 if user `postgres` can connect without a password;
#               otherwise installs `postgresql` via apt-get if no initdb exists, and runs a
#               private trust-auth cluster in <repo>/.vq/pg on 127.0.0.1:5440. When run as
#               root, the cluster belongs to the system user `vqpg` (created if missing).
#   Toolchain:  puts ~/.cargo/bin on PATH if cargo is not found; fails if Rust is missing
#               (install it with rustup); installs build-essential/pkg-config if `cc` or
#               `pkg-config` is missing.
#
# Environment knobs:
#   VQ_FORCE_PRIVATE=1    ignore servers on the default ports 6379/5432 and always use (and
#                         start if needed) the private instances on 6390/5440. Used to test
#                         the fallback path on machines that already run Redis/PostgreSQL.
#
# Idempotent: running it again reuses whatever already answers. Quiet on success apart from
# one line per service on stderr. Safe under `set -euo pipefail`; it does not change the
# caller's shell options. On failure it prints the reason and returns 1 (so a caller with
# `set -e` exits with status 1).
#
# Stop the private instances with:
#   redis-cli -h 127.0.0.1 -p 6390 shutdown nosave
#   pg_ctl -D .vq/pg stop        (as user vqpg when the cluster was created by root)

VQ_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VQ_DIR="$VQ_ROOT/.vq"

VQ_PRIVATE_REDIS_PORT=6390
VQ_PRIVATE_PG_PORT=5440

vq_log() { printf '[vq] %s\n' "$*" >&2; }
vq_err() { printf '[vq] ERROR: %s\n' "$*" >&2; }
vq_is_root() { [ "$(id -u)" = 0 ]; }

# Run a command with root privileges (directly when root, via sudo otherwise).
vq_root_run() {
    if vq_is_root; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        vq_err "need root (or sudo) to run: $*"
        return 1
    fi
}

# Install Debian packages quietly; apt output goes to .vq/apt.log and is shown on failure.
vq_apt_updated=${vq_apt_updated:-0}
vq_apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        vq_err "apt-get not found; please install these packages yourself: $*"
        return 1
    fi
    mkdir -p "$VQ_DIR" || return 1
    local log="$VQ_DIR/apt.log"
    vq_log "installing $* via apt-get (log: $log)"
    if [ "$vq_apt_updated" != 1 ]; then
        if ! vq_root_run apt-get update >>"$log" 2>&1; then
            tail -n 20 "$log" >&2
            vq_err "apt-get update failed"
            return 1
        fi
        vq_apt_updated=1
    fi
    if ! vq_root_run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$log" 2>&1; then
        tail -n 20 "$log" >&2
        vq_err "apt-get install $* failed"
        return 1
    fi
}

# ---------------------------------------------------------------------------------------
# Toolchain
# ---------------------------------------------------------------------------------------
vq_ensure_toolchain() {
    if ! command -v cargo >/dev/null 2>&1; then
        if [ -x "${HOME:-/nonexistent}/.cargo/bin/cargo" ]; then
            PATH="$HOME/.cargo/bin:$PATH"
            export PATH
        else
            vq_err "no Rust toolchain found (cargo is not on PATH and ~/.cargo/bin/cargo does not exist)."
            vq_err "Install Rust with rustup (https://rustup.rs), then re-run this script."
            return 1
        fi
    fi
    local pkgs=()
    command -v cc >/dev/null 2>&1 || pkgs+=(build-essential)
    command -v pkg-config >/dev/null 2>&1 || pkgs+=(pkg-config)
    if [ "${#pkgs[@]}" -gt 0 ]; then
        vq_apt_install "${pkgs[@]}" || return 1
    fi
}

# ---------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------
# True when a Redis on 127.0.0.1:$1 answers PING with PONG (no auth).
vq_redis_ping() {
    local port=$1 out
    if command -v redis-cli >/dev/null 2>&1; then
        out=$(timeout 3 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) || return 1
        [ "$out" = PONG ]
    else
        timeout 3 bash -c '
            exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
            printf "PING\r\n" >&3
            IFS= read -r line <&3 || exit 1
            [[ $line == "+PONG"* ]]' _ "$port" 2>/dev/null
    fi
}

vq_ensure_redis() {
    local port
    if [ "${VQ_FORCE_PRIVATE:-0}" != 1 ] && vq_redis_ping 6379; then
        port=6379
        vq_log "redis: using existing server at 127.0.0.1:$port"
    else
        port=$VQ_PRIVATE_REDIS_PORT
        if vq_redis_ping "$port"; then
            vq_log "redis: using private server at 127.0.0.1:$port (already running)"
        else
            if ! command -v redis-server >/dev/null 2>&1; then
                vq_apt_install redis-server || return 1
            fi
            mkdir -p "$VQ_DIR/redis" || return 1
            if ! redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
                --daemonize yes --dir "$VQ_DIR/redis" --logfile "$VQ_DIR/redis.log" \
                --pidfile "$VQ_DIR/redis.pid" >/dev/null; then
                vq_err "could not start redis-server on port $port (see $VQ_DIR/redis.log)"
                return 1
            fi
            local i
            for ((i = 0; i < 100; i++)); do
                vq_redis_ping "$port" && break
                sleep 0.1
            done
            if ! vq_redis_ping "$port"; then
                tail -n 20 "$VQ_DIR/redis.log" >&2 2>/dev/null
                vq_err "private redis on port $port did not answer PING"
                return 1
            fi
            vq_log "redis: started private server at 127.0.0.1:$port (log: .vq/redis.log)"
        fi
    fi
    VQ_TEST_REDIS_URL="redis://127.0.0.1:$port"
    VQ_REDIS__URL="$VQ_TEST_REDIS_URL"
    export VQ_TEST_REDIS_URL VQ_REDIS__URL
}

# ---------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------
# Directory holding initdb/pg_ctl (highest installed version), or empty.
vq_pg_bindir() {
    local d best
    best=$(for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ]; then echo "$d"; fi
    done | sort -V | tail -n 1)
    if [ -n "$best" ]; then
        printf '%s\n' "$best"
    elif command -v initdb >/dev/null 2>&1; then
        d=$(command -v initdb)
        d=$(readlink -f "$d" 2>/dev/null || echo "$d")
        dirname "$d"
    else
        return 1
    fi
}

# Pick a client tool: from PATH, else from the server bin dir ($VQ_PG_BIN).
vq_pg_tool() {
    if command -v "$1" >/dev/null 2>&1; then
        command -v "$1"
    elif [ -n "${VQ_PG_BIN:-}" ] && [ -x "$VQ_PG_BIN/$1" ]; then
        printf '%s\n' "$VQ_PG_BIN/$1"
    else
        return 1
    fi
}

# True when PostgreSQL on 127.0.0.1:$1 accepts user postgres without a password.
vq_pg_ok() {
    local port=$1 isready psql out
    isready=$(vq_pg_tool pg_isready) || return 1
    psql=$(vq_pg_tool psql) || return 1
    timeout 5 "$isready" -q -h 127.0.0.1 -p "$port" -t 3 >/dev/null 2>&1 || return 1
    out=$(PGCONNECT_TIMEOUT=3 timeout 5 "$psql" -w -X -h 127.0.0.1 -p "$port" -U postgres \
        -d postgres -Atqc 'select 1' 2>/dev/null) || return 1
    [ "$out" = 1 ]
}

# Run a command as the cluster owner (system user vqpg when we are root).
vq_as_pg() {
    if vq_is_root; then
        if command -v runuser >/dev/null 2>&1; then
            (cd / && runuser -u vqpg -- "$@")
        else
            (cd / && su -s /bin/sh vqpg -c "$(printf '%q ' "$@")")
        fi
    else
        "$@"
    fi
}

vq_ensure_vqpg_user() {
    id vqpg >/dev/null 2>&1 && return 0
    if command -v useradd >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin vqpg >/dev/null 2>&1 || id vqpg >/dev/null 2>&1
    elif command -v adduser >/dev/null 2>&1; then
        adduser --system --group --no-create-home vqpg >/dev/null 2>&1 || id vqpg >/dev/null 2>&1
    else
        vq_err "cannot create system user vqpg (no useradd/adduser)"
        return 1
    fi
}

vq_start_private_pg() {
    local port=$VQ_PRIVATE_PG_PORT
    local data="$VQ_DIR/pg" sock="$VQ_DIR/pgsock" log="$VQ_DIR/pg.log"

    if [ -z "${VQ_PG_BIN:-}" ]; then
        vq_apt_install postgresql || return 1
        VQ_PG_BIN=$(vq_pg_bindir) || {
            vq_err "postgresql installed but no initdb found in /usr/lib/postgresql/*/bin"
            return 1
        }
    fi

    mkdir -p "$data" "$sock" || return 1
    if vq_is_root; then
        vq_ensure_vqpg_user || return 1
        chown vqpg: "$data" "$sock" || return 1
        touch "$log" && chown vqpg: "$log" || return 1
        if ! vq_as_pg test -w "$data"; then
            vq_err "user vqpg cannot reach $data (is a parent directory private, e.g. /root?)."
            vq_err "Move the repository somewhere world-traversable, or run as a non-root user."
            return 1
        fi
    fi
    chmod 700 "$data" || return 1

    # Unix socket paths are limited to ~107 bytes; fall back to TCP only if ours is too long.
    local sockdir=$sock
    if [ $((${#sock} + 20)) -gt 100 ]; then
        sockdir=""
    fi

    if [ ! -s "$data/PG_VERSION" ]; then
        if ! vq_as_pg "$VQ_PG_BIN/initdb" -D "$data" -A trust -U postgres -E UTF8 \
            --locale=C >"$VQ_DIR/initdb.log" 2>&1; then
            tail -n 20 "$VQ_DIR/initdb.log" >&2
            vq_err "initdb failed (log: $VQ_DIR/initdb.log)"
            return 1
        fi
        # A throwaway cluster for tests and demos: durability off, plenty of connections.
        {
            echo ""
            echo "# --- VitaQueue private test cluster (scripts/services.sh) ---"
            echo "port = $port"
            echo "listen_addresses = '127.0.0.1'"
            echo "unix_socket_directories = '$sockdir'"
            echo "max_connections = 500"
            echo "shared_buffers = 128MB"
            echo "fsync = off"
            echo "synchronous_commit = off"
            echo "full_page_writes = off"
        } >>"$data/postgresql.conf" || return 1
    fi

    if ! vq_as_pg "$VQ_PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t 60 \
        -o "-p $port -c listen_addresses=127.0.0.1" start >/dev/null 2>&1; then
        tail -n 20 "$log" >&2 2>/dev/null
        vq_err "pg_ctl start failed (log: $log)"
        return 1
    fi
    local i
    for ((i = 0; i < 60; i++)); do
        vq_pg_ok "$port" && return 0
        sleep 0.5
    done
    tail -n 20 "$log" >&2 2>/dev/null
    vq_err "private PostgreSQL on port $port did not become ready (log: $log)"
    return 1
}

vq_ensure_postgres() {
    local port
    VQ_PG_BIN=$(vq_pg_bindir) || VQ_PG_BIN=""
    if [ "${VQ_FORCE_PRIVATE:-0}" != 1 ] && vq_pg_ok 5432; then
        port=5432
        vq_log "postgres: using existing server at 127.0.0.1:$port"
    else
        port=$VQ_PRIVATE_PG_PORT
        if vq_pg_ok "$port"; then
            vq_log "postgres: using private server at 127.0.0.1:$port (already running)"
        else
            vq_start_private_pg || return 1
            vq_log "postgres: started private cluster .vq/pg at 127.0.0.1:$port (log: .vq/pg.log)"
        fi
    fi

    local psql exists
    psql=$(vq_pg_tool psql) || {
        vq_err "psql not found"
        return 1
    }
    exists=$("$psql" -w -X -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atqc \
        "select 1 from pg_database where datname = 'vitaqueue'" 2>/dev/null) || exists=""
    if [ "$exists" != 1 ]; then
        # Tolerate a concurrent run creating it between the check and here.
        "$psql" -w -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
            -c 'create database vitaqueue' >/dev/null 2>&1 || true
        exists=$("$psql" -w -X -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atqc \
            "select 1 from pg_database where datname = 'vitaqueue'" 2>/dev/null) || exists=""
        if [ "$exists" != 1 ]; then
            vq_err "could not create database vitaqueue on port $port"
            return 1
        fi
    fi

    VQ_PG_PORT=$port
    VQ_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
    VQ_DATABASE__URL="postgres://postgres@127.0.0.1:$port/vitaqueue"
    export VQ_TEST_DATABASE_URL VQ_DATABASE__URL
}

# Drop the scratch databases tests and benchmarks create (one per test: vq_test_*, vq_soak_*,
# vq_smoke_*, vq_bench_*). Each is ~8 MB; a suite run leaves ~150 of them, and repeated runs on
# one machine filled its disk once, so scripts/test.sh calls this before and after the run.
vq_drop_scratch_dbs() {
    local psql db n=0
    psql=$(vq_pg_tool psql) || return 0
    [ -n "${VQ_PG_PORT:-}" ] || return 0
    while read -r db; do
        [ -n "$db" ] || continue
        "$psql" -w -X -q -h 127.0.0.1 -p "$VQ_PG_PORT" -U postgres -d postgres \
            -c "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 && n=$((n + 1))
    done < <("$psql" -w -X -h 127.0.0.1 -p "$VQ_PG_PORT" -U postgres -d postgres -Atqc \
        "select datname from pg_database where datname ~ '^vq_(test|soak|smoke|bench)_'" 2>/dev/null)
    [ "$n" = 0 ] || vq_log "postgres: dropped $n scratch databases"
}

vq_services_main() {
    vq_ensure_toolchain || return 1
    vq_ensure_redis || return 1
    vq_ensure_postgres || return 1
}

# `return` works because this file is sourced; the `exit` is only reached if it is executed.
if ! vq_services_main; then
    vq_err "service setup failed"
    return 1 2>/dev/null || exit 1
fi
