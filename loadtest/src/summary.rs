//! The run's summary: what the buyers saw, checked against what the stores say.

use crate::audit::StoreView;
use crate::buyer::{BuyerResult, Outcome, Shared};
use crate::drop_args::DropArgs;
use crate::stats::percentile;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Instant;
use vq_core::domain::DropId;

#[derive(Debug, Serialize)]
pub struct Summary {
    pub drop_id: i64,
    pub buyers: usize,
    pub stock: i64,
    /// Units out of stock at the end (paid or awaiting payment), per PostgreSQL.
    pub sold: i64,
    pub reserved: i64,
    pub remaining: i64,
    pub bought_by_clients: usize,
    pub paid: usize,
    pub payment_failed: usize,
    pub oversold: i64,
    pub orders_in_db: i64,
    pub duplicates: i64,
    pub lost_orders: usize,
    /// Redis stock minus what PostgreSQL says it should be (0 when consistent).
    pub stock_drift: i64,
    pub fifo_violations: usize,
    pub fifo_batches_checked: usize,
    pub fifo_buyers_checked: usize,
    pub max_admissions_per_s: u64,
    pub rate: i64,
    pub admitted_total: u64,
    /// How buyers sent the purchase (HTTP request or the room socket).
    pub buy_over: crate::drop_args::BuyOver,
    pub purchases_per_s: f64,
    pub purchase_p50_ms: f64,
    pub purchase_p99_ms: f64,
    pub join_p99_ms: f64,
    pub position_push_p99_ms: f64,
    pub sell_out_s: f64,
    pub peak_ws_connections: usize,
    /// Buyers joined per second, from the first buyer's start to the last join.
    pub joins_per_s: f64,
    pub server_rss_mb: Option<f64>,
    pub cpu: Option<crate::procstat::RunCpu>,
    pub outcomes: BTreeMap<String, usize>,
    /// Up to five distinct error texts with their counts, to tell client from server trouble.
    pub error_samples: BTreeMap<String, usize>,
    /// The server's fairness report, waits since the start and the ETA error.
    pub fairness: Option<crate::fair::Fairness>,
    pub failures: Vec<String>,
}

pub fn summarize(
    a: &DropArgs,
    drop: DropId,
    results: &[BuyerResult],
    v: StoreView,
    start: Instant,
    sh: &Shared,
) -> Summary {
    let (outcomes, error_samples) = tally(results);
    let bought: HashSet<String> = results.iter().filter_map(|r| r.token.clone()).collect();
    let paid_as = |s: &str| {
        results
            .iter()
            .filter(|r| r.payment.as_deref() == Some(s))
            .count()
    };
    let rec = &v.reconciliation;
    let (fifo_violations, fifo_checked) = fifo(results);
    let p = |f: fn(&BuyerResult) -> Option<f64>, q| {
        percentile(&mut results.iter().filter_map(f).collect::<Vec<_>>(), q)
    };
    let mut push: Vec<f64> = results.iter().flat_map(|r| r.push_ms.clone()).collect();
    let (purchases_per_s, sell_out_s) = pace(results, rec.redis_remaining, start);
    let taken = rec.pg_sold + rec.pg_reserved + rec.in_flight;
    let mut s = Summary {
        drop_id: drop.get(),
        buyers: a.buyers,
        stock: a.stock,
        sold: rec.pg_sold,
        reserved: rec.pg_reserved,
        remaining: rec.redis_remaining,
        bought_by_clients: bought.len(),
        paid: paid_as("PAID"),
        payment_failed: paid_as("PAYMENT_FAILED"),
        oversold: (taken - a.stock).max(0) + (-rec.redis_remaining).max(0),
        orders_in_db: v.orders_in_db,
        duplicates: v.orders_in_db - v.distinct_tokens_in_db,
        lost_orders: bought.difference(&v.db_tokens).count(),
        stock_drift: rec.drift,
        fifo_violations: fifo_violations + v.fifo_log_violations,
        fifo_batches_checked: v.fifo_log_batches,
        fifo_buyers_checked: fifo_checked,
        max_admissions_per_s: v.max_admissions_per_s,
        rate: a.rate,
        admitted_total: v.admitted_total,
        buy_over: a.buy_over,
        purchases_per_s,
        purchase_p50_ms: p(|r| r.purchase_ms, 0.5),
        purchase_p99_ms: p(|r| r.purchase_ms, 0.99),
        join_p99_ms: p(|r| r.join_ms, 0.99),
        position_push_p99_ms: percentile(&mut push, 0.99),
        sell_out_s,
        peak_ws_connections: sh.peak.load(Ordering::Relaxed),
        joins_per_s: joins_per_s(results, start),
        server_rss_mb: a.server_pid.and_then(crate::procstat::rss_mb),
        cpu: None,
        outcomes,
        error_samples,
        fairness: None,
        failures: Vec::new(),
    };
    s.failures = check(&s, rec.ok);
    s
}

