//! Keeps a model forecast (vq_core::simulate::forecast) of every drop with buyers waiting,
//! refreshed once per push interval per drop on each api node, never per socket: one Redis
//! pipeline for the drop's state, the model on a blocking thread, the table handed to the
//! meter, which attaches it to every tick's outlook.
//!
//! Abandonment is modelled as a range, not a share: nobody is told the drop's no-show share
//! (the manager's `expected_abandon` is a guess, 0 unless set), so the forecast must cover
//! what it does not know. The range is an Agresti–Coull interval (90 %, two-sided) around
//! the share measured on tokens issued at least one TTL ago, with the prior weighing
//! `PRIOR_TOKENS` tokens: wide at the start (about 0–0.45 with the default prior), a few
//! points wide once a few hundred tokens resolved. A token expiring now was issued exactly
//! one TTL ago, so expired tokens over tokens issued up to one TTL ago is the share among
//! tokens that have all resolved (a plain expired / issued ratio would count still-pending
//! abandoners as buyers and read low).

use super::Pinned;
use crate::AppState;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use vq_core::domain::DropId;
use vq_core::simulate::{forecast, State};

/// Live tokens read per refresh (soonest expiries first); the model starts from these.
const MAX_TOKENS: isize = 20_000;
/// Weight of the prior, in tokens: the measured share takes over as resolved tokens pile up.
const PRIOR_TOKENS: f64 = 4.0;
/// z of the abandonment range (1.645: 5 % on either side).
const Z: f64 = 1.645;
/// Samples of the admitted count kept per drop for the abandonment estimate.
const MAX_SAMPLES: usize = 2_048;

/// (Redis ms, admissions so far) samples of one drop, oldest first.
#[derive(Default)]
struct History(VecDeque<(i64, u64)>);

impl History {
    fn record(&mut self, now: i64, admitted: u64, ttl_ms: i64) {
        let spacing = (ttl_ms / 1_000).max(1);
        if self.0.back().is_none_or(|(t, _)| now - t >= spacing) {
            self.0.push_back((now, admitted));
        }
        while self.0.len() > MAX_SAMPLES || self.0.get(1).is_some_and(|(t, _)| now - t > ttl_ms * 2)
        {
            self.0.pop_front();
        }
    }

    /// Admissions up to `at`, if a sample that old exists.
    fn admitted_by(&self, at: i64) -> Option<u64> {
        self.0.iter().rev().find(|(t, _)| *t <= at).map(|(_, n)| *n)
    }
}

/// The abandonment range to model: (low, high) around the prior blended with what
/// resolved tokens measured.
pub fn abandon_range(prior: f64, expired: u64, issued_ttl_ago: Option<u64>) -> (f64, f64) {
    let issued = issued_ttl_ago.unwrap_or(0) as f64;
    let expired = (expired as f64).min(issued);
    let n = PRIOR_TOKENS + issued + Z * Z;
    let p = (prior.clamp(0.0, 1.0) * PRIOR_TOKENS + expired + Z * Z / 2.0) / n;
    let half = Z * (p * (1.0 - p) / n).sqrt();
    ((p - half).clamp(0.0, 1.0), (p + half).clamp(0.0, 1.0))
}

/// Refreshes every waiting drop's forecast every `every` until shutdown.
pub async fn run(st: AppState, every: Duration) {
    let mut histories: HashMap<DropId, History> = HashMap::new();
    let mut shutdown = st.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let drops = st.hub.meter.waiting();
        histories.retain(|d, _| drops.contains(d));
        for drop in drops {
            let h = histories.entry(drop).or_default();
            if let Err(e) = refresh(&st, drop, h).await {
                tracing::debug!(error = %e, drop = drop.get(), "forecast refresh failed");
            }
        }
    }
}

/// What one pipeline reads: cfg fields, counters, bucket, live tokens, queue length, time.
type Raw = (
    (Option<i64>, Option<u64>, Option<i64>, Option<f64>),
    (Option<String>, Option<f64>),
    (Option<i64>, Option<u64>, Option<u64>, Option<u64>),
    (Option<f64>, Option<i64>),
    Vec<(String, f64)>,
    u64,
    (u64, u64),
);

