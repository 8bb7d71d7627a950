//! What a waiting buyer can expect, shared by every position push of one drop: units left,
//! whether a unit may still reach them (`chance`), and the ETA from the admission
//! throughput actually measured (EWMA over ticks), not only the configured rate.
//!
//! Computed once per tick per drop (`Meter::observe`, called by the hub), never per socket:
//! a session only combines it with its own `ahead`. Memory is one small entry per drop
//! heard from, pruned when idle.
//!
//! Where this node has a model forecast of the drop (forecast.rs, refreshed by refresh.rs
//! once per push interval), the ETA comes from it instead: the throughput averages cannot
//! foresee the stalls of the overbook cap, the model replays them.

mod forecast;
pub mod refresh;

pub use forecast::Lookup;
pub(crate) use forecast::Pinned;
use std::sync::Arc;

use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use vq_core::domain::{AdmitStatus, DropId, Tick};

/// Time constants (ms) of the fast and slow throughput averages.
const FAST_MS: f64 = 2_000.0;
const SLOW_MS: f64 = 10_000.0;
/// `eta_hi_s` adds this share on top of the slower of the two averages.
const HI_MARGIN: f64 = 1.15;
/// `eta_hi_s` from the model: its high end × MODEL_SLACK + MODEL_SLACK_S (what the model
/// leaves out: the tick phase, push delivery and real buyers' purchase time).
const MODEL_SLACK: f64 = 1.05;
const MODEL_SLACK_S: f64 = 0.1;
/// `eta_s` from the model: its low end less this (an admission a tick earlier than the
/// model's tick grid, a position delivered late), rounded down to the tenth.
const MODEL_EARLY_S: f64 = 0.1;
/// Drops remembered; past that, entries idle for a minute are dropped.
const MAX_DROPS: usize = 1_024;

/// Whether a unit may still reach a waiting buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Chance {
    /// The buyers ahead plus the live token holders fit in the units left.
    Likely,
    /// Units are short for everyone ahead, but some may still come back or go unbought.
    Unlikely,
    /// Stock is 0 with no live token and no open reservation: nothing can come back.
    None,
}

/// One drop's figures at its last tick. Throughputs in milli-positions per second (so the
/// type stays `Eq` for the hub's events); 0 means not measured yet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outlook {
    pub units_left: u64,
    pub live: u64,
    pub open: u64,
    pub fast_milli: u64,
    pub slow_milli: u64,
    /// The model forecast as of this tick, when this node has one.
    pub model: Option<Lookup>,
}

impl Outlook {
    pub fn from_counts(remaining: i64, live: u64, open: u64) -> Outlook {
        Outlook {
            units_left: remaining.max(0) as u64,
            live,
            open,
            ..Outlook::default()
        }
    }

    pub fn chance(&self, ahead: u64) -> Chance {
        if self.units_left == 0 && self.live == 0 && self.open == 0 {
            Chance::None
        } else if ahead.saturating_add(self.live) < self.units_left {
            Chance::Likely
        } else {
            Chance::Unlikely
        }
    }

    /// (low, high) seconds until `ahead` buyers have moved on, a range the admission
    /// should fall in: from the model forecast where it has the place, else from the
    /// measured throughput (the configured `rate` before one); 0.1 s resolution.
    pub fn eta(&self, ahead: u64, rate: u64) -> (f64, f64) {
        if let Some((lo, hi)) = self.model.as_ref().and_then(|m| m.eta(ahead)) {
            let lo = ((lo - MODEL_EARLY_S).max(0.0) * 10.0).floor() / 10.0;
            return (lo, tenths((hi * MODEL_SLACK + MODEL_SLACK_S).max(lo)));
        }
        let rate = rate.max(1) as f64;
        let (fast, slow) = match (self.fast_milli, self.slow_milli) {
            (0, _) | (_, 0) => (rate, rate),
            (f, s) => (f as f64 / 1000.0, s as f64 / 1000.0),
        };
        let central = ahead as f64 / fast;
        let hi = ahead as f64 / fast.min(slow) * HI_MARGIN;
        (tenths(central), tenths(hi.max(central)))
    }
}

fn tenths(s: f64) -> f64 {
    (s * 10.0).ceil() / 10.0
}

#[derive(Debug, Clone)]
struct Ewma {
    now: i64,
    moved: u64,
    fast: f64,
    slow: f64,
    /// Whether the last tick had buyers waiting in a sale not over (refresh.rs forecasts
    /// only those drops).
    waiting: bool,
    model: Option<Arc<Pinned>>,
}

/// The per-drop throughput averages of this node.
#[derive(Default)]
pub struct Meter {
    drops: Mutex<HashMap<DropId, Ewma>>,
}

impl Meter {
    /// Folds one tick in and returns the drop's outlook. Throughput is measured only while
    /// the sale runs with buyers waiting (an empty queue says nothing about capacity).
    pub fn observe(&self, drop: DropId, t: &Tick) -> Outlook {
        let moved = t.admitted_total + t.left_total;
        let mut drops = self.drops.lock().expect("meter lock");
        if drops.len() >= MAX_DROPS {
            drops.retain(|_, e| t.now - e.now < 60_000);
        }
        let e = drops.entry(drop).or_insert(Ewma {
            now: t.now,
            moved,
            fast: 0.0,
            slow: 0.0,
            waiting: false,
            model: None,
        });
        let dt = (t.now - e.now) as f64;
        let measuring = t.status == AdmitStatus::Ok && (t.queue_len > 0 || moved > e.moved);
        if dt > 0.0 && measuring {
            let inst = moved.saturating_sub(e.moved) as f64 * 1000.0 / dt;
            // The first measurement starts both averages at the configured rate.
            if e.fast == 0.0 {
                e.fast = t.rate as f64;
                e.slow = t.rate as f64;
            }
            e.fast += (inst - e.fast) * (1.0 - (-dt / FAST_MS).exp());
            e.slow += (inst - e.slow) * (1.0 - (-dt / SLOW_MS).exp());
        }
        e.now = t.now;
        e.moved = moved;
        e.waiting =
            t.queue_len > 0 && matches!(t.status, AdmitStatus::Ok | AdmitStatus::NotStarted);
        if !e.waiting {
            e.model = None;
        }
        Outlook {
            fast_milli: (e.fast * 1000.0).round() as u64,
            slow_milli: (e.slow * 1000.0).round() as u64,
            model: e.model.as_ref().map(|m| Lookup::new(m, moved)),
            ..Outlook::from_counts(t.remaining, t.live, t.open)
        }
    }