/// Each buyer who knows their join index and admission seq: seq must be index + 1.
/// Returns (violations, buyers checked).
fn fifo(results: &[BuyerResult]) -> (usize, usize) {
    let known: Vec<(u64, u64)> = results
        .iter()
        .filter_map(|r| Some((r.index?, r.seq?)))
        .collect();
    let bad = known
        .iter()
        .filter(|(index, seq)| *seq != index + 1)
        .count();
    (bad, known.len())
}

/// Buyers per final outcome, and up to five distinct error texts with their counts.
fn tally(results: &[BuyerResult]) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let mut outcomes = BTreeMap::new();
    let mut error_samples: BTreeMap<String, usize> = BTreeMap::new();
    for r in results {
        if let Outcome::Error(text) = &r.outcome {
            if error_samples.len() < 5 || error_samples.contains_key(text) {
                *error_samples.entry(text.clone()).or_insert(0) += 1;
            }
        }
        let key = match &r.outcome {
            Outcome::Bought => "bought".to_string(),
            Outcome::Abandoned => "abandoned".to_string(),
            Outcome::Rejected(c) => c.clone(),
            Outcome::Error(_) => "error".to_string(),
            Outcome::TimedOut => "timed_out".to_string(),
        };
        *outcomes.entry(key).or_insert(0) += 1;
    }
    (outcomes, error_samples)
}

/// Purchases per second between the first and last sale, and the time from the first
/// admission to the last sale (the whole run when stock is left).
fn pace(results: &[BuyerResult], remaining: i64, start: Instant) -> (f64, f64) {
    let bought_at: Vec<Instant> = results
        .iter()
        .filter(|r| r.outcome == Outcome::Bought)
        .filter_map(|r| r.bought_at)
        .collect();
    let first_admit = results.iter().filter_map(|r| r.admitted_at).min();
    let (first_buy, last_buy) = (bought_at.iter().min(), bought_at.iter().max());
    let purchases_per_s = match (first_buy, last_buy) {
        (Some(f), Some(l)) if l > f => bought_at.len() as f64 / (*l - *f).as_secs_f64(),
        _ => 0.0,
    };
    let sell_out_s = match (first_admit, last_buy) {
        (Some(f), Some(l)) if remaining <= 0 => (*l - f).as_secs_f64(),
        _ => (Instant::now() - start).as_secs_f64(),
    };
    (purchases_per_s, sell_out_s)
}

fn joins_per_s(results: &[BuyerResult], start: Instant) -> f64 {
    let joined: Vec<Instant> = results.iter().filter_map(|r| r.joined_at).collect();
    let last = joined
        .iter()
        .max()
        .map_or(0.0, |l| (*l - start).as_secs_f64());
    joined.len() as f64 / last.max(1e-3)
}

