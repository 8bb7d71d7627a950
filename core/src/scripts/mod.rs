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
mod restock;

pub use admit::{Admission, AdmitOutcome, AdmitStatus};
pub use join::{JoinOutcome, JoinReject};
pub use manage::ManageOutcome;
pub use places::Places;
pub use purchase::{PurchaseOutcome, PurchaseReject};
pub use restock::{Restock, RestockOutcome};

use redis::{from_redis_value, RedisResult, Script, Value};

pub struct Scripts {
    join: Script,
    touch: Script,
    admit: Script,
    purchase: Script,
    restock: Script,
    manage: Script,
    places: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts {
            join: Script::new(include_str!("../../../lua/join.lua")),
            touch: Script::new(include_str!("../../../lua/touch.lua")),
            admit: Script::new(include_str!("../../../lua/admit.lua")),
            purchase: Script::new(include_str!("../../../lua/purchase.lua")),
            restock: Script::new(include_str!("../../../lua/restock.lua")),
            manage: Script::new(include_str!("../../../lua/manage.lua")),
            places: Script::new(include_str!("../../../lua/places.lua")),
        }
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