    /// The last measured throughputs and forecast of a drop (zeros and None when none),
    /// for a fresh socket or an HTTP status read that has no tick at hand.
    pub fn last(&self, drop: DropId) -> (u64, u64, Option<Lookup>) {
        let drops = self.drops.lock().expect("meter lock");
        drops.get(&drop).map_or((0, 0, None), |e| {
            (
                (e.fast * 1000.0).round() as u64,
                (e.slow * 1000.0).round() as u64,
                e.model.as_ref().map(|m| Lookup::new(m, e.moved)),
            )
        })
    }

    /// Drops whose last tick had buyers waiting: the ones worth a forecast.
    pub fn waiting(&self) -> Vec<DropId> {
        let drops = self.drops.lock().expect("meter lock");
        drops
            .iter()
            .filter(|(_, e)| e.waiting)
            .map(|(d, _)| *d)
            .collect()
    }

    /// Installs a fresh forecast (refresh.rs); ignored when the drop stopped waiting.
    pub(crate) fn set_model(&self, drop: DropId, m: Pinned) {
        let mut drops = self.drops.lock().expect("meter lock");
        if let Some(e) = drops.get_mut(&drop).filter(|e| e.waiting) {
            e.model = Some(Arc::new(m));
        }
    }
}

/// What a position needs beyond the buyer's rank, read in one round trip.
pub struct Read {
    pub outlook: Outlook,
    /// The configured admission rate (at least 1).
    pub rate: u64,
    pub queue_len: u64,
}

/// The outlook read straight from Redis (stock, live tokens, open reservations, queue length)
/// plus this node's measured throughput: for the HTTP status and a socket's first push. One
/// pipeline, because the HTTP status is polled by every waiting buyer without a socket.
pub async fn read(st: &crate::AppState, id: DropId) -> redis::RedisResult<Read> {
    let k = st.keys.drop(id);
    let (rate, remaining, live, open, queue_len): (Option<u64>, Option<i64>, u64, u64, u64) =
        redis::pipe()
            .hget(k.cfg(), "rate")
            .get(k.stock())
            .zcard(k.expiry())
            .hlen(k.unpaid())
            .zcard(k.queue())
            .query_async(&mut st.redis.clone())
            .await?;
    let (fast_milli, slow_milli, model) = st.hub.meter.last(id);
    let o = Outlook {
        fast_milli,
        slow_milli,
        model,
        ..Outlook::from_counts(remaining.unwrap_or(0), live, open)
    };
    Ok(Read {
        outlook: o,
        rate: rate.unwrap_or(1).max(1),
        queue_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chance_follows_stock_live_tokens_and_reservations() {
        let o = Outlook::from_counts(10, 3, 0);
        assert_eq!(o.chance(6), Chance::Likely);
        assert_eq!(o.chance(7), Chance::Unlikely);
        assert_eq!(Outlook::from_counts(0, 0, 1).chance(0), Chance::Unlikely);
        assert_eq!(Outlook::from_counts(0, 0, 0).chance(0), Chance::None);
        assert_eq!(Outlook::from_counts(-2, 0, 0).chance(0), Chance::None);
    }

    #[test]
    fn eta_comes_from_the_model_forecast_where_it_has_the_place() {
        let table = vq_core::simulate::Table {
            step: 1,
            lo_ms: vec![0, 2_040, 30_000],
            hi_ms: vec![0, 3_000, 40_000],
        };
        let read_at = std::time::Instant::now() - std::time::Duration::from_millis(100);
        let pinned = Arc::new(Pinned {
            table,
            read_at,
            moved: 10,
        });
        // One buyer moved since the read: `ahead` 0 was place 1 then; 0.1 s has gone by.
        let o = Outlook {
            model: Some(Lookup::new(&pinned, 11)),
            ..Outlook::from_counts(5, 0, 0)
        };
        // Low: 2.04 − 0.1 s gone − 0.1 s, rounded down; high: 2.9 × 1.05 + 0.1, rounded up.
        assert_eq!(o.eta(0, 50), (1.8, 3.2));
        // A hair more than 0.1 s has gone by: 29.8 − ε rounds down to 29.7.
        assert_eq!(o.eta(1, 50), (29.7, 42.0));
        // Past the forecast's last place: the configured rate.
        assert_eq!(o.eta(2, 50), (0.1, 0.1));
    }

    #[test]
    fn eta_uses_the_measured_throughput_once_there_is_one() {
        let mut o = Outlook::from_counts(10, 0, 0);
        assert_eq!(o.eta(100, 50), (2.0, 2.3));
        o.fast_milli = 25_000;
        o.slow_milli = 20_000;
        let (c, hi) = o.eta(100, 50);
        assert_eq!(c, 4.0);
        assert_eq!(hi, 5.8);
    }
}
