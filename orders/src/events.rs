//! Webhook events and the outbox writer. An event is recorded by the SQL function
//! `vq_webhook_emit` (migration `…_webhooks.sql`) inside the transaction of the state change
//! it reports, and queued there for every enabled endpoint subscribed to its type: a
//! rollback leaves no event behind, a commit never loses one. Delivery is `vq-webhooks`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Transaction};

use crate::order::Order;
use crate::Status;

/// Every event type, as integrators subscribe to it and read it in `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    #[serde(rename = "order.reserved")]
    OrderReserved,
    #[serde(rename = "order.paid")]
    OrderPaid,
    #[serde(rename = "order.payment_failed")]
    OrderPaymentFailed,
    /// Cancelled by the buyer, or expired unpaid (`data.status` says which).
    #[serde(rename = "order.cancelled")]
    OrderCancelled,
    #[serde(rename = "order.refunded")]
    OrderRefunded,
    #[serde(rename = "order.shipped")]
    OrderShipped,
    #[serde(rename = "order.delivered")]
    OrderDelivered,
    #[serde(rename = "order.returned")]
    OrderReturned,
    #[serde(rename = "drop.pre_queue")]
    DropPreQueue,
    #[serde(rename = "drop.live")]
    DropLive,
    #[serde(rename = "drop.paused")]
    DropPaused,
    #[serde(rename = "drop.resumed")]
    DropResumed,
    #[serde(rename = "drop.sold_out")]
    DropSoldOut,
    #[serde(rename = "drop.closed")]
    DropClosed,
}

impl EventType {
    pub const ALL: [EventType; 14] = [
        EventType::OrderReserved,
        EventType::OrderPaid,
        EventType::OrderPaymentFailed,
        EventType::OrderCancelled,
        EventType::OrderRefunded,
        EventType::OrderShipped,
        EventType::OrderDelivered,
        EventType::OrderReturned,
        EventType::DropPreQueue,
        EventType::DropLive,
        EventType::DropPaused,
        EventType::DropResumed,
        EventType::DropSoldOut,
        EventType::DropClosed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::OrderReserved => "order.reserved",
            EventType::OrderPaid => "order.paid",
            EventType::OrderPaymentFailed => "order.payment_failed",
            EventType::OrderCancelled => "order.cancelled",
            EventType::OrderRefunded => "order.refunded",
            EventType::OrderShipped => "order.shipped",
            EventType::OrderDelivered => "order.delivered",
            EventType::OrderReturned => "order.returned",
            EventType::DropPreQueue => "drop.pre_queue",
            EventType::DropLive => "drop.live",
            EventType::DropPaused => "drop.paused",
            EventType::DropResumed => "drop.resumed",
            EventType::DropSoldOut => "drop.sold_out",
            EventType::DropClosed => "drop.closed",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The event a move into `to` announces (CHARGING and RETURN_REQUESTED announce none).
    pub fn of_status(to: Status) -> Option<EventType> {
        Some(match to {
            Status::Paid => EventType::OrderPaid,
            Status::PaymentFailed => EventType::OrderPaymentFailed,
            Status::Cancelled | Status::Expired => EventType::OrderCancelled,
            Status::Shipping => EventType::OrderShipped,
            Status::Delivered => EventType::OrderDelivered,
            Status::Returned => EventType::OrderReturned,
            Status::PendingPayment => EventType::OrderReserved,
            Status::Charging | Status::ReturnRequested => return None,
        })
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event as it goes on the wire: the body of every delivery.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// Unique per event, the same on every delivery of it: deduplicate on it.
    pub id: uuid::Uuid,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub created_at: DateTime<Utc>,
    /// The order (`order_id`, `drop_id`, `status`, `quantity`, `amount_cents`, `reason`,
    /// and `customer` for endpoints with `include_pii`) or the drop (`drop_id`,
    /// `product_name`, `state`).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// SQL that evaluates `call` (a `vq_webhook_*` call per row) only while some enabled
/// endpoint subscribes to `kind`: the uncorrelated EXISTS runs once per statement, so a
/// statement writing hundreds of orders pays nothing for webhooks while nobody listens.
pub fn when_subscribed(kind: EventType, call: &str) -> String {
    format!(
        "CASE WHEN (SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled \
         AND '{kind}' = ANY (events))) THEN {call} ELSE 0 END"
    )
}

/// Records the order's event (if its new status announces one) in the caller's transaction.
pub async fn order(
    tx: &mut Transaction<'_, Postgres>,
    o: &Order,
    kind: EventType,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("SELECT vq_webhook_order($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(kind.as_str())
        .bind(o.id)
        .bind(o.drop_id)
        .bind(o.user_id)
        .bind(o.status)
        .bind(o.quantity)
        .bind(o.amount_cents)
        .bind(o.failure_reason.as_deref())
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records a drop's event in the caller's transaction.
pub async fn drop_event(
    tx: &mut Transaction<'_, Postgres>,
    drop_id: i64,
    product_name: &str,
    state: &str,
    kind: EventType,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("SELECT vq_webhook_drop($1, $2, $3, $4, $5)")
        .bind(kind.as_str())
        .bind(drop_id)
        .bind(product_name)
        .bind(state)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Announces the drop phases that move with time: the pre-queue opening (drops with one)
/// and the start, each once per drop, the mark and the event in one statement. Drops
/// another scheduler is announcing are skipped. Returns how many were announced.
pub async fn announce_phases(db: &sqlx::PgPool, at: DateTime<Utc>) -> sqlx::Result<u64> {
    let phases = [
        (
            "wh_prequeue_at",
            "prequeue_s > 0 AND starts_at - make_interval(secs => prequeue_s) <= $1",
            EventType::DropPreQueue,
        ),
        ("wh_live_at", "starts_at <= $1", EventType::DropLive),
    ];
    let mut n = 0;
    for (mark, due, kind) in phases {
        let sql = format!(
            "WITH d AS (UPDATE drops SET {mark} = $1 WHERE id IN (SELECT id FROM drops \
               WHERE {mark} IS NULL AND state = 'active' AND {due} ORDER BY id LIMIT 500 \
               FOR UPDATE SKIP LOCKED) RETURNING id, product_name, state) \
             SELECT vq_webhook_drop('{kind}', id, product_name, state, $1) FROM d ORDER BY id"
        );
        n += sqlx::query(&sql)
            .bind(at)
            .execute(db)
            .await?
            .rows_affected();
    }
    Ok(n)
}

/// The stock sync found the drop's stock at 0: announces `drop.sold_out` once, with the
/// mark in the same statement. Returns whether it was announced now.
pub async fn announce_sold_out(
    db: &sqlx::PgPool,
    drop_id: i64,
    at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "WITH d AS (UPDATE drops SET wh_sold_out_at = $2 WHERE id = $1 AND wh_sold_out_at IS NULL \
           RETURNING id, product_name, state) \
         SELECT vq_webhook_drop('drop.sold_out', id, product_name, state, $2) FROM d",
    )
    .bind(drop_id)
    .bind(at)
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_wire_name() {
        for t in EventType::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("order.unknown"), None);
        assert_eq!(EventType::of_status(Status::Charging), None);
        assert_eq!(
            EventType::of_status(Status::Expired),
            Some(EventType::OrderCancelled)
        );
    }
}
