//! Applies the restock outbox to Redis. The script is idempotent per order id, so a crash
//! between applying and marking, or two appliers at once, never restocks twice.
//!
//! A drop whose Redis state is gone (it needs a rebuild) must not hold up every other drop:
//! its restocks are skipped for this pass (left pending in the outbox, applied after the
//! rebuild) and counted, and the pass goes on with the other drops.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::HashSet;
use vq_core::domain::DropId;
use vq_core::scripts::{Restock, RestockOutcome};
use vq_core::{Keys, RedisConn, Scripts};

use crate::OrderId;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    /// Applied now (not counting ones an earlier attempt already applied).
    pub applied: usize,
    /// Restocks left pending because their drop's Redis state needs a rebuild.
    pub deferred: usize,
    /// The drops that need a rebuild.
    pub drops_deferred: Vec<i64>,
}

/// Applies pending restocks (optionally of one order only); returns how many were applied
/// now. See [`apply_pending_pass`].
pub async fn apply_pending(
    db: &PgPool,
    redis: &mut RedisConn,
    scripts: &Scripts,
    keys: &Keys,
    only_order: Option<OrderId>,
    at: DateTime<Utc>,
) -> anyhow::Result<usize> {
    Ok(apply_pending_pass(db, redis, scripts, keys, only_order, at)
        .await?
        .applied)
}

type Row = (i64, i64, uuid::Uuid, String, i32);

/// Applies up to 500 pending restocks per round; a round that finds a drop needing a
/// rebuild is followed by one without that drop, so its backlog cannot starve the others.
pub async fn apply_pending_pass(
    db: &PgPool,
    redis: &mut RedisConn,
    scripts: &Scripts,
    keys: &Keys,
    only_order: Option<OrderId>,
    at: DateTime<Utc>,
) -> anyhow::Result<Pass> {
    let mut pass = Pass::default();
    let mut skip: HashSet<i64> = HashSet::new();
    loop {
        let excluded: Vec<i64> = skip.iter().copied().collect();
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT order_id, drop_id, user_id, token, quantity FROM restocks \
             WHERE applied_at IS NULL AND ($1::bigint IS NULL OR order_id = $1) \
             AND NOT (drop_id = ANY($2)) ORDER BY order_id LIMIT 500",
        )
        .bind(only_order)
        .bind(&excluded)
        .fetch_all(db)
        .await?;
        let skipped_before = skip.len();
        let done = apply_rows(redis, scripts, keys, rows, &mut skip, &mut pass).await?;
        if !done.is_empty() {
            sqlx::query("UPDATE restocks SET applied_at = $2 WHERE order_id = ANY($1)")
                .bind(&done)
                .bind(at)
                .execute(db)
                .await?;
        }
        if skip.len() == skipped_before {
            break;
        }
    }
    pass.drops_deferred = skip.into_iter().collect();
    pass.drops_deferred.sort_unstable();
    if pass.deferred > 0 {
        metrics::counter!("vq_restocks_deferred_total").increment(pass.deferred as u64);
        tracing::warn!(drops = ?pass.drops_deferred, restocks = pass.deferred,
            "restocks left pending: these drops need a rebuild");
    }
    Ok(pass)
}

/// Runs the script for each row; returns the order ids now applied (or applied before).
async fn apply_rows(
    redis: &mut RedisConn,
    scripts: &Scripts,
    keys: &Keys,
    rows: Vec<Row>,
    skip: &mut HashSet<i64>,
    pass: &mut Pass,
) -> anyhow::Result<Vec<i64>> {
    let mut done = Vec::with_capacity(rows.len());
    for (order_id, drop_id, user, token, quantity) in rows {
        if skip.contains(&drop_id) {
            pass.deferred += 1;
            continue;
        }
        let k = keys.drop(DropId::new(drop_id)?);
        let r = Restock {
            order_id,
            user,
            quantity,
            token,
        };
        match scripts.restock_checked(redis, &k, &r).await? {
            RestockOutcome::Applied { .. } => pass.applied += 1,
            RestockOutcome::Already { .. } => {}
            RestockOutcome::NoDrop | RestockOutcome::NeedsRebuild => {
                skip.insert(drop_id);
                pass.deferred += 1;
                continue;
            }
        }
        done.push(order_id);
    }
    Ok(done)
}
