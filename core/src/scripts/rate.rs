//! lua/rate.lua: set a drop's admission rate and record the change.

use super::{n, s, unexpected, Scripts};
use crate::clock::Clock;
use crate::keys::DropKeys;
use redis::aio::ConnectionLike;
use redis::{RedisResult, Value};

/// Rate changes the script keeps per drop (the oldest go first).
pub const LOG_CAP: usize = 500;

/// Who sets the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateBy {
    /// The autopilot, deciding from this rate: written only while the autopilot is on and
    /// the rate is still this one.
    Autopilot { from: u32 },
    /// A manager: always written and recorded.
    Manager,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateOutcome {
    /// Written and recorded; the rate it replaced.
    Set {
        old: u32,
    },
    Unchanged,
    /// The autopilot is off for this drop.
    Off,
    /// The rate is no longer the one the autopilot decided from (a manager's change).
    Moved {
        now: u32,
    },
    NoDrop,
    NeedsRebuild,
}

impl Scripts {
    pub async fn set_rate<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        k: &DropKeys,
        clock: &Clock,
        rate: u32,
        reason: &'static str,
        by: RateBy,
    ) -> RedisResult<RateOutcome> {
        let (mode, from) = match by {
            RateBy::Autopilot { from } => ("auto", from.to_string()),
            RateBy::Manager => ("manual", String::new()),
        };
        let v: Vec<Value> = self
            .rate
            .key(k.cfg())
            .key(k.stock())
            .key(k.ratelog())
            .arg(clock.argv())
            .arg(rate.max(1))
            .arg(reason)
            .arg(mode)
            .arg(from)
            .arg(LOG_CAP)
            .invoke_async(conn)
            .await?;
        let old = u32::try_from(n(&v, 1)?).unwrap_or(0);
        Ok(match s(&v, 0)?.as_str() {
            "ok" => RateOutcome::Set { old },
            "unchanged" => RateOutcome::Unchanged,
            "off" => RateOutcome::Off,
            "moved" => RateOutcome::Moved { now: old },
            "no_drop" => RateOutcome::NoDrop,
            "needs_rebuild" => RateOutcome::NeedsRebuild,
            other => return Err(unexpected(other)),
        })
    }
}