async fn refresh(st: &AppState, drop: DropId, h: &mut History) -> redis::RedisResult<()> {
    let k = st.keys.drop(drop);
    let raw: Raw = redis::pipe()
        .hget(k.cfg(), &["starts_at", "rate", "ttl", "overbook"])
        .hget(k.cfg(), &["sold_out_at", "expected_abandon"])
        .get(&[k.stock(), k.admitted(), k.left(), k.expired()])
        .hget(k.bucket(), &["level", "ts"])
        .zrange_withscores(k.expiry(), 0, MAX_TOKENS - 1)
        .zcard(k.queue())
        .cmd("TIME")
        .query_async(&mut st.redis.clone())
        .await?;
    let read_at = std::time::Instant::now();
    let Some((state, moved)) = state_of(raw, h) else {
        return Ok(());
    };
    let table = tokio::task::spawn_blocking(move || forecast(&state))
        .await
        .ok()
        .flatten();
    if let Some(table) = table {
        st.hub.meter.set_model(
            drop,
            Pinned {
                table,
                read_at,
                moved,
            },
        );
    }
    Ok(())
}

/// The model's input from one read (None when the drop is not fully there) and the moved
/// count (admitted + left) at the read.
fn state_of(raw: Raw, h: &mut History) -> Option<(State, u64)> {
    let (
        (starts_at, rate, ttl_ms, overbook),
        (sold_out_at, prior),
        counts,
        bucket,
        live,
        queue,
        time,
    ) = raw;
    let (stock, admitted, left, expired) = counts;
    let now = time.0 as i64 * 1000 + time.1 as i64 / 1000;
    let (rate, ttl_ms) = (rate?, ttl_ms?.max(1));
    let admitted = admitted.unwrap_or(0);
    h.record(now, admitted, ttl_ms);
    let started = starts_at.is_none_or(|s| s <= now);
    let level = match bucket {
        (Some(level), Some(ts)) if started => {
            let burst = rate.div_ceil(4).max(1) as f64;
            Some((level + (now - ts).max(0) as f64 * rate as f64 / 1000.0).min(burst))
        }
        _ => None,
    };
    let abandon = abandon_range(
        prior.unwrap_or(0.0),
        expired.unwrap_or(0),
        h.admitted_by(now - ttl_ms),
    );
    let state = State {
        queue,
        stock: stock?.max(0) as u64,
        rate,
        token_ttl_s: (ttl_ms as u64).div_ceil(1000),
        overbook: overbook.unwrap_or(1.5),
        abandon,
        start_in_s: starts_at.map_or(0.0, |s| (s - now).max(0) as f64 / 1000.0),
        sold_out: sold_out_at.is_some(),
        level,
        tokens: live
            .iter()
            .map(|(_, at)| (at - now as f64).max(0.0) / 1000.0)
            .collect(),
    };
    Some((state, admitted + left.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_wide_until_tokens_one_ttl_old_resolve_then_narrows_on_the_measure() {
        let (lo, hi) = abandon_range(0.0, 0, None);
        // Nothing measured, nothing told: 0 and 0.3 (and 0.4) are both inside.
        assert!(lo == 0.0 && (0.4..0.5).contains(&hi), "{lo} {hi}");
        assert_eq!(
            abandon_range(0.0, 5, Some(0)),
            (lo, hi),
            "nothing issued a TTL ago"
        );
        // 300 resolved, 90 expired: about 0.30 ± 0.04.
        let (lo, hi) = abandon_range(0.0, 90, Some(300));
        assert!(
            (0.25..0.27).contains(&lo) && (0.33..0.35).contains(&hi),
            "{lo} {hi}"
        );
        // 300 resolved, none expired: a hair above 0.
        let (lo, hi) = abandon_range(0.0, 0, Some(300));
        assert!(lo == 0.0 && hi < 0.02, "{lo} {hi}");
        // A prior moves the centre before anything resolved, but only by its weight.
        let (lo, hi) = abandon_range(0.3, 0, None);
        assert!(lo > 0.0 && hi > 0.6, "{lo} {hi}");
        // Expiries beyond the tokens issued a TTL ago (clock edges) count as at most all.
        assert_eq!(
            abandon_range(0.0, 500, Some(70)),
            abandon_range(0.0, 70, Some(70))
        );
    }

    #[test]
    fn the_history_answers_admissions_up_to_a_past_moment() {
        let mut h = History::default();
        for (t, n) in [(0, 0), (1_000, 150), (2_000, 300), (3_000, 330)] {
            h.record(t, n, 5_000);
        }
        assert_eq!(h.admitted_by(-1), None);
        assert_eq!(h.admitted_by(1_500), Some(150));
        assert_eq!(h.admitted_by(3_000), Some(330));
    }
}
