//! Fleet-wide rate limits: the typed wrapper of lua/ratelimit.lua (GCRA, one bucket per
//! Redis key). Buckets live in Redis rather than in each process, so N api nodes share
//! one budget; the script is atomic, so concurrent requests on different nodes cannot
//! both take the last cell.

use crate::clock::Clock;
use crate::config::Limit;
use redis::aio::ConnectionLike;
use redis::{RedisResult, Script, Value};

/// How fast a bucket refills and how much it holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// One cell refills every this many ms (fractions allowed: 120 000/min is 0.5 ms).
    pub interval_ms: f64,
    pub burst: u32,
}

impl Rate {
    /// A per-minute limit; `None` when it is switched off (`per_minute = 0`).
    pub fn per_minute(l: Limit) -> Option<Rate> {
        (l.per_minute > 0).then(|| Rate {
            interval_ms: 60_000.0 / f64::from(l.per_minute),
            burst: l.burst.max(1),
        })
    }

    /// `cap` requests at once, refilling `cap` per day; `None` when `cap = 0`.
    pub fn per_day(cap: u32) -> Option<Rate> {
        (cap > 0).then(|| Rate {
            interval_ms: 86_400_000.0 / f64::from(cap),
            burst: cap,
        })
    }
}

/// What the script answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed { remaining: u32 },
    Refused { retry_after_ms: u64 },
}

impl Verdict {
    /// Whole seconds for a `Retry-After` header (at least 1 when refused).
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            Verdict::Allowed { .. } => None,
            Verdict::Refused { retry_after_ms } => Some(retry_after_ms.div_ceil(1000).max(1)),
        }
    }
}

pub struct RateLimiter {
    script: Script,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter {
            script: Script::new(include_str!("../../lua/ratelimit.lua")),
        }
    }
}

impl RateLimiter {
    /// Takes `cost` cells (> 0), asks (0) or gives cells back (< 0); see the script header.
    pub async fn call<C: ConnectionLike>(
        &self,
        conn: &mut C,
        key: &str,
        rate: Rate,
        cost: i64,
        clock: &Clock,
    ) -> RedisResult<Verdict> {
        let mut cmd = crate::scripts::evalsha(&self.script, 1, [key]);
        cmd.arg(clock.argv())
            .arg(interval_arg(rate))
            .arg(rate.burst)
            .arg(cost);
        let reply = crate::scripts::run_script(conn, &self.script, &cmd).await?;
        Self::verdict(reply)
    }

    /// Reads one reply of the script (`{allowed, retry_after_ms, remaining}`).
    pub fn verdict(reply: Value) -> RedisResult<Verdict> {
        let (allowed, retry_ms, remaining): (i64, i64, i64) = redis::from_owned_redis_value(reply)?;
        Ok(if allowed == 1 {
            Verdict::Allowed {
                remaining: remaining.max(0) as u32,
            }
        } else {
            Verdict::Refused {
                retry_after_ms: retry_ms.max(1) as u64,
            }
        })
    }

    pub async fn take<C: ConnectionLike>(
        &self,
        conn: &mut C,
        key: &str,
        rate: Rate,
        clock: &Clock,
    ) -> RedisResult<Verdict> {
        self.call(conn, key, rate, 1, clock).await
    }

    /// Returns one cell taken earlier (never beyond a full bucket).
    pub async fn give_back<C: ConnectionLike>(
        &self,
        conn: &mut C,
        key: &str,
        rate: Rate,
        clock: &Clock,
    ) -> RedisResult<Verdict> {
        self.call(conn, key, rate, -1, clock).await
    }
}

/// What lua/gate.lua answered for a request's revocation mark and buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateVerdict {
    /// The access token is revoked; no bucket was touched.
    Revoked,
    /// Bucket `bucket` (0-based) was empty; the ones before it gave a cell each.
    Refused { bucket: usize, retry_after_ms: u64 },
    /// Every bucket gave a cell.
    Passed,
}

