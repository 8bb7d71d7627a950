//! The discrete-event loop: admission ticks as in lua/admit.lua, buyer events in between.

use super::{abandons, Params, Prediction, Rng, BUY_DELAY_S, HORIZON_S, RESTOCK_DELAY_S, TICK_S};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Time in microseconds, so events order exactly.
type Us = u64;

fn us(s: f64) -> Us {
    (s * 1e6).round() as Us
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// An abandoned token reaches its expiry.
    Expire,
    /// A buyer's purchase arrives.
    Buy,
    /// A declined payment's unit is back.
    Restock,
}

struct Drop {
    p: Params,
    rng: Rng,
    events: BinaryHeap<Reverse<(Us, Event)>>,
    waiting: u64,
    stock: u64,
    live: u64,
    level: f64,
    bucket_ts: Us,
    /// Batches of the last second: (time, count).
    window: VecDeque<(Us, u64)>,
    waits: Vec<f32>,
    /// Tokens drawn so far: the next one's 1-based admission number (`seq`).
    drawn: u64,
    sold: u64,
    served: u64,
    sold_out_at: Option<Us>,
}

/// Where a run begins when it is not a fresh drop at its start: a running drop's state
/// (the forecast of `forecast.rs`). Times are seconds from that state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Init {
    /// Admission begins at the first tick at or after this.
    pub start_in_s: f64,
    /// The drop sold out once: the cap factor is 1 (admit.lua's `sold_out_at`).
    pub sold_out: bool,
    /// Token bucket level now; None: full (a drop not started yet).
    pub level: Option<f64>,
    /// Live tokens already abandoned: seconds until each expires.
    pub stale: Vec<f64>,
    /// Live tokens issued so recently that they may still be used: drawn like new ones.
    pub fresh: u64,
}

/// Runs the model to the end (nobody waiting, nothing pending) or the horizon.
pub fn run(p: &Params) -> Prediction {
    simulate(p, &Init::default(), usize::MAX).predict()
}

/// Admission times (s from the state of `init`) in admission order, at most `max_admit`.
pub(crate) fn admissions(p: &Params, init: &Init, max_admit: usize) -> Vec<f32> {
    simulate(p, init, max_admit).waits
}

fn simulate(p: &Params, init: &Init, max_admit: usize) -> Drop {
    let mut d = Drop {
        p: *p,
        rng: Rng::new(p.seed),
        events: BinaryHeap::new(),
        waiting: p.buyers,
        stock: p.stock,
        live: 0,
        level: init.level.unwrap_or(burst(p.rate)).min(burst(p.rate)),
        bucket_ts: 0,
        window: VecDeque::new(),
        waits: Vec::with_capacity(p.buyers.min(p.stock.saturating_mul(4)) as usize),
        drawn: 0,
        sold: 0,
        served: 0,
        sold_out_at: init.sold_out.then_some(0),
    };
    d.seed_tokens(init);
    let tick = us(TICK_S);
    let mut now: Us = us(init.start_in_s.max(0.0)).div_ceil(tick) * tick;
    d.bucket_ts = if init.level.is_some() { 0 } else { now };
    while now <= us(HORIZON_S) && d.waits.len() < max_admit {
        d.settle(now);
        if d.waiting == 0 && d.events.is_empty() {
            break;
        }
        let blocked = d.admit(now);
        now = match (blocked || d.waiting == 0, d.events.peek()) {
            // Nothing changes until the next event: jump to the first tick after it.
            (true, Some(Reverse((at, _)))) => (*at).max(now + 1).div_ceil(tick) * tick,
            _ => now + tick,
        };
    }
    d
}

fn burst(rate: u64) -> f64 {
    rate.div_ceil(4).max(1) as f64
}

impl Drop {
    /// The live tokens of a running drop: stale ones expire, fresh ones are new draws.
    fn seed_tokens(&mut self, init: &Init) {
        for &left in &init.stale {
            self.live += 1;
            self.events
                .push(Reverse((us(left.max(0.0)), Event::Expire)));
        }
        for _ in 0..init.fresh {
            self.live += 1;
            let ev = self.fate(0);
            self.events.push(Reverse(ev));
        }
    }

