//! The admission-time forecast of a running drop: the model of `model.rs` started from the
//! drop's live state (queue, unreserved stock, live tokens and when they expire, bucket,
//! overbook factor, abandonment share) and run over several seeds, condensed into a small
//! table from a buyer's place in the queue to when they should be admitted: the median over
//! the seeds and an upper quantile (`eta_hi_s`).
//!
//! Why a model and not a rate: where the overbook cap binds, admission stalls while
//! abandoned tokens wait out their TTL; a throughput average cannot see those stalls
//! coming, the model replays them. Cost: `SEEDS` runs of at most `MAX_ADMIT` admissions
//! each (the api computes one table per drop per push interval, not per socket).

use super::model::{admissions, Init};
use super::Params;

/// Runs per forecast; the central value is their median, the high one the `HI_RANK`th.
pub const SEEDS: usize = 10;
/// 9th of 10 sorted draws: about the 90th percentile.
const HI_RANK: usize = 9;
/// Admissions modelled per run; places past it get no forecast (the caller falls back
/// to the measured throughput).
pub const MAX_ADMIT: usize = 50_000;
/// Rows kept in a table; beyond that, evenly spaced places with interpolation between.
const ROWS: usize = 256;

/// A running drop as the forecast needs it. Times in seconds from the moment it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// Buyers waiting (the model also admits a few beyond, harmlessly: see `forecast`).
    pub queue: u64,
    /// Unreserved units (the stock counter).
    pub stock: u64,
    pub rate: u64,
    pub token_ttl_s: u64,
    pub overbook: f64,
    /// Expected share of admitted buyers who never buy.
    pub abandon: f64,
    /// Seconds until the sale starts (0 once it runs).
    pub start_in_s: f64,
    pub sold_out: bool,
    /// Token bucket level, None when full.
    pub level: Option<f64>,
    /// Live tokens: seconds until each expires.
    pub tokens: Vec<f64>,
}

/// Place in the queue (0 = next) → seconds until admission, in milliseconds so the type
/// stays `Eq` (the api compares room events). Row `i` is place `i × step`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub step: u32,
    pub central_ms: Vec<u32>,
    pub hi_ms: Vec<u32>,
}

/// A live token younger than this may still be used (the model's purchase delay plus
/// slack for a tick and push delivery); older ones are taken as abandoned.
const FRESH_S: f64 = 0.25;

/// The table for `s`, or None when nobody waits or no unit is left to admit for.
pub fn forecast(s: &State) -> Option<Table> {
    if s.queue == 0 || s.stock == 0 || s.rate == 0 {
        return None;
    }
    let ttl = s.token_ttl_s as f64;
    let (fresh, stale): (Vec<f64>, Vec<f64>) =
        s.tokens.iter().partition(|&&left| ttl - left < FRESH_S);
    let init = Init {
        start_in_s: s.start_in_s,
        sold_out: s.sold_out,
        level: s.level,
        stale,
        fresh: fresh.len() as u64,
    };
    // A few phantom buyers past the queue keep the last places' draws complete; they
    // change nothing for the real ones ahead of them.
    let buyers = s.queue.saturating_add(s.rate).min(MAX_ADMIT as u64);
    let runs: Vec<Vec<f32>> = (0..SEEDS as u64)
        .map(|seed| {
            let p = Params {
                buyers,
                stock: s.stock,
                rate: s.rate,
                token_ttl_s: s.token_ttl_s.max(1),
                abandon: s.abandon.clamp(0.0, 1.0),
                fail: 0.0,
                overbook: s.overbook.max(1.0),
                seed: seed.wrapping_mul(0x9E37_79B9) ^ s.queue,
            };
            admissions(&p, &init, buyers as usize)
        })
        .collect();
    table(&runs)
}

/// Condenses the runs: a place is in the table while at least half the runs admit it.
fn table(runs: &[Vec<f32>]) -> Option<Table> {
    let mut lens: Vec<usize> = runs.iter().map(Vec::len).collect();
    lens.sort_unstable();
    let places = lens[lens.len() / 2];
    if places == 0 {
        return None;
    }
    let step = places.div_ceil(ROWS).max(1);
    let (mut central_ms, mut hi_ms) = (Vec::new(), Vec::new());
    let mut draws = Vec::with_capacity(runs.len());
    for place in (0..places).step_by(step) {
        draws.clear();
        // A run that never admits this place (sold out first) counts as "never": last.
        draws.extend(
            runs.iter()
                .map(|r| r.get(place).copied().unwrap_or(f32::MAX)),
        );
        draws.sort_by(f32::total_cmp);
        let pick = |rank: usize| draws[rank.min(draws.len()) - 1];
        let mid = pick(draws.len().div_ceil(2));
        // "Never" is no time: the high end is then the latest run that did admit it.
        let finite = draws.iter().rposition(|d| *d < f32::MAX).unwrap_or(0);
        let hi = pick((draws.len() * HI_RANK).div_ceil(SEEDS)).min(draws[finite]);
        central_ms.push(ms(mid));
        hi_ms.push(ms(hi));
    }
    Some(Table {
        step: step as u32,
        central_ms,
        hi_ms,
    })
}

fn ms(s: f32) -> u32 {
    (s as f64 * 1000.0).round().min(u32::MAX as f64) as u32
}

impl Table {
    /// (central, high) seconds from the table's moment until place `place` is admitted,
    /// interpolated between rows; None past the last row (not forecast).
    pub fn at(&self, place: u64) -> Option<(f64, f64)> {
        let step = u64::from(self.step.max(1));
        let i = (place / step) as usize;
        let last = self.central_ms.len().checked_sub(1)?;
        if i > last {
            return None;
        }
        let frac = (place % step) as f64 / step as f64;
        let lerp = |v: &[u32]| {
            let a = v[i] as f64;
            let b = v[(i + 1).min(last)] as f64;
            (a + (b - a) * frac) / 1000.0
        };
        if i == last && frac > 0.0 {
            return None;
        }
        Some((lerp(&self.central_ms), lerp(&self.hi_ms)))
    }
}

#[cfg(test)]
#[path = "forecast_tests.rs"]
mod tests;
