//! One autopilot step for one drop: take the drop's lease for this interval (`SET NX PX`,
//! so one process decides per interval fleet-wide), read the signals, decide, and write
//! the decision through lua/rate.lua.
//!
//! Signals, each read from the drop's own keys (one slot):
//! - purchase p99: the last [`sketch::WINDOW_S`] whole seconds of `aplat:<second>`;
//! - order lag: the age (by Redis time, which also names stream entries) of the oldest
//!   entry of the order stream not yet acknowledged by the workers' group, whether still
//!   undelivered (after the group's last-delivered id) or delivered and pending;
//! - unused tokens: the `expired` counter against the tokens admitted at least one token
//!   TTL (plus a second of tick slack) ago, read off the admission log: those tokens' fates
//!   are all known, so the share is not biased low by the recent no-shows still live
//!   (counting `admitted − live` would be);
//! - caps: live holders against `max_holders` and the stock-aware cap, and the queue.

use super::{decide, sketch, Decision, Inputs};
use crate::clock::Clock;
use crate::keys::DropKeys;
use crate::scripts::{RateBy, RateOutcome, Scripts};
use redis::aio::ConnectionLike;
use redis::streams::{StreamInfoGroupsReply, StreamPendingReply, StreamRangeReply};
use redis::{AsyncCommands, RedisResult};
use std::collections::HashMap;

/// What one step saw and did.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub inputs: Inputs,
    pub decision: Option<Decision>,
    /// What lua/rate.lua said (None when there was nothing to write).
    pub applied: Option<RateOutcome>,
}

/// The cfg fields one step reads, in this order.
const FIELDS: [&str; 9] = [
    "ap",
    "rate",
    "ap_min",
    "ap_max",
    "ap_p99_ms",
    "ap_lag_ms",
    "ap_base",
    "max_holders",
    "ttl",
];

/// One step; `None` when the autopilot is off, the drop not active, or another process
/// holds this interval's lease.
pub async fn step<C: ConnectionLike + Send + Sync>(
    conn: &mut C,
    scripts: &Scripts,
    k: &DropKeys,
    clock: &Clock,
    group: &str,
    interval_ms: u64,
) -> RedisResult<Option<Step>> {
    let Some(cfg) = leased_cfg(conn, k, interval_ms).await? else {
        return Ok(None);
    };
    let s = read(conn, k, group, cfg.settle_ms).await?;
    let inputs = cfg.inputs(&s);
    let decision = decide(&inputs);
    let applied = match decision {
        Some(d) => {
            let by = RateBy::Autopilot { from: inputs.rate };
            let sent = scripts.set_rate(conn, k, clock, d.rate, d.reason.as_str(), by);
            Some(sent.await?)
        }
        None => None,
    };
    Ok(Some(Step {
        inputs,
        decision,
        applied,
    }))
}

/// What one step reads from the drop's cfg.
struct Cfg {
    rate: u32,
    base: u32,
    min: u32,
    max: u32,
    p99_ms: u64,
    lag_ms: u64,
    holders: u64,
    /// Live tokens per unreserved unit (1 once sold out).
    factor: f64,
    /// A token admitted this long ago is bought or expired by now (its TTL plus a second).
    settle_ms: i64,
}

impl Cfg {
    fn inputs(&self, s: &Signals) -> Inputs {
        let stock_cap = (s.stock.max(0) as f64 * self.factor).ceil() as u64;
        Inputs {
            rate: self.rate,
            base: self.base,
            min_rate: self.min,
            max_rate: self.max,
            target_p99_ms: self.p99_ms,
            target_lag_ms: self.lag_ms,
            p99_ms: s.p99_ms,
            lag_ms: s.lag_ms,
            expired: s.expired,
            resolved: s.admitted_old,
            capped: s.live >= self.holders || s.live >= stock_cap || s.queue == 0,
        }
    }
}

/// The drop's cfg, once this process holds the drop's lease for the interval; `None` when
/// the autopilot is off, the drop not active, or the lease is another's.
async fn leased_cfg<C: ConnectionLike + Send + Sync>(
    conn: &mut C,
    k: &DropKeys,
    interval_ms: u64,
) -> RedisResult<Option<Cfg>> {
    type Raw = (
        Vec<Option<u64>>,
        Option<String>,
        Option<String>,
        Option<f64>,
    );
    let (cfg, state, sold_out, overbook): Raw = redis::pipe()
        .hget(k.cfg(), &FIELDS[..])
        .hget(k.cfg(), "state")
        .hget(k.cfg(), "sold_out_at")
        .hget(k.cfg(), "overbook")
        .query_async(conn)
        .await?;
    let [ap, rate, min, max, p99, lag, base, holders, ttl] = cfg[..] else {
        return Ok(None);
    };
    if ap != Some(1) || state.as_deref() != Some("active") {
        return Ok(None);
    }
    let lease: Option<String> = redis::cmd("SET")
        .arg(k.ap_lease())
        .arg(1)
        .arg("NX")
        .arg("PX")
        .arg(interval_ms.saturating_sub(50).max(1))
        .query_async(conn)
        .await?;
    if lease.is_none() {
        return Ok(None);
    }
    let rate = rate.unwrap_or(1);
    let u = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    Ok(Some(Cfg {
        rate: u(rate),
        base: u(base.unwrap_or(rate)),
        min: u(min.unwrap_or(1)),
        max: u(max.unwrap_or(rate)),
        p99_ms: p99.unwrap_or(u64::from(super::DEFAULT_P99_MS)),
        lag_ms: lag.unwrap_or(u64::from(super::DEFAULT_LAG_S) * 1000),
        holders: holders.unwrap_or(u64::MAX),
        factor: if sold_out.is_some() {
            1.0
        } else {
            overbook.unwrap_or(1.5)
        },
        settle_ms: ttl.unwrap_or(60_000) as i64 + 1000,
    }))
}

