//! The admission-time forecast of a running drop: the model of `model.rs` started from the
//! drop's live state (queue, unreserved stock, live tokens and when they expire, bucket,
//! overbook factor, abandonment share) and run over several seeds, condensed into a small
//! table from a buyer's place in the queue to a range of when they should be admitted.
//!
//! The range is what a buyer can rely on, not a point: the abandonment share is itself
//! unknown (a range, `State::abandon`, narrowing as the drop's tokens resolve), so the
//! model runs at several shares across it. The low end (`eta_s`) is the earliest draw,
//! the high end (`eta_hi_s`) the latest upper quantile: a buyer admitted in the wave of
//! expiring tokens after the one the median expects is still inside it.
//!
//! Why a model and not a rate: where the overbook cap binds, admission stalls while
//! abandoned tokens wait out their TTL; a throughput average cannot see those stalls
//! coming, the model replays them. Cost: `SEEDS` runs of at most `MAX_ADMIT` admissions
//! each (the api computes one table per drop per push interval, not per socket).

use super::model::{admissions, Init};
use super::Params;

/// Runs per forecast at one share (SEEDS / 2 per share when it is a range); the low end is
/// the earliest draw over all runs, the high end the `HI_RANK`th tenth of a share's sorted
/// draws (the latest over the shares).
pub const SEEDS: usize = 10;
/// Shares modelled across an abandonment range (both ends and evenly between).
const SHARES: usize = 5;
/// 9 tenths: about the 90th percentile.
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
    /// Share of admitted buyers who never buy, as the range (low, high) it is believed in.
    pub abandon: (f64, f64),
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
    pub lo_ms: Vec<u32>,
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
    let lo = s.abandon.0.clamp(0.0, 1.0);
    let hi = s.abandon.1.clamp(lo, 1.0);
    // One share when the range is a point; else SHARES evenly spaced across it, because
    // the latest admission of a place is not always at the range's high end (more
    // abandoners free more slots per wave of expiring tokens).
    let (shares, seeds) = if hi > lo {
        (SHARES, SEEDS / 2)
    } else {
        (1, SEEDS)
    };
    let groups: Vec<Vec<Vec<f32>>> = (0..shares)
        .map(|i| {
            let abandon = lo + (hi - lo) * i as f64 / (shares.max(2) - 1) as f64;
            (0..seeds as u64)
                .map(|seed| {
                    let p = Params {
                        buyers,
                        stock: s.stock,
                        rate: s.rate,
                        token_ttl_s: s.token_ttl_s.max(1),
                        abandon,
                        fail: 0.0,
                        overbook: s.overbook.max(1.0),
                        seed: (seed + i as u64 * SEEDS as u64).wrapping_mul(0x9E37_79B9) ^ s.queue,
                    };
                    admissions(&p, &init, buyers as usize)
                })
                .collect()
        })
        .collect();
    table(&groups)
}

/// Seconds at `place` in each run, "never" (sold out first) as `f32::MAX`, sorted.
fn draws_at(runs: &[Vec<f32>], place: usize, out: &mut Vec<f32>) {
    out.clear();
    out.extend(
        runs.iter()
            .map(|r| r.get(place).copied().unwrap_or(f32::MAX)),
    );
    out.sort_by(f32::total_cmp);
}

/// The `HI_RANK`th tenth of sorted draws, when at least half of them admit the place
/// (else that share would not admit this buyer: no time to promise); "never" is no time:
/// then the latest finite draw.
fn upper(draws: &[f32]) -> Option<f32> {
    let finite = draws.iter().rposition(|d| *d < f32::MAX)?;
    if finite + 1 < draws.len().div_ceil(2) {
        return None;
    }
    let rank = (draws.len() * HI_RANK).div_ceil(10).clamp(1, draws.len());
    Some(draws[rank - 1].min(draws[finite]))
}

fn median_len(runs: &[Vec<f32>]) -> usize {
    let mut lens: Vec<usize> = runs.iter().map(Vec::len).collect();
    lens.sort_unstable();
    lens[lens.len() / 2]
}

/// Condenses the runs of every share: a place is in the table while at least half the
/// runs of one share admit it. Low end: the earliest draw of any share; high end: the
/// latest upper quantile over the shares that admit the place.
fn table(groups: &[Vec<Vec<f32>>]) -> Option<Table> {
    let places = groups.iter().map(|g| median_len(g)).max().unwrap_or(0);
    if places == 0 {
        return None;
    }
    let step = places.div_ceil(ROWS).max(1);
    let (mut lo_ms, mut hi_ms) = (Vec::new(), Vec::new());
    let mut draws = Vec::with_capacity(SEEDS);
    for place in (0..places).step_by(step) {
        let (mut lo, mut hi) = (f32::MAX, 0f32);
        for g in groups {
            draws_at(g, place, &mut draws);
            lo = lo.min(draws[0]);
            hi = upper(&draws).map_or(hi, |u| hi.max(u));
        }
        lo_ms.push(ms(lo));
        hi_ms.push(ms(hi.max(lo)));
    }
    Some(Table {
        step: step as u32,
        lo_ms,
        hi_ms,
    })
}

fn ms(s: f32) -> u32 {
    (s as f64 * 1000.0).round().min(u32::MAX as f64) as u32
}

impl Table {
    /// (low, high) seconds from the table's moment until place `place` is admitted,
    /// interpolated between rows; None past the last row (not forecast).
    pub fn at(&self, place: u64) -> Option<(f64, f64)> {
        let step = u64::from(self.step.max(1));
        let i = (place / step) as usize;
        let last = self.lo_ms.len().checked_sub(1)?;
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
        Some((lerp(&self.lo_ms), lerp(&self.hi_ms)))
    }
}

#[cfg(test)]
#[path = "forecast_tests.rs"]
mod tests;
