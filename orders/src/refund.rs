//! Refunds: an order cancelled after payment, or returned, gets its money back through the
//! provider (idempotency key: the order id), recorded on the order (`refund_ref`,
//! `refunded_at`). The api refunds right after a cancel; the scheduler refunds returns and
//! retries whatever a crash or a provider failure left unrefunded.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::payment::{PaymentProvider, RefundResult};
use crate::transition::{Order, COLUMNS};
use crate::OrderId;

/// Refunds the order when it is due (cancelled or returned after a charge, not yet
/// refunded); returns the order as stored afterwards, or None when nothing was due.
pub async fn refund_due(
    db: &PgPool,
    provider: &dyn PaymentProvider,
    id: OrderId,
    at: DateTime<Utc>,
) -> sqlx::Result<Option<Order>> {
    let due = sqlx::query_as::<_, Order>(&format!(
        "SELECT {COLUMNS} FROM orders WHERE id = $1 AND paid_at IS NOT NULL \
         AND refunded_at IS NULL AND status IN ('CANCELLED', 'RETURNED')"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    let Some(order) = due else { return Ok(None) };
    match provider.refund(order.id, order.amount_cents).await {
        RefundResult::Refunded { reference } => Ok(Some(record(db, id, &reference, at).await?)),
        RefundResult::Failed { reason } => {
            tracing::warn!(order = id.get(), %reason, "refund failed; the scheduler retries");
            Ok(None)
        }
    }
}

/// Refunds up to 500 orders that are due; returns how many were refunded.
pub async fn refund_all_due(
    db: &PgPool,
    provider: &dyn PaymentProvider,
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    let ids: Vec<OrderId> = sqlx::query_scalar(
        "SELECT id FROM orders WHERE paid_at IS NOT NULL AND refunded_at IS NULL \
         AND status IN ('CANCELLED', 'RETURNED') ORDER BY id LIMIT 500",
    )
    .fetch_all(db)
    .await?;
    let mut n = 0;
    for id in ids {
        n += u64::from(refund_due(db, provider, id, at).await?.is_some());
    }
    Ok(n)
}

/// Stores the refund; the first time, with its `order.refunded` event in the same
/// transaction (a concurrent second refund finds it stored and announces nothing).
async fn record(
    db: &PgPool,
    id: OrderId,
    reference: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<Order> {
    let mut tx = db.begin().await?;
    let fresh = sqlx::query_as::<_, Order>(&format!(
        "UPDATE orders SET refund_ref = $2, refunded_at = $3 \
         WHERE id = $1 AND refunded_at IS NULL RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(reference)
    .bind(at)
    .fetch_optional(&mut *tx)
    .await?;
    let o = match fresh {
        Some(o) => {
            crate::events::order(&mut tx, &o, crate::events::EventType::OrderRefunded, at).await?;
            metrics::counter!("vq_refunds_total").increment(1);
            o
        }
        None => {
            sqlx::query_as::<_, Order>(&format!("SELECT {COLUMNS} FROM orders WHERE id = $1"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
        }
    };
    tx.commit().await?;
    Ok(o)
}
