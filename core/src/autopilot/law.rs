//! The control law, a pure function: the drop's signals in, the next rate and why out.
//!
//! Shape: multiplicative decrease, additive increase (as TCP's congestion control). A missed
//! target halves the rate (straight to `min_rate` when missed twice over: a stalled worker
//! or a stuck Redis must not wait several intervals); with both targets held the rate climbs
//! back to the manager's rate in steps of a tenth of the band, and past it, towards
//! `base / (1 − no-show share)` (half the gap at a time), while admitted buyers leave
//! tokens unused. A binding holder
//! or stock cap (or an empty queue) holds the rate: a higher rate would admit nobody more, and
//! winding it up would only release a burst later.

use serde::{Deserialize, Serialize};

/// Why the rate changed; on the wire in the drop's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Purchase p99 over its target: back off.
    PurchaseP99,
    /// The oldest order not yet written to PostgreSQL is older than its target: back off.
    OrderLag,
    /// Targets hold again: climb back to the manager's rate.
    Recover,
    /// Targets hold and admitted buyers leave tokens unused: admit more to compensate (or
    /// fewer, once the no-shows fall).
    NoShows,
    /// The rate was outside the autopilot's band (the band was edited): clamped.
    Bounds,
    /// A manager set the rate by hand (autopilot off).
    Manual,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::PurchaseP99 => "purchase_p99",
            Reason::OrderLag => "order_lag",
            Reason::Recover => "recover",
            Reason::NoShows => "no_shows",
            Reason::Bounds => "bounds",
            Reason::Manual => "manual",
        }
    }
}

/// Below this many settled tokens (bought or expired) the no-show share is noise.
pub const MIN_RESOLVED: u64 = 20;
/// The no-show share counted at most (beyond it the compensation would be tenfold).
pub const MAX_NO_SHOW: f64 = 0.9;

/// One decision's inputs. Rates are admissions per second.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    pub rate: u32,
    /// The manager's rate (the drop's `admission_rate`): where recovery climbs back to.
    pub base: u32,
    pub min_rate: u32,
    pub max_rate: u32,
    pub target_p99_ms: u64,
    pub target_lag_ms: u64,
    /// Fleet-wide purchase p99 over the last seconds; `None` when nobody bought.
    pub p99_ms: Option<u64>,
    /// Age of the oldest order-stream entry not yet written to PostgreSQL (0: none).
    pub lag_ms: u64,
    /// Tokens that expired unused so far, and tokens whose fate is known (admitted at least
    /// one token TTL ago: bought or expired by now).
    pub expired: u64,
    pub resolved: u64,
    /// A holder cap or the stock-aware cap binds, or nobody waits.
    pub capped: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub rate: u32,
    pub reason: Reason,
}

/// The next rate, or `None` to keep the current one.
pub fn decide(i: &Inputs) -> Option<Decision> {
    let (lo, hi) = (i.min_rate.max(1), i.max_rate.max(i.min_rate.max(1)));
    let change = |rate: u32, reason| (rate != i.rate).then_some(Decision { rate, reason });
    if i.rate < lo || i.rate > hi {
        return change(i.rate.clamp(lo, hi), Reason::Bounds);
    }
    if let Some(d) = back_off(i.lag_ms, i.target_lag_ms, i.rate, lo) {
        return change(d, Reason::OrderLag);
    }
    if let Some(d) = i
        .p99_ms
        .and_then(|p| back_off(p, i.target_p99_ms, i.rate, lo))
    {
        return change(d, Reason::PurchaseP99);
    }
    if i.capped {
        return None;
    }
    let base = i.base.clamp(lo, hi);
    let goal = goal(base, i.expired, i.resolved).clamp(lo, hi);
    let step = (hi - lo).div_ceil(10).max(1);
    if i.rate < goal {
        // Recovery climbs additively (the fault may come back); compensating for no-shows
        // closes half the gap at once (at least a step): the sell-out is on the clock.
        let jump = if i.rate >= base {
            (goal - i.rate).div_ceil(2)
        } else {
            0
        };
        let next = (i.rate + step.max(jump)).min(goal);
        let why = if next <= base {
            Reason::Recover
        } else {
            Reason::NoShows
        };
        change(next, why)
    } else if i.rate > goal {
        change(i.rate.saturating_sub(step).max(goal), Reason::NoShows)
    } else {
        None
    }
}

/// The backed-off rate when `signal` misses `target`: half, or the floor when missed twice
/// over; `None` when the target holds.
fn back_off(signal: u64, target: u64, rate: u32, floor: u32) -> Option<u32> {
    if signal <= target {
        return None;
    }
    if signal >= target.saturating_mul(2) {
        return Some(floor);
    }
    Some((rate / 2).max(floor))
}

/// The rate that, after `expired / resolved` of the tokens go unused, buys at `base`.
fn goal(base: u32, expired: u64, resolved: u64) -> u32 {
    if resolved < MIN_RESOLVED {
        return base;
    }
    let share = (expired as f64 / resolved as f64).min(MAX_NO_SHOW);
    (f64::from(base) / (1.0 - share))
        .round()
        .min(f64::from(u32::MAX)) as u32
}

#[cfg(test)]
#[path = "law_tests.rs"]
mod tests;
