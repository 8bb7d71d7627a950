//! The Lua scripts (lua/*.lua), compiled in, sent once and then run by SHA (EVALSHA; the
//! redis crate reloads a script transparently after a Redis restart answers NOSCRIPT).
//! Each call returns a typed outcome instead of raw Redis values; one file per script.
//!
//! Lost Redis state is never papered over: no script creates a drop's stock key (only drop
//! creation and rebuild do), and each tells "no cfg" (`NoDrop`: the caller asks PostgreSQL
//! whether the drop exists, and if so answers needs_rebuild) from "cfg but no stock"
//! (`NeedsRebuild`).

mod admit;
mod join;
mod manage;
mod places;
mod purchase;
mod rate;
mod restock;

pub use admit::{Admission, AdmitOutcome, AdmitStatus};
pub use join::{JoinOutcome, JoinReject};
pub use manage::ManageOutcome;
pub use places::Places;
pub use purchase::{GatedOutcome, PurchaseOutcome, PurchaseReject, Settle, Stage};
pub use rate::{RateBy, RateOutcome, LOG_CAP as RATE_LOG_CAP};
pub use restock::{Restock, RestockOutcome};

use redis::{from_redis_value, Cmd, RedisResult, Script, Value};

pub struct Scripts {
    join: Script,
    touch: Script,
    admit: Script,
    purchase: Script,
    gated_purchase: Script,
    settle: Script,
    lease: Script,
    lease_lower: Script,
    restock: Script,
    manage: Script,
    places: Script,
    rate: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts {
            join: Script::new(include_str!("../../../lua/join.lua")),
            touch: Script::new(include_str!("../../../lua/touch.lua")),
            admit: Script::new(include_str!("../../../lua/admit.lua")),
            purchase: Script::new(include_str!("../../../lua/purchase.lua")),
            gated_purchase: Script::new(GATED_PURCHASE),
            settle: Script::new(include_str!("../../../lua/settle.lua")),
            lease: Script::new(include_str!("../../../lua/lease.lua")),
            lease_lower: Script::new(include_str!("../../../lua/lease_lower.lua")),
            restock: Script::new(include_str!("../../../lua/restock.lua")),
            manage: Script::new(include_str!("../../../lua/manage.lua")),
            places: Script::new(include_str!("../../../lua/places.lua")),
            rate: Script::new(include_str!("../../../lua/rate.lua")),
        }
    }
}

impl Scripts {
    /// Raises the drop's seq lease to `upto` (lua/lease.lua); the caller wrote it to
    /// PostgreSQL first. Returns the lease in force, or -1 when Redis has no cfg for it.
    pub async fn raise_lease<C: redis::aio::ConnectionLike + Send>(
        &self,
        conn: &mut C,
        k: &crate::DropKeys,
        upto: i64,
    ) -> RedisResult<i64> {
        let mut cmd = evalsha(&self.lease, 1, [k.cfg()]);
        cmd.arg(upto);
        run_script(conn, &self.lease, &cmd).await
    }

    /// Lowers the drop's seq lease to its admission counter (lua/lease_lower.lua). Returns
    /// the lease in force, or -1 when Redis has no cfg or no lease for it.
    pub async fn lower_lease<C: redis::aio::ConnectionLike + Send>(
        &self,
        conn: &mut C,
        k: &crate::DropKeys,
    ) -> RedisResult<i64> {
        let cmd = evalsha(&self.lease_lower, 2, [k.cfg(), k.admitted()]);
        run_script(conn, &self.lease_lower, &cmd).await
    }
}

/// lua/gated_purchase.lua as Redis runs it: gate.lua and purchase.lua unchanged, each the
/// body of a local function given its own KEYS and ARGV, then the glue that chains them.
pub const GATED_PURCHASE: &str = concat!(
    "local function gate(KEYS, ARGV)\n",
    include_str!("../../../lua/gate.lua"),
    "\nend\nlocal function purchase(KEYS, ARGV)\n",
    include_str!("../../../lua/purchase.lua"),
    "\nend\n",
    include_str!("../../../lua/gated_purchase.lua"),
);

/// `EVALSHA script nkeys keys…` (`key_count`: how many `keys` yields), to which the caller
/// appends the script's arguments. A `Cmd` keeps every argument in one buffer, where
/// `Script::prepare_invoke` copies each key and argument into a `Vec` of its own and then
/// again into a command: about 20 allocations per purchase on the hottest path. Run it with
/// [`run_script`].
pub fn evalsha<K: AsRef<str>>(
    script: &Script,
    key_count: usize,
    keys: impl IntoIterator<Item = K>,
) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(key_count);
    for key in keys {
        cmd.arg(key.as_ref());
    }
    cmd
}

/// Runs an [`evalsha`] command. A `NOSCRIPT` answer (a restarted or failed-over Redis)
/// loads the script and runs the command once more.
pub async fn run_script<C, T>(conn: &mut C, script: &Script, cmd: &Cmd) -> RedisResult<T>
where
    C: redis::aio::ConnectionLike,
    T: redis::FromRedisValue,
{
    match cmd.query_async(conn).await {
        Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
            script.load_async(conn).await?;
            cmd.query_async(conn).await
        }
        other => other,
    }
}

fn s(v: &[Value], i: usize) -> RedisResult<String> {
    from_redis_value(v.get(i).unwrap_or(&Value::Nil))
}

fn n(v: &[Value], i: usize) -> RedisResult<i64> {
    from_redis_value(v.get(i).unwrap_or(&Value::Nil))
}

fn unexpected(what: &str) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::TypeError,
        "unexpected script reply",
        what.to_string(),
    ))
}
