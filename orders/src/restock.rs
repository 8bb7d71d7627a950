//! Applies the restock outbox to Redis. The script is idempotent per order id, so a crash
//! between applying and marking, or two appliers at once, never restocks twice.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use vq_core::domain::DropId;
use vq_core::scripts::Restock;
use vq_core::{Keys, RedisConn, Scripts};

use crate::OrderId;

/// Applies up to `limit` pending restocks (optionally of one order only); returns how many
/// were applied now (not counting ones an earlier attempt already applied).
pub async fn apply_pending(
    db: &PgPool,
    redis: &mut RedisConn,
    scripts: &Scripts,
    keys: &Keys,
    only_order: Option<OrderId>,
    at: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let rows: Vec<(i64, i64, uuid::Uuid, String, i32)> = sqlx::query_as(
        "SELECT order_id, drop_id, user_id, token, quantity FROM restocks \
         WHERE applied_at IS NULL AND ($1::bigint IS NULL OR order_id = $1) ORDER BY order_id LIMIT 500",
    )
    .bind(only_order)
    .fetch_all(db)
    .await?;
    let mut applied_now = 0;
    let mut done = Vec::with_capacity(rows.len());
    for (order_id, drop_id, user, token, quantity) in rows {
        let k = keys.drop(DropId::new(drop_id)?);
        let r = Restock {
            order_id,
            user,
            quantity,
            token,
        };
        let (fresh, _) = scripts.restock(redis, &k, &r).await?;
        applied_now += usize::from(fresh);
        done.push(order_id);
    }
    if !done.is_empty() {
        sqlx::query("UPDATE restocks SET applied_at = $2 WHERE order_id = ANY($1)")
            .bind(&done)
            .bind(at)
            .execute(db)
            .await?;
    }
    Ok(applied_now)
}
