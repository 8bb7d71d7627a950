//! The order status machine. Every change is one PostgreSQL transaction on the locked row;
//! a change that frees stock writes its restock into the `restocks` outbox in the same
//! transaction, so each order restocks exactly once however often a call is retried or raced.
//!
//! PENDING_PAYMENT → PAID → SHIPPING → DELIVERED → RETURN_REQUESTED → RETURNED
//! PENDING_PAYMENT → PAYMENT_FAILED | EXPIRED | CANCELLED;  PAID → CANCELLED

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    PendingPayment,
    Paid,
    Shipping,
    Delivered,
    ReturnRequested,
    Returned,
    Cancelled,
    PaymentFailed,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::PendingPayment => "PENDING_PAYMENT",
            Status::Paid => "PAID",
            Status::Shipping => "SHIPPING",
            Status::Delivered => "DELIVERED",
            Status::ReturnRequested => "RETURN_REQUESTED",
            Status::Returned => "RETURNED",
            Status::Cancelled => "CANCELLED",
            Status::PaymentFailed => "PAYMENT_FAILED",
            Status::Expired => "EXPIRED",
        }
    }

    /// The timestamp column a move into this status sets.
    fn column(self) -> &'static str {
        match self {
            Status::Paid => "paid_at",
            Status::Shipping => "shipped_at",
            Status::Delivered => "delivered_at",
            Status::ReturnRequested => "return_requested_at",
            Status::PendingPayment => "updated_at",
            _ => "closed_at",
        }
    }

    /// Moves into these statuses give the units back to the drop.
    pub fn restocks(self) -> bool {
        matches!(
            self,
            Status::Returned | Status::Cancelled | Status::PaymentFailed | Status::Expired
        )
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Order {
    pub id: i64,
    pub drop_id: i64,
    #[serde(skip)]
    pub token: String,
    #[serde(skip)]
    pub user_id: uuid::Uuid,
    pub quantity: i32,
    pub status: String,
    pub reserved_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub return_requested_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub failure_reason: Option<String>,
}

pub const COLUMNS: &str = "id, drop_id, token, user_id, quantity, status, reserved_at, paid_at, \
    shipped_at, delivered_at, return_requested_at, closed_at, failure_reason";

#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error("no such order")]
    NotFound,
    #[error("cannot go from {current} to {to}")]
    Illegal { current: String, to: &'static str },
    #[error("the return window closed at {closed_at}")]
    ReturnWindowClosed { closed_at: DateTime<Utc> },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Locks the order (of `owner`, when given) for the rest of the transaction.
pub async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
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
    if !from.iter().any(|s| s.as_str() == order.status) {
        return Err(TransitionError::Illegal {
            current: order.status.clone(),
            to: to.as_str(),
        });
    }
    let updated = sqlx::query_as::<_, Order>(&format!(
        "UPDATE orders SET status = $2, {col} = $3, updated_at = $3, \
         failure_reason = COALESCE($4, failure_reason) WHERE id = $1 RETURNING {COLUMNS}",
        col = to.column()
    ))
    .bind(order.id)
    .bind(to.as_str())
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
    Ok(updated)
}

/// One whole transition in its own transaction.
pub async fn transition(
    db: &PgPool,
    id: i64,
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
    id: i64,
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
    id: i64,
    owner: uuid::Uuid,
    at: DateTime<Utc>,
    window: chrono::Duration,
) -> Result<Order, TransitionError> {
    let mut tx = db.begin().await?;
    let order = lock(&mut tx, id, Some(owner)).await?;
    if let Some(delivered) = order
        .delivered_at
        .filter(|_| order.status == Status::Delivered.as_str())
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
        "INSERT INTO restocks (order_id, drop_id, user_id, token, quantity, reason, created_at) \
         SELECT id, drop_id, user_id, token, quantity, $3, $4 FROM moved ON CONFLICT (order_id) DO NOTHING"
    } else {
        "SELECT 1 FROM moved"
    };
    let sql = format!(
        "WITH moved AS (UPDATE orders SET status = $3, {col} = $4, updated_at = $4 WHERE id IN ( \
           SELECT id FROM orders WHERE status = $1 AND {since} <= $2 ORDER BY id LIMIT 1000 \
           FOR UPDATE SKIP LOCKED) RETURNING id, drop_id, user_id, token, quantity) {restock}",
        col = to.column()
    );
    let done = sqlx::query(&sql)
        .bind(from.as_str())
        .bind(due)
        .bind(to.as_str())
        .bind(at)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Charges the order and moves it to PAID, or to PAYMENT_FAILED (restocking) when
/// declined. The row stays locked during the charge, so a concurrent cancel or the expiry
/// sweep cannot slip in between charging and recording the outcome.
pub async fn pay(
    db: &PgPool,
    provider: &dyn crate::payment::PaymentProvider,
    id: i64,
    owner: Option<uuid::Uuid>,
    method: &str,
    at: DateTime<Utc>,
) -> Result<Order, TransitionError> {
    let mut tx = db.begin().await?;
    let order = lock(&mut tx, id, owner).await?;
    if order.status != Status::PendingPayment.as_str() {
        return Err(TransitionError::Illegal {
            current: order.status,
            to: Status::Paid.as_str(),
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
    let updated = match result {
        crate::payment::PaymentResult::Approved { reference } => {
            sqlx::query("UPDATE orders SET payment_ref = $2 WHERE id = $1")
                .bind(id)
                .bind(&reference)
                .execute(&mut *tx)
                .await?;
            apply(
                &mut tx,
                &order,
                &[Status::PendingPayment],
                Status::Paid,
                at,
                None,
            )
            .await?
        }
        crate::payment::PaymentResult::Declined { reason } => {
            apply(
                &mut tx,
                &order,
                &[Status::PendingPayment],
                Status::PaymentFailed,
                at,
                Some(&reason),
            )
            .await?
        }
    };
    tx.commit().await?;
    Ok(updated)
}