/// The raw signals of one drop.
#[derive(Debug, Default)]
struct Signals {
    stock: i64,
    live: u64,
    /// Tokens admitted at least `settled_ms` ago.
    admitted_old: u64,
    expired: u64,
    queue: u64,
    p99_ms: Option<u64>,
    lag_ms: u64,
}

async fn read<C: ConnectionLike + Send + Sync>(
    conn: &mut C,
    k: &DropKeys,
    group: &str,
    settled_ms: i64,
) -> RedisResult<Signals> {
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(conn).await?;
    let now_ms = secs * 1000 + micros / 1000;
    let mut p = redis::pipe();
    p.get(k.stock())
        .zcard(k.expiry())
        .xrevrange_count(k.admlog(), now_ms - settled_ms, "-", 1)
        .get(k.expired())
        .zcard(k.queue());
    for back in 1..=sketch::WINDOW_S {
        p.hgetall(k.aplat(secs - back));
    }
    type Head = (Option<i64>, u64, StreamRangeReply, Option<u64>, u64);
    let (head, hists): (Head, Vec<HashMap<String, u64>>) = {
        let v: Vec<redis::Value> = p.query_async(conn).await?;
        let head = redis::from_redis_value(&redis::Value::Array(v[..5].to_vec()))?;
        let hists = v[5..]
            .iter()
            .map(redis::from_redis_value)
            .collect::<RedisResult<_>>()?;
        (head, hists)
    };
    let mut counts = [0u64; sketch::BUCKETS];
    for h in &hists {
        sketch::merge(&mut counts, h);
    }
    let oldest = oldest_unwritten(conn, &k.orders(), group).await?;
    Ok(Signals {
        stock: head.0.unwrap_or(0),
        live: head.1,
        admitted_old: admitted_through(&head.2),
        expired: head.3.unwrap_or(0),
        queue: head.4,
        p99_ms: sketch::quantile(&counts, 0.99),
        lag_ms: oldest.map_or(0, |t| (now_ms - t).max(0) as u64),
    })
}

/// The ms time of the oldest entry of `stream` the group has not acknowledged; `None`
/// when every entry was written (or there is no stream or group yet).
async fn oldest_unwritten<C: ConnectionLike + Send + Sync>(
    conn: &mut C,
    stream: &str,
    group: &str,
) -> RedisResult<Option<i64>> {
    let exists: bool = conn.exists(stream).await?;
    if !exists {
        return Ok(None);
    }
    let groups: StreamInfoGroupsReply = conn.xinfo_groups(stream).await?;
    let Some(g) = groups.groups.into_iter().find(|g| g.name == group) else {
        return Ok(None);
    };
    let pending: StreamPendingReply = conn.xpending(stream, group).await?;
    let first_pending = match &pending {
        StreamPendingReply::Data(d) => id_ms(&d.start_id),
        StreamPendingReply::Empty => None,
    };
    let next: StreamRangeReply = conn
        .xrange_count(stream, format!("({}", g.last_delivered_id), "+", 1)
        .await?;
    let first_unread = next.ids.first().and_then(|e| id_ms(&e.id));
    Ok(match (first_pending, first_unread) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// How many tokens the admission log's entry (the last batch before a time) says were
/// admitted up to and with it: `first + n − 1`.
fn admitted_through(r: &StreamRangeReply) -> u64 {
    let Some(e) = r.ids.first() else { return 0 };
    let field = |f: &str| e.get::<u64>(f).unwrap_or(0);
    (field("first") + field("n")).saturating_sub(1)
}

/// The ms part of a stream entry id (`<ms>-<seq>`).
fn id_ms(id: &str) -> Option<i64> {
    id.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn stream_ids_carry_their_time() {
        assert_eq!(super::id_ms("1700000000123-4"), Some(1_700_000_000_123));
        assert_eq!(super::id_ms("x-1"), None);
    }
}