    /// Applies every buyer event up to `now`, in time order.
    fn settle(&mut self, now: Us) {
        while let Some(&Reverse((at, ev))) = self.events.peek() {
            if at > now {
                break;
            }
            self.events.pop();
            match ev {
                Event::Expire => self.live -= 1,
                Event::Buy => self.buy(at),
                Event::Restock => {
                    self.stock += 1;
                    self.sold -= 1;
                }
            }
        }
    }

    fn buy(&mut self, at: Us) {
        self.live -= 1;
        if self.stock == 0 {
            return;
        }
        self.stock -= 1;
        self.sold += 1;
        if self.rng.unit() < self.p.fail {
            self.events
                .push(Reverse((at + us(RESTOCK_DELAY_S), Event::Restock)));
        } else {
            self.served += 1;
        }
        if self.stock == 0 && self.sold_out_at.is_none() {
            // Everyone still waiting is told sold_out and leaves.
            self.sold_out_at = Some(at);
            self.waiting = 0;
        }
    }

    /// One admission tick; true when the live-token cap (not the rate) held it back.
    fn admit(&mut self, now: Us) -> bool {
        if self.waiting == 0 || self.stock == 0 {
            return false;
        }
        let rate = self.p.rate;
        let elapsed = now.saturating_sub(self.bucket_ts) as f64 / 1e6;
        self.level = (self.level + elapsed * rate as f64).min(burst(rate));
        self.bucket_ts = now;
        while self
            .window
            .front()
            .is_some_and(|(t, _)| *t + 1_000_000 <= now)
        {
            self.window.pop_front();
        }
        let used: u64 = self.window.iter().map(|(_, n)| n).sum();
        let factor = if self.sold_out_at.is_some() {
            1.0
        } else {
            self.p.overbook
        };
        let cap = (self.stock as f64 * factor).ceil() as u64;
        let room = cap.saturating_sub(self.live);
        let want = (self.level.floor() as u64)
            .min(rate.saturating_sub(used))
            .min(room)
            .min(self.waiting);
        for _ in 0..want {
            self.issue(now);
        }
        if want > 0 {
            self.level -= want as f64;
            self.window.push_back((now, want));
        }
        room == 0
    }

    fn issue(&mut self, now: Us) {
        self.waiting -= 1;
        self.live += 1;
        self.waits.push((now as f64 / 1e6) as f32);
        let ev = self.fate(now);
        self.events.push(Reverse(ev));
    }

    /// What a token issued at `at` comes to: abandoned (expires) or used. Drawn from its
    /// admission number, not from the run's stream, so a `loadtest drop --seed` with the
    /// same seed has the same buyers abandon (see [`abandons`]).
    fn fate(&mut self, at: Us) -> (Us, Event) {
        self.drawn += 1;
        if abandons(self.p.seed, self.drawn, self.p.abandon) {
            (at + self.p.token_ttl_s * 1_000_000, Event::Expire)
        } else {
            (at + us(BUY_DELAY_S), Event::Buy)
        }
    }

    fn predict(mut self) -> Prediction {
        self.waits.sort_by(f32::total_cmp);
        let q = |p: f64| -> f64 {
            if self.waits.is_empty() {
                return 0.0;
            }
            let i = ((p * self.waits.len() as f64).ceil() as usize).clamp(1, self.waits.len());
            round3(self.waits[i - 1] as f64)
        };
        let tokens = self.waits.len() as u64;
        Prediction {
            sell_out_s: self.sold_out_at.map(|t| round3(t as f64 / 1e6)),
            wait_p50_s: q(0.50),
            wait_p90_s: q(0.90),
            wait_p99_s: q(0.99),
            tokens_per_unit: (self.sold > 0).then(|| round3(tokens as f64 / self.sold as f64)),
            served_share: round3(self.served as f64 / self.p.buyers.max(1) as f64),
            tokens_issued: tokens,
            units_sold: self.sold,
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
