//! The order status machine. Every change is one PostgreSQL transaction on the locked row;
//! a change that frees stock writes its restock into the `restocks` outbox in the same
//! transaction, so each order restocks exactly once however often a call is retried or raced.
//!
//! PENDING_PAYMENT → CHARGING → PAID → SHIPPING → DELIVERED → RETURN_REQUESTED → RETURNED
//! PENDING_PAYMENT → EXPIRED | CANCELLED;  CHARGING → PAYMENT_FAILED;  PAID → CANCELLED
//! (CHARGING and PAID → … are in [`crate::pay`]; refunds of paid orders in [`crate::refund`].)

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};

use crate::{OrderId, Status};

pub use crate::order::{Order, COLUMNS};

#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error("no such order")]
    NotFound,
    #[error("cannot go from {current} to {to}")]
    Illegal { current: Status, to: Status },
    #[error("the return window closed at {closed_at}")]
    ReturnWindowClosed { closed_at: DateTime<Utc> },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Locks the order (of `owner`, when given) for the rest of the transaction.
pub async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    id: OrderId,
    owner: Option<uuid::Uuid>,
) -> Result<Order, TransitionError> {
    sqlx::query_as::<_, Order>(&format!(
        "SELECT {COLUMNS} FROM orders WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2) FOR UPDATE"
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(TransitionError::NotFound)
}

/// Inside a transaction holding the row lock: checks `from`, moves to `to`, and records
/// the restock when `to` frees stock.
pub async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    order: &Order,
    from: &[Status],
    to: Status,
    at: DateTime<Utc>,
    reason: Option<&str>,
) -> Result<Order, TransitionError> {
    if !from.contains(&order.status) {
        return Err(TransitionError::Illegal {
            current: order.status,
            to,
        });
    }
    let updated = sqlx::query_as::<_, Order>(&format!(
        "UPDATE orders SET status = $2, {col} = $3, updated_at = $3, \
         failure_reason = COALESCE($4, failure_reason) WHERE id = $1 RETURNING {COLUMNS}",
        col = to.column()
    ))
    .bind(order.id)
    .bind(to)
    .bind(at)
    .bind(reason)
    .fetch_one(&mut **tx)
    .await?;
    if to.restocks() {
        sqlx::query(
            "INSERT INTO restocks (order_id, drop_id, user_id, token, quantity, reason, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order.id)
        .bind(order.drop_id)
        .bind(order.user_id)
        .bind(&order.token)
        .bind(order.quantity)
        .bind(to.as_str())
        .bind(at)
        .execute(&mut **tx)
        .await?;
    }
    if let Some(kind) = crate::events::EventType::of_status(to) {
        crate::events::order(tx, &updated, kind, at).await?;
    }
    Ok(updated)
}

/// One whole transition in its own transaction.
pub async fn transition(
    db: &PgPool,
    id: OrderId,
    owner: Option<uuid::Uuid>,
    from: &[Status],
    to: Status,
    at: DateTime<Utc>,
) -> Result<Order, TransitionError> {
    let mut tx = db.begin().await?;
    let order = lock(&mut tx, id, owner).await?;
    let updated = apply(&mut tx, &order, from, to, at, None).await?;
    tx.commit().await?;
    Ok(updated)
}

/// The buyer cancels: allowed until the order ships.
pub async fn cancel(
    db: &PgPool,
    id: OrderId,
    owner: uuid::Uuid,
    at: DateTime<Utc>,
) -> Result<Order, TransitionError> {
    transition(
        db,
        id,
        Some(owner),
        &[Status::PendingPayment, Status::Paid],
        Status::Cancelled,
        at,
    )
    .await
}

/// The buyer asks to return a delivered order within the return window.
pub async fn request_return(
    db: &PgPool,
    id: OrderId,
    owner: uuid::Uuid,
    at: DateTime<Utc>,
    window: chrono::Duration,
) -> Result<Order, TransitionError> {
    let mut tx = db.begin().await?;
    let order = lock(&mut tx, id, Some(owner)).await?;
    if let Some(delivered) = order
        .delivered_at
        .filter(|_| order.status == Status::Delivered)
    {
        if at > delivered + window {
            return Err(TransitionError::ReturnWindowClosed {
                closed_at: delivered + window,
            });
        }
    }
    let updated = apply(
        &mut tx,
        &order,
        &[Status::Delivered],
        Status::ReturnRequested,
        at,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// Moves every order in `from` whose `since` column is at or before `due` to `to` (with
/// restocks where `to` frees stock). Rows locked by someone else are left for the next tick.
pub async fn sweep(
    db: &PgPool,
    from: Status,
    since: &str,
    due: DateTime<Utc>,
    to: Status,
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    let restock = if to.restocks() {
        ", rs AS (INSERT INTO restocks (order_id, drop_id, user_id, token, quantity, reason, created_at) \
         SELECT id, drop_id, user_id, token, quantity, $3, $4 FROM moved ON CONFLICT (order_id) DO NOTHING)"
    } else {
        ""
    };
    // One row per moved order; each records its webhook event in this same statement.
    let event = match crate::events::EventType::of_status(to) {
        Some(kind) => crate::events::when_subscribed(
            kind,
            &format!(
                "vq_webhook_order('{kind}', id, drop_id, user_id, status, quantity, \
                 amount_cents, failure_reason, $4)"
            ),
        ),
        None => "1".into(),
    };
    let sql = format!(
        "WITH moved AS (UPDATE orders SET status = $3, {col} = $4, updated_at = $4 WHERE id IN ( \
           SELECT id FROM orders WHERE status = $1 AND {since} <= $2 ORDER BY id LIMIT 1000 \
           FOR UPDATE SKIP LOCKED) RETURNING id, drop_id, user_id, token, quantity, amount_cents, \
           status, failure_reason) {restock} SELECT {event} FROM moved ORDER BY id",
        col = to.column()
    );
    let done = sqlx::query(&sql)
        .bind(from)
        .bind(due)
        .bind(to)
        .bind(at)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}
