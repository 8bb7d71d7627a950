//! One measurement loop for `strategies` and `ceiling`: N attempts taken by C concurrent
//! tasks, each attempt timed on its own. Every strategy goes through this same code, so the
//! figures differ only by what the attempt does, not by how it is driven or counted.

use crate::stats::percentile;
use serde::Serialize;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one attempt ended in (errors are the `Err` of the attempt's result).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Bought,
    /// The store said no (sold out): a correct, counted answer, not an error.
    Rejected,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Measured {
    pub attempts: usize,
    pub bought: usize,
    pub rejected: usize,
    pub errors: usize,
    /// Attempts never started because the time bound ran out.
    pub unstarted: usize,
    pub first_error: Option<String>,
    pub elapsed_s: f64,
    /// Finished attempts (bought + rejected + errors) per second over the whole run.
    pub attempts_per_s: f64,
    /// Purchases per second from the start to the last successful purchase.
    pub purchases_per_s: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Default)]
struct TaskLog {
    lat_ms: Vec<f64>,
    bought: usize,
    rejected: usize,
    errors: usize,
    first_error: Option<String>,
    last_bought: Option<Instant>,
}

/// Runs attempts `0..n` on `c` tasks (each task takes the next index until none is left or
/// `limit` has passed) and summarises them. `f(i)` performs attempt `i`.
pub async fn drive<F, Fut>(n: usize, c: usize, limit: Duration, f: F) -> Measured
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Attempt>> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + limit;
    let tasks: Vec<_> = (0..c.clamp(1, n.max(1)))
        .map(|_| {
            let (f, next) = (f.clone(), next.clone());
            tokio::spawn(async move {
                let mut log = TaskLog::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n || Instant::now() >= deadline {
                        break;
                    }
                    let t = Instant::now();
                    let r = tokio::time::timeout_at(deadline.into(), f(i)).await;
                    log.lat_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                    match r {
                        Ok(Ok(Attempt::Bought)) => {
                            log.bought += 1;
                            log.last_bought = Some(Instant::now());
                        }
                        Ok(Ok(Attempt::Rejected)) => log.rejected += 1,
                        Ok(Err(e)) => {
                            log.errors += 1;
                            log.first_error.get_or_insert_with(|| format!("{e:#}"));
                        }
                        Err(_) => {
                            log.errors += 1;
                            log.first_error
                                .get_or_insert_with(|| "time bound hit".into());
                        }
                    }
                }
                log
            })
        })
        .collect();
    let mut all = TaskLog::default();
    for t in tasks {
        let Ok(log) = t.await else {
            all.errors += 1;
            continue;
        };
        all.lat_ms.extend(log.lat_ms);
        all.bought += log.bought;
        all.rejected += log.rejected;
        all.errors += log.errors;
        all.first_error = all.first_error.or(log.first_error);
        all.last_bought = all.last_bought.max(log.last_bought);
    }
    summarise(n, start, all)
}

fn summarise(n: usize, start: Instant, mut log: TaskLog) -> Measured {
    let elapsed = start.elapsed().as_secs_f64();
    let finished = log.lat_ms.len();
    let mean = log.lat_ms.iter().sum::<f64>() / finished.max(1) as f64;
    let buy_s = log
        .last_bought
        .map_or(0.0, |t| (t - start).as_secs_f64().max(1e-9));
    Measured {
        attempts: finished,
        bought: log.bought,
        rejected: log.rejected,
        errors: log.errors,
        unstarted: n - finished,
        first_error: log.first_error,
        elapsed_s: elapsed,
        attempts_per_s: finished as f64 / elapsed.max(1e-9),
        purchases_per_s: if buy_s > 0.0 {
            log.bought as f64 / buy_s
        } else {
            0.0
        },
        mean_ms: mean,
        p50_ms: percentile(&mut log.lat_ms, 0.5),
        p99_ms: percentile(&mut log.lat_ms, 0.99),
        max_ms: percentile(&mut log.lat_ms, 1.0),
    }
}

/// Units sold beyond the stock, from what the store holds after the run: more recorded
/// orders than stock, or a counter below zero, are both oversells.
pub fn oversold(stock: i64, recorded_orders: i64, remaining: i64) -> i64 {
    (recorded_orders - stock).max(0).max((-remaining).max(0))
}

/// Writes the JSON report if asked, prints the failures and exits non-zero when any.
pub fn finish<T: Serialize>(
    report: &T,
    json: Option<std::path::PathBuf>,
    failures: Vec<String>,
) -> anyhow::Result<()> {
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(report)?)?;
        println!("report written to {}", path.display());
    }
    for f in &failures {
        println!("FAILED: {f}");
    }
    if !failures.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_attempt_is_counted_once_and_timed() {
        let m = drive(100, 8, Duration::from_secs(10), |i| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            match i % 10 {
                0 => anyhow::bail!("boom {i}"),
                1..=4 => Ok(Attempt::Rejected),
                _ => Ok(Attempt::Bought),
            }
        })
        .await;
        assert_eq!(
            (m.attempts, m.bought, m.rejected, m.errors),
            (100, 50, 40, 10)
        );
        assert_eq!(m.unstarted, 0);
        assert!(m.first_error.unwrap().starts_with("boom"));
        assert!(m.p50_ms >= 1.0 && m.p99_ms >= m.p50_ms && m.max_ms >= m.p99_ms);
        assert!(m.mean_ms >= 1.0 && m.purchases_per_s > 0.0 && m.attempts_per_s > 0.0);
    }

    #[tokio::test]
    async fn the_time_bound_stops_new_attempts() {
        let m = drive(1000, 2, Duration::from_millis(50), |_| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(Attempt::Bought)
        })
        .await;
        assert!(m.attempts < 20, "{}", m.attempts);
        assert_eq!(m.attempts + m.unstarted, 1000);
    }

    #[test]
    fn oversold_counts_orders_beyond_stock_or_negative_counters() {
        assert_eq!(oversold(10, 10, 0), 0);
        assert_eq!(oversold(10, 12, 0), 2);
        assert_eq!(oversold(10, 10, -3), 3);
        assert_eq!(oversold(10, 7, 3), 0);
    }
}
