#!/usr/bin/env bash
# Run every check CI runs: formatting, import cycles, clippy (warnings are errors) and the
# whole test suite.
# Redis and PostgreSQL are found or started by scripts/services.sh.
# Extra arguments go to `cargo test`, e.g.  ./scripts/test.sh -p vq-core -- --nocapture
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/services.sh

# The tests open thousands of sockets: raise the open-file limit as far as allowed.
vq_raise_nofile() {
    local hard soft
    hard=$(ulimit -Hn)
    if [ "$hard" = unlimited ]; then
        ulimit -Sn 1048576 2>/dev/null || ulimit -Sn 65536 2>/dev/null || true
    elif [ "$hard" -ge 20000 ]; then
        ulimit -Sn "$hard" 2>/dev/null || true
    else
        # Raising the hard limit works only as root; otherwise settle for the hard limit.
        ulimit -n 20000 2>/dev/null || ulimit -Sn "$hard" 2>/dev/null || true
    fi
    soft=$(ulimit -Sn)
    if [ "$soft" != unlimited ] && [ "$soft" -lt 20000 ]; then
        echo "[vq] warning: open-file limit is $soft (< 20000); load tests may fail with EMFILE" >&2
    fi
}
vq_raise_nofile

# The observability test runs Debian's Prometheus on loopback; the browser tests drive
# Debian's Chromium with playwright-core (from the npm registry, pinned in e2e/).
command -v prometheus >/dev/null 2>&1 || vq_apt_install prometheus
# The failover tests run a primary, a replica and three Sentinels of their own.
command -v redis-sentinel >/dev/null 2>&1 || vq_apt_install redis-sentinel
[ -x /usr/bin/chromium ] || vq_apt_install chromium
command -v npm >/dev/null 2>&1 || vq_apt_install nodejs npm
if [ ! -d e2e/node_modules/playwright-core ] || [ ! -d e2e/node_modules/axe-core ]; then
    echo "[vq] npm ci (e2e)" >&2
    (cd e2e && npm ci --no-audit --no-fund >/dev/null)
fi

echo "[vq] cargo fmt --all --check" >&2
cargo fmt --all --check

# No import circles between crates or modules (reads the sources; builds in seconds).
echo "[vq] cargo test -p vq-layout (import cycles)" >&2
cargo test -p vq-layout

echo "[vq] cargo clippy --workspace --all-targets -- -D warnings" >&2
cargo clippy --workspace --all-targets -- -D warnings

# Every test makes its own database; drop them before and after so runs never pile up.
vq_drop_scratch_dbs
trap vq_drop_scratch_dbs EXIT

echo "[vq] cargo test --workspace $*" >&2
cargo test --workspace "$@"

echo "[vq] all checks passed" >&2
