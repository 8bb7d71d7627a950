//! An order row as the status machine reads it: the one shape every transition, the
//! payment path, refunds and the webhook events share.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{OrderId, Status};

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Order {
    pub id: OrderId,
    pub drop_id: i64,
    #[serde(skip)]
    pub token: String,
    #[serde(skip)]
    pub user_id: uuid::Uuid,
    pub quantity: i32,
    /// What the holder pays, fixed when the order was written (a later price edit does
    /// not change it).
    pub amount_cents: i64,
    pub status: Status,
    pub reserved_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub return_requested_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub failure_reason: Option<String>,
    #[serde(skip)]
    pub payment_method: Option<String>,
    pub refund_ref: Option<String>,
    pub refunded_at: Option<DateTime<Utc>>,
}

pub const COLUMNS: &str = "id, drop_id, token, user_id, quantity, amount_cents, status, \
    reserved_at, paid_at, shipped_at, delivered_at, return_requested_at, closed_at, \
    failure_reason, payment_method, refund_ref, refunded_at";
