//! After a run: reads what Redis and PostgreSQL say and checks the invariants.

use crate::stats::max_in_window;
use redis::AsyncCommands;
use std::collections::HashSet;
use std::time::Duration;
use vq_api::stock::{reconcile, Reconciliation};
use vq_core::domain::DropId;
use vq_core::Keys;

pub struct StoreView {
    pub reconciliation: Reconciliation,
    pub orders_in_db: i64,
    pub distinct_tokens_in_db: i64,
    pub db_tokens: HashSet<String>,
    pub max_admissions_per_s: u64,
    pub admitted_total: u64,
    /// Batches (in admission order) whose lowest queue score is below an earlier batch's
    /// highest: somebody was admitted ahead of a buyer who was before them in the queue.
    pub fifo_log_violations: usize,
    pub fifo_log_batches: usize,
}

/// Counts FIFO breaks in the admission log: `(first seq, lo score, hi score)` per batch.
pub fn fifo_breaks(batches: &mut [(u64, f64, f64)]) -> usize {
    batches.sort_by_key(|b| b.0);
    let mut high = f64::NEG_INFINITY;
    let mut breaks = 0;
    for &(_, lo, hi) in batches.iter() {
        if lo < high {
            breaks += 1;
        }
        high = high.max(hi);
    }
    breaks
}

/// Waits (up to `wait`) until the workers wrote every reservation and every restock was
/// applied, then reads both stores.
pub async fn read(
    redis: &mut vq_core::RedisConn,
    db: &sqlx::PgPool,
    keys: &Keys,
    drop: DropId,
    wait: Duration,
) -> anyhow::Result<StoreView> {
    let k = keys.drop(drop);
    let deadline = tokio::time::Instant::now() + wait;
    let reconciliation = loop {
        let r = reconcile(db, redis, keys, drop).await?;
        if (r.in_flight == 0 && r.restocks_pending == 0) || tokio::time::Instant::now() >= deadline
        {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rows: Vec<String> = sqlx::query_scalar("SELECT token FROM orders WHERE drop_id = $1")
        .bind(drop.get())
        .fetch_all(db)
        .await?;
    let db_tokens: HashSet<String> = rows.iter().cloned().collect();
    let log: redis::streams::StreamRangeReply = redis.xrange_all(k.admlog()).await?;
    let batches: Vec<(i64, u64)> = log
        .ids
        .iter()
        .filter_map(|e| Some((e.get::<i64>("ts")?, e.get::<u64>("n")?)))
        .collect();
    let mut order: Vec<(u64, f64, f64)> = log
        .ids
        .iter()
        .filter_map(|e| {
            Some((
                e.get::<u64>("first")?,
                e.get::<f64>("lo")?,
                e.get::<f64>("hi")?,
            ))
        })
        .collect();
    let admitted_total: Option<u64> = redis.get(k.admitted()).await?;
    Ok(StoreView {
        reconciliation,
        orders_in_db: rows.len() as i64,
        distinct_tokens_in_db: db_tokens.len() as i64,
        db_tokens,
        max_admissions_per_s: max_in_window(&batches, 1000),
        admitted_total: admitted_total.unwrap_or(0),
        fifo_log_batches: order.len(),
        fifo_log_violations: fifo_breaks(&mut order),
    })
}

#[cfg(test)]
mod tests {
    use super::fifo_breaks;

    #[test]
    fn fifo_breaks_are_counted_in_admission_order() {
        assert_eq!(
            fifo_breaks(&mut [(1, 0.1, 0.5), (3, 0.6, 2.0), (5, 3.0, 9.0)]),
            0
        );
        // listed out of order, still fine once sorted by seq
        assert_eq!(
            fifo_breaks(&mut [(5, 3.0, 9.0), (1, 0.1, 0.5), (3, 0.6, 2.0)]),
            0
        );
        // batch 3 starts below batch 1's highest score
        assert_eq!(fifo_breaks(&mut [(1, 0.1, 0.5), (3, 0.4, 2.0)]), 1);
        assert_eq!(fifo_breaks(&mut []), 0);
    }
}
