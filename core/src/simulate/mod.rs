//! What-if simulator: a pure, deterministic (seeded) discrete-event model of one drop, so a
//! manager can see sell-out time, waits, tokens per unit and the share of buyers served
//! before running the drop. Used by `vitaqueue simulate` and `POST /v1/admin/simulate`.
//!
//! The model follows lua/admit.lua tick by tick (50 ms ticks, token bucket with burst
//! ceil(rate/4), at most `rate` admissions in any 1000 ms, live tokens capped at
//! ceil(unreserved stock × overbook), factor 1 after the sell-out) and the buyers of
//! `loadtest drop`: everyone waits in the pre-queue before the start; an admitted buyer
//! abandons with probability `abandon` (the token then expires after `token_ttl_s`), else
//! buys after [`BUY_DELAY_S`]; a buyer's payment is declined with probability `fail` and the
//! unit comes back [`RESTOCK_DELAY_S`] later. Buyers still waiting when the stock reaches 0
//! are told `sold_out` and leave (what `loadtest drop` buyers do), so a unit given back
//! after that stays unsold.
//!
//! Arrows: pure computation, no I/O; depends on nothing else in the crate.

mod forecast;
mod model;

pub use forecast::{forecast, State, Table};
pub use model::run;
use serde::{Deserialize, Serialize};

/// Admission tick (the default `admission.tick_ms`).
pub const TICK_S: f64 = 0.05;
/// Admitted → purchase answered (push delivery plus the purchase request on loopback).
pub const BUY_DELAY_S: f64 = 0.02;
/// Purchase → a declined payment's unit is back in stock (order written, paid, restocked).
pub const RESTOCK_DELAY_S: f64 = 1.0;
/// Simulated time after which the run stops (a drop that never sells out).
pub const HORIZON_S: f64 = 86_400.0;
/// Largest crowd one run may model (memory: one f32 per admitted buyer).
pub const MAX_BUYERS: u64 = 1_000_000;
pub const MAX_STOCK: u64 = 1_000_000;
pub const MAX_RATE: u64 = 100_000;
pub const MAX_TTL_S: u64 = 3_600;
/// The drop setting allows the same range (api drops/spec.rs).
pub const MAX_OVERBOOK: f64 = 100.0;

/// One what-if question. Field names are the HTTP body's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub buyers: u64,
    pub stock: u64,
    /// Admissions per second.
    pub rate: u64,
    pub token_ttl_s: u64,
    /// Share of admitted buyers who never buy.
    pub abandon: f64,
    /// Share of buyers whose payment is declined.
    pub fail: f64,
    /// Live tokens per unreserved unit (the drop's `overbook`).
    pub overbook: f64,
    /// Random seed (same seed, same answer).
    #[serde(default)]
    pub seed: u64,
}

/// What the model predicts. Field names are the HTTP answer's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Prediction {
    /// Start → the last unit reserved; `null` when the stock never runs out in the horizon.
    pub sell_out_s: Option<f64>,
    /// Start → admission, over the buyers admitted.
    pub wait_p50_s: f64,
    pub wait_p90_s: f64,
    pub wait_p99_s: f64,
    /// Tokens issued per unit sold (`null` when nothing sold).
    pub tokens_per_unit: Option<f64>,
    /// Buyers who bought and paid (or whose payment was not declined), over all buyers.
    pub served_share: f64,
    pub tokens_issued: u64,
    pub units_sold: u64,
}

/// Which parameter is out of range, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl Params {
    /// Every bound the model needs to stay small and meaningful; all problems, not the first.
    pub fn check(&self) -> Result<(), Vec<Invalid>> {
        let mut bad = Vec::new();
        let mut int = |field, v: u64, max: u64| {
            if !(1..=max).contains(&v) {
                bad.push(Invalid {
                    field,
                    message: format!("must be between 1 and {max}"),
                });
            }
        };
        int("buyers", self.buyers, MAX_BUYERS);
        int("stock", self.stock, MAX_STOCK);
        int("rate", self.rate, MAX_RATE);
        int("token_ttl_s", self.token_ttl_s, MAX_TTL_S);
        for (field, v) in [("abandon", self.abandon), ("fail", self.fail)] {
            if !(0.0..=1.0).contains(&v) {
                bad.push(Invalid {
                    field,
                    message: "must be a share between 0 and 1".into(),
                });
            }
        }
        if !(1.0..=MAX_OVERBOOK).contains(&self.overbook) {
            bad.push(Invalid {
                field: "overbook",
                message: format!("must be between 1 and {MAX_OVERBOOK}"),
            });
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad)
        }
    }
}

/// Whether admission `seq` (1-based, the `seq` of the `admitted` message) of a run with
/// `seed` walks away: a pure function of the two, so `loadtest drop --seed S` has the same
/// buyers abandon as `vitaqueue simulate --seed S` (common random numbers: the comparison
/// of the two then measures the model, not two different draws of who abandons).
pub fn abandons(seed: u64, seq: u64, share: f64) -> bool {
    let mut r = Rng::new(seed ^ seq.wrapping_mul(0xD1B5_4A32_D192_ED03));
    r.unit() < share
}

/// SplitMix64: tiny, seedable and the same on every platform and crate version.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests;