impl GateVerdict {
    /// Whole seconds for a `Retry-After` header when a bucket refused (rounded as
    /// [`Verdict::retry_after_s`] rounds them).
    pub fn retry_after_s(&self) -> Option<u64> {
        match *self {
            GateVerdict::Refused { retry_after_ms, .. } => {
                Verdict::Refused { retry_after_ms }.retry_after_s()
            }
            _ => None,
        }
    }
}

/// The typed wrapper of lua/gate.lua: one script call for a token's revocation and every
/// bucket of a request, on a single server (its keys span cluster slots).
pub struct GateScript {
    script: Script,
}

impl Default for GateScript {
    fn default() -> Self {
        GateScript {
            script: Script::new(include_str!("../../lua/gate.lua")),
        }
    }
}

impl GateScript {
    /// Checks `revoked` (the token's revocation key), then takes one cell of each bucket in
    /// order, stopping at the first that is empty.
    pub async fn call<C: ConnectionLike>(
        &self,
        conn: &mut C,
        revoked: Option<&str>,
        buckets: &[(&str, Rate)],
        clock: &Clock,
    ) -> RedisResult<GateVerdict> {
        let gate = GateArgs { revoked, buckets };
        let mut cmd = crate::scripts::evalsha(&self.script, gate.key_count(), gate.keys());
        gate.push_args(&mut cmd, clock);
        let reply: (i64, i64, i64) = crate::scripts::run_script(conn, &self.script, &cmd).await?;
        Ok(GateVerdict::from_reply(reply))
    }
}

/// The keys and arguments of one gate.lua call: sent alone ([`GateScript::call`]) or ahead
/// of the purchase in the same script call (lua/gated_purchase.lua).
#[derive(Debug, Clone, Copy)]
pub struct GateArgs<'a> {
    /// The access token's revocation key, when the request carries one.
    pub revoked: Option<&'a str>,
    /// The buckets, in the order they are checked.
    pub buckets: &'a [(&'a str, Rate)],
}

impl<'a> GateArgs<'a> {
    pub fn key_count(&self) -> usize {
        usize::from(self.revoked.is_some()) + self.buckets.len()
    }

    /// KEYS in gate.lua's order: the revocation key, then the buckets.
    pub fn keys(&self) -> impl Iterator<Item = &'a str> {
        self.revoked
            .into_iter()
            .chain(self.buckets.iter().map(|(key, _)| *key))
    }

    /// How many arguments [`GateArgs::push_args`] appends.
    pub fn arg_count(&self) -> usize {
        2 + 2 * self.buckets.len()
    }

    /// Appends gate.lua's ARGV: the clock, the revocation flag, each bucket's rate.
    pub fn push_args(&self, cmd: &mut redis::Cmd, clock: &Clock) {
        cmd.arg(clock.argv())
            .arg(if self.revoked.is_some() { "1" } else { "0" });
        for (_, rate) in self.buckets {
            cmd.arg(interval_arg(*rate)).arg(rate.burst);
        }
    }
}

impl GateVerdict {
    /// Reads gate.lua's `{revoked, refused, retry_after_ms}`.
    pub fn from_reply((revoked, refused, retry_ms): (i64, i64, i64)) -> Self {
        match (revoked, refused) {
            (1, _) => GateVerdict::Revoked,
            (_, 0) => GateVerdict::Passed,
            (_, i) => GateVerdict::Refused {
                bucket: (i - 1).max(0) as usize,
                retry_after_ms: retry_ms.max(1) as u64,
            },
        }
    }
}

/// The emission interval as the script reads it: the shortest decimal that is exactly
/// this `f64` (Rust's `Display` never writes an exponent, which `tonumber` would take too),
/// cheaper per request than a fixed-precision format.
fn interval_arg(rate: Rate) -> String {
    rate.interval_ms.to_string()
}

/// The Redis key of one bucket: `{prefix}:rl:{limit}:{client}` (the client formatted
/// straight into the key: an address or account id costs no string of its own).
pub fn bucket_key(keys: &crate::Keys, limit: &str, client: impl std::fmt::Display) -> String {
    format!("{}:rl:{limit}:{client}", keys.prefix())
}
