//! Read models: a drop's live numbers from Redis, its phase, and JSON views.

use crate::drops::store::DropRow;
use crate::AppState;
use chrono::{DateTime, Utc};
use serde::Serialize;
use vq_core::domain::{DropState, Phase};

#[derive(Debug, Serialize, Clone, Copy, Default, utoipa::ToSchema)]
pub struct LiveStats {
    pub remaining: i64,
    pub queue_len: u64,
    pub admitted_total: u64,
    pub live_holders: u64,
    pub expired_total: u64,
}

pub async fn live_stats(
    st: &AppState,
    d: &DropRow,
) -> redis::RedisResult<(LiveStats, Option<DropState>)> {
    let k = st.keys.drop(d.drop_id());
    let mut conn = st.redis.clone();
    let (remaining, queue_len, admitted, live, expired, state): (
        Option<i64>,
        u64,
        Option<u64>,
        u64,
        Option<u64>,
        Option<String>,
    ) = redis::pipe()
        .get(k.stock())
        .zcard(k.queue())
        .get(k.admitted())
        .zcard(k.expiry())
        .get(k.expired())
        .hget(k.cfg(), "state")
        .query_async(&mut conn)
        .await?;
    Ok((
        LiveStats {
            remaining: remaining.unwrap_or(0),
            queue_len,
            admitted_total: admitted.unwrap_or(0),
            live_holders: live,
            expired_total: expired.unwrap_or(0),
        },
        state.and_then(|s| s.parse().ok()),
    ))
}

/// The drop's phase given the live state (Redis, if mirrored) and stock.
pub fn phase(d: &DropRow, state: DropState, remaining: i64, now_ms: i64) -> Phase {
    let opens = d.opens_at().timestamp_millis();
    Phase::of(
        state,
        remaining,
        now_ms,
        opens,
        d.starts_at.timestamp_millis(),
    )
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PublicDrop {
    pub id: i64,
    pub product_name: String,
    pub price_cents: i64,
    pub stock: i32,
    pub remaining: i64,
    pub per_user_limit: i32,
    pub starts_at: DateTime<Utc>,
    pub opens_at: DateTime<Utc>,
    pub phase: Phase,
    pub queue_len: u64,
    /// Hex SHA-256 of the pre-queue draw seed (revealed at `/fairness` after the start).
    pub shuffle_commitment: String,
}

pub async fn public(st: &AppState, d: &DropRow) -> redis::RedisResult<PublicDrop> {
    let (s, state) = live_stats(st, d).await?;
    let state = state.unwrap_or(d.state);
    Ok(PublicDrop {
        id: d.id.get(),
        product_name: d.product_name.clone(),
        price_cents: d.price_cents,
        stock: d.stock,
        remaining: s.remaining,
        per_user_limit: d.per_user_limit,
        starts_at: d.starts_at,
        opens_at: d.opens_at(),
        phase: phase(d, state, s.remaining, st.clock.now_ms()),
        queue_len: s.queue_len,
        shuffle_commitment: d.shuffle_commitment.clone(),
    })
}
