//! Paying for an order, in three steps so no transaction or row lock is held while the
//! provider answers (that took a pool connection per payer and stalled unrelated requests):
//!
//! 1. [`begin_charge`]: one short transaction moves PENDING_PAYMENT → CHARGING (a concurrent
//!    pay, cancel or the expiry sweep now sees CHARGING and backs off);
//! 2. the provider is asked with the order id as idempotency key, nothing held;
//! 3. [`finalise`]: one short transaction moves CHARGING → PAID, or → PAYMENT_FAILED with
//!    its restock in the outbox.
//!
//! A crash between 1 and 3 leaves the order in CHARGING; the scheduler asks the provider
//! again with the same key ([`resolve`]) and finalises. The amount is the order's own
//! `amount_cents`, fixed at reservation.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use vq_core::domain::DropId;
use vq_core::{Keys, RedisConn, Scripts};

use crate::payment::{PaymentProvider, PaymentResult};
use crate::transition::{apply, lock, Order, TransitionError, COLUMNS};
use crate::{OrderId, Status};

/// Charges the order and returns it PAID or PAYMENT_FAILED. A second pay while the first
/// is charging is `Illegal { current: CHARGING }`: nothing is charged twice.
pub async fn pay(
    db: &PgPool,
    provider: &dyn PaymentProvider,
    id: OrderId,
    owner: Option<uuid::Uuid>,
    method: &str,
    at: DateTime<Utc>,
) -> Result<Order, TransitionError> {
    let order = begin_charge(db, id, owner, method, at).await?;
    resolve(db, provider, &order, at).await
}

/// Commits CHARGING (with the method, and the time for the scheduler's recovery bound).
pub async fn begin_charge(
    db: &PgPool,
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
            to: Status::Charging,
        });
    }
    sqlx::query("UPDATE orders SET payment_method = $2 WHERE id = $1")
        .bind(id)
        .bind(method)
        .execute(&mut *tx)
        .await?;
    let charging = apply(&mut tx, &order, &[order.status], Status::Charging, at, None).await?;
    tx.commit().await?;
    Ok(charging)
}

/// Asks the provider for the charge of an order in CHARGING (no lock held) and records the
/// answer. Safe to repeat: the provider answers a known key from memory.
pub async fn resolve(
    db: &PgPool,
    provider: &dyn PaymentProvider,
    order: &Order,
    at: DateTime<Utc>,
) -> Result<Order, TransitionError> {
    let method = order.payment_method.as_deref().unwrap_or("pm_card_ok");
    let result = provider.charge(order.id, order.amount_cents, method).await;
    finalise(db, order.id, result, at).await
}

/// Stores the provider's answer: the reference and PAID when approved, PAYMENT_FAILED with
/// the reason (and its restock) when declined, nothing when there was no answer (the order
/// stays CHARGING for the scheduler). When someone else finalised first, returns the order
/// as it is now.
pub async fn finalise(
    db: &PgPool,
    id: OrderId,
    result: PaymentResult,
    at: DateTime<Utc>,
) -> Result<Order, TransitionError> {
    if let PaymentResult::Unknown { reason } = &result {
        tracing::warn!(order = id.get(), %reason, "no answer from the provider; left CHARGING");
        return load(db, id).await;
    }
    let mut tx = db.begin().await?;
    let order = lock(&mut tx, id, None).await?;
    if order.status != Status::Charging {
        return Ok(order);
    }
    let from = [Status::Charging];
    let updated = match result {
        PaymentResult::Approved { reference } => {
            sqlx::query("UPDATE orders SET payment_ref = $2 WHERE id = $1")
                .bind(id)
                .bind(&reference)
                .execute(&mut *tx)
                .await?;
            apply(&mut tx, &order, &from, Status::Paid, at, None).await?
        }
        PaymentResult::Declined { reason } => {
            apply(
                &mut tx,
                &order,
                &from,
                Status::PaymentFailed,
                at,
                Some(&reason),
            )
            .await?
        }
        PaymentResult::Unknown { .. } => order,
    };
    tx.commit().await?;
    Ok(updated)
}

async fn load(db: &PgPool, id: OrderId) -> Result<Order, TransitionError> {
    sqlx::query_as::<_, Order>(&format!("SELECT {COLUMNS} FROM orders WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or(TransitionError::NotFound)
}

/// A paid reservation's units can no longer come back: tell Redis, so it stops counting as
/// open. Best effort (HDEL, idempotent): a failure is logged, the payment stands.
pub async fn settle(redis: &mut RedisConn, scripts: &Scripts, keys: &Keys, order: &Order) {
    if order.status != Status::Paid {
        return;
    }
    let Ok(drop) = DropId::new(order.drop_id) else {
        return;
    };
    let k = keys.drop(drop);
    if let Err(e) = scripts.settle_reservation(redis, &k, &order.token).await {
        tracing::warn!(order = order.id.get(), error = %e, "settling the paid reservation failed");
    }
}
