//! Paying for an order: the one transition that talks to the payment provider.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};

use crate::payment::{PaymentProvider, PaymentResult};
use crate::transition::{apply, lock, Order, TransitionError};
use crate::{OrderId, Status};

/// Charges the order and moves it to PAID, or to PAYMENT_FAILED (restocking) when
/// declined. The row stays locked during the charge, so a concurrent cancel or the expiry
/// sweep cannot slip in between charging and recording the outcome.
pub async fn pay(
    db: &PgPool,
    provider: &dyn PaymentProvider,
    id: OrderId,
    owner: Option<uuid::Uuid>,
    method: &str,
    at: DateTime<Utc>,
) -> Result<Order, TransitionError> {
    let mut tx = db.begin().await?;
    let order = lock(&mut tx, id, owner).await?;
    if order.status != Status::PendingPayment {
        return Err(TransitionError::Illegal {
            current: order.status,
            to: Status::Paid,
        });
    }
    let price: i64 = sqlx::query_scalar("SELECT price_cents FROM drops WHERE id = $1")
        .bind(order.drop_id)
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query("UPDATE orders SET payment_attempted_at = $2 WHERE id = $1")
        .bind(id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    let result = provider
        .charge(id, price * i64::from(order.quantity), method)
        .await;
    let updated = record(&mut tx, &order, result, at).await?;
    tx.commit().await?;
    Ok(updated)
}

/// Stores the provider's answer on the locked order: the reference and PAID when approved,
/// PAYMENT_FAILED with the reason (and its restock) when declined.
async fn record(
    tx: &mut Transaction<'_, Postgres>,
    order: &Order,
    result: PaymentResult,
    at: DateTime<Utc>,
) -> Result<Order, TransitionError> {
    let from = [Status::PendingPayment];
    match result {
        PaymentResult::Approved { reference } => {
            sqlx::query("UPDATE orders SET payment_ref = $2 WHERE id = $1")
                .bind(order.id)
                .bind(&reference)
                .execute(&mut **tx)
                .await?;
            apply(tx, order, &from, Status::Paid, at, None).await
        }
        PaymentResult::Declined { reason } => {
            apply(tx, order, &from, Status::PaymentFailed, at, Some(&reason)).await
        }
    }
}