/// The invariants; any failure makes the run exit non-zero.
pub fn check(s: &Summary, stores_agree: bool) -> Vec<String> {
    let mut f = Vec::new();
    if s.oversold > 0 {
        f.push(format!("oversold by {}", s.oversold));
    }
    if s.orders_in_db != s.bought_by_clients as i64 {
        f.push(format!(
            "{} orders in PostgreSQL for {} confirmed purchases",
            s.orders_in_db, s.bought_by_clients
        ));
    }
    if !stores_agree || s.sold + s.reserved + s.remaining != s.stock {
        f.push(format!(
            "sold {} + reserved {} + remaining {} != stock {} (drift {})",
            s.sold, s.reserved, s.remaining, s.stock, s.stock_drift
        ));
    }
    if s.duplicates > 0 {
        f.push(format!("{} duplicate orders", s.duplicates));
    }
    if s.lost_orders > 0 {
        f.push(format!(
            "{} confirmed purchases have no order",
            s.lost_orders
        ));
    }
    if s.fifo_violations > 0 {
        f.push(format!(
            "{} buyers admitted out of queue order",
            s.fifo_violations
        ));
    }
    if s.max_admissions_per_s as i64 > s.rate {
        f.push(format!(
            "{} admissions in one second at rate {}",
            s.max_admissions_per_s, s.rate
        ));
    }
    f
}

/// The summary table's rows: stores and invariants first, then speed and outcomes.
fn rows(s: &Summary) -> Vec<(&'static str, String)> {
    vec![
        ("drop", s.drop_id.to_string()),
        ("buyers", s.buyers.to_string()),
        ("stock", s.stock.to_string()),
        (
            "sold / reserved / left",
            format!("{} / {} / {}", s.sold, s.reserved, s.remaining),
        ),
        ("bought (201s)", s.bought_by_clients.to_string()),
        (
            "paid / payment_failed",
            format!("{} / {}", s.paid, s.payment_failed),
        ),
        ("oversold", s.oversold.to_string()),
        ("orders_in_db", s.orders_in_db.to_string()),
        ("duplicates", s.duplicates.to_string()),
        ("lost_orders", s.lost_orders.to_string()),
        ("stock_drift", s.stock_drift.to_string()),
        (
            "fifo_violations",
            format!(
                "{} ({} batches, {} buyers checked)",
                s.fifo_violations, s.fifo_batches_checked, s.fifo_buyers_checked
            ),
        ),
        (
            "max_admissions_per_s",
            format!("{} (rate {})", s.max_admissions_per_s, s.rate),
        ),
        ("buy_over", format!("{:?}", s.buy_over).to_lowercase()),
        ("purchases_per_s", format!("{:.0}", s.purchases_per_s)),
        ("purchase_p50_ms", format!("{:.1}", s.purchase_p50_ms)),
        ("purchase_p99_ms", format!("{:.1}", s.purchase_p99_ms)),
        ("join_p99_ms", format!("{:.1}", s.join_p99_ms)),
        (
            "position_push_p99_ms",
            format!("{:.1}", s.position_push_p99_ms),
        ),
        ("sell_out_s", format!("{:.2}", s.sell_out_s)),
        ("peak_ws_connections", s.peak_ws_connections.to_string()),
        ("joins_per_s", format!("{:.0}", s.joins_per_s)),
        (
            "server_rss_mb",
            s.server_rss_mb.map_or("n/a".into(), |m| format!("{m:.1}")),
        ),
        ("outcomes", format!("{:?}", s.outcomes)),
    ]
}

pub fn print(s: &Summary) {
    let samples = s
        .error_samples
        .iter()
        .map(|(e, n)| ("error sample", format!("{n}× {e}")));
    println!("{:-<56}", "");
    for (k, v) in rows(s).into_iter().chain(samples) {
        println!("{k:<24} {v}");
    }
    println!("{:-<56}", "");
    if s.failures.is_empty() {
        println!("invariants: all hold");
    } else {
        for f in &s.failures {
            println!("INVARIANT FAILED: {f}");
        }
    }
}
