//! Drops: PostgreSQL holds the durable configuration, Redis a live mirror (the `cfg` hash
//! and the stock counter) that the Lua scripts read. Every change writes both, PostgreSQL
//! inside a transaction that only commits once Redis took the change.

use crate::error::ApiError;
use crate::AppState;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use serde::Serialize;
use serde_json::json;
use sqlx::FromRow;
use vq_core::autopilot::Setting;
use vq_core::domain::{DropEvent, DropId, DropState, ProductId};
use vq_orders::events::EventType;

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct DropRow {
    #[sqlx(try_from = "i64")]
    pub id: DropId,
    pub product_name: String,
    pub price_cents: i64,
    pub stock: i32,
    pub per_user_limit: i32,
    pub admission_rate: i32,
    pub max_holders: i32,
    pub token_ttl_s: i32,
    pub prequeue_s: i32,
    /// Live tokens per unreserved unit (the stock-aware cap in lua/admit.lua).
    pub overbook: f64,
    /// Expected share of admitted buyers who never buy: the ETA forecast's prior.
    pub expected_abandon: f64,
    pub starts_at: DateTime<Utc>,
    pub state: DropState,
    pub product_id: Option<i64>,
    /// The secret pre-queue draw seed: never serialised (the admin view would leak it
    /// before the start); revealed only by the fairness endpoint once the drop started.
    #[serde(skip)]
    #[schema(ignore)]
    #[sqlx(try_from = "Vec<u8>")]
    pub shuffle_seed: vq_core::fairness::Seed,
    /// Hex SHA-256 of the seed, public from creation on.
    pub shuffle_commitment: String,
    pub pow_difficulty: i32,
    /// The cap of the adaptive proof of work (0: the work stays at `pow_difficulty`).
    pub pow_max_difficulty: i32,
    /// The autopilot's band and targets, all set or none (see [`DropRow::autopilot`]).
    #[serde(skip)]
    #[schema(ignore)]
    pub autopilot_min_rate: Option<i32>,
    #[serde(skip)]
    #[schema(ignore)]
    pub autopilot_max_rate: Option<i32>,
    #[serde(skip)]
    #[schema(ignore)]
    pub autopilot_p99_ms: Option<i32>,
    #[serde(skip)]
    #[schema(ignore)]
    pub autopilot_lag_s: Option<i32>,
}

impl DropRow {
    pub fn drop_id(&self) -> DropId {
        self.id
    }

    /// The autopilot setting, when the drop set one.
    pub fn autopilot(&self) -> Option<Setting> {
        let u = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok());
        Some(Setting {
            min_rate: u(self.autopilot_min_rate)?,
            max_rate: u(self.autopilot_max_rate)?,
            purchase_p99_ms: u(self.autopilot_p99_ms)?,
            order_lag_s: u(self.autopilot_lag_s)?,
        })
    }

    pub fn set_autopilot(&mut self, a: Option<Setting>) {
        let i = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        self.autopilot_min_rate = a.map(|a| i(a.min_rate));
        self.autopilot_max_rate = a.map(|a| i(a.max_rate));
        self.autopilot_p99_ms = a.map(|a| i(a.purchase_p99_ms));
        self.autopilot_lag_s = a.map(|a| i(a.order_lag_s));
    }

    pub fn opens_at(&self) -> DateTime<Utc> {
        self.starts_at - chrono::Duration::seconds(self.prequeue_s.into())
    }
}

pub use super::mirror::{mirror, mirror_to};

const COLUMNS: &str = "id, product_name, price_cents, stock, per_user_limit, admission_rate, \
    max_holders, token_ttl_s, prequeue_s, overbook, starts_at, state, product_id, shuffle_seed, \
    shuffle_commitment, pow_difficulty, expected_abandon, pow_max_difficulty, autopilot_min_rate, \
    autopilot_max_rate, autopilot_p99_ms, autopilot_lag_s";

pub async fn load(st: &AppState, id: DropId) -> Result<DropRow, ApiError> {
    load_from(&st.db, id)
        .await?
        .ok_or_else(ApiError::drop_not_found)
}

pub async fn load_from(db: &sqlx::PgPool, id: DropId) -> sqlx::Result<Option<DropRow>> {
    sqlx::query_as::<_, DropRow>(&format!("SELECT {COLUMNS} FROM drops WHERE id = $1"))
        .bind(id.get())
        .fetch_optional(db)
        .await
}

pub struct NewDrop {
    pub product_name: String,
    pub price_cents: i64,
    pub stock: i32,
    pub per_user_limit: i32,
    pub admission_rate: i32,
    pub max_holders: i32,
    pub token_ttl_s: i32,
    pub prequeue_s: i32,
    pub overbook: f64,
    pub expected_abandon: f64,
    pub starts_at: DateTime<Utc>,
    pub product_id: Option<i64>,
    pub pow_difficulty: i32,
    /// `None`: the deployment's `pow.max_difficulty`.
    pub pow_max_difficulty: Option<i32>,
    pub autopilot: Option<Setting>,
}

/// Creates the drop with a fresh draw seed, so the commitment is public before anyone
/// can join.
pub async fn create(st: &AppState, n: NewDrop) -> Result<DropRow, ApiError> {
    let seed = vq_core::fairness::Seed::random();
    let mut tx = st.db.begin().await?;
    let row = sqlx::query_as::<_, DropRow>(&format!(
        "INSERT INTO drops (product_name, price_cents, stock, per_user_limit, admission_rate, \
         max_holders, token_ttl_s, prequeue_s, starts_at, product_id, overbook, shuffle_seed, \
         shuffle_commitment, pow_difficulty, expected_abandon, pow_max_difficulty, \
         autopilot_min_rate, autopilot_max_rate, autopilot_p99_ms, autopilot_lag_s) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20) \
         RETURNING {COLUMNS}"
    ))
    .bind(&n.product_name)
    .bind(n.price_cents)
    .bind(n.stock)
    .bind(n.per_user_limit)
    .bind(n.admission_rate)
    .bind(n.max_holders)
    .bind(n.token_ttl_s)
    .bind(n.prequeue_s)
    .bind(n.starts_at)
    .bind(n.product_id)
    .bind(n.overbook)
    .bind(seed.as_bytes())
    .bind(seed.commitment())
    .bind(n.pow_difficulty)
    .bind(n.expected_abandon)
    .bind(
        n.pow_max_difficulty
            .unwrap_or(st.pow.max_difficulty.min(32) as i32),
    )
    .bind(n.autopilot.map(|a| a.min_rate as i32))
    .bind(n.autopilot.map(|a| a.max_rate as i32))
    .bind(n.autopilot.map(|a| a.purchase_p99_ms as i32))
    .bind(n.autopilot.map(|a| a.order_lag_s as i32))
    .fetch_one(&mut *tx)
    .await?;
    let lease =
        super::lease::grant_first(&mut tx, row.drop_id(), row.admission_rate.into()).await?;
    let mut conn = st.redis.clone();
    mirror_to(&mut conn, &st.keys, &row, Some(st.ws.leave_grace_ms)).await?;
    let k = st.keys.drop(row.drop_id());
    st.scripts.raise_lease(&mut conn, &k, lease).await?;
    tx.commit().await?;
    Ok(row)
}

/// Saves an edited row (config fields only; stock and state are not touched here).
pub async fn save(st: &AppState, d: &DropRow) -> Result<DropRow, ApiError> {
    let mut tx = st.db.begin().await?;
    let row = sqlx::query_as::<_, DropRow>(&format!(
        "UPDATE drops SET product_name = $2, price_cents = $3, per_user_limit = $4, \
         admission_rate = $5, max_holders = $6, token_ttl_s = $7, prequeue_s = $8, \
         starts_at = $9, overbook = $10, pow_difficulty = $11, expected_abandon = $12, \
         pow_max_difficulty = $13, autopilot_min_rate = $14, autopilot_max_rate = $15, \
         autopilot_p99_ms = $16, autopilot_lag_s = $17, updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(d.id.get())
    .bind(&d.product_name)
    .bind(d.price_cents)
    .bind(d.per_user_limit)
    .bind(d.admission_rate)
    .bind(d.max_holders)
    .bind(d.token_ttl_s)
    .bind(d.prequeue_s)
    .bind(d.starts_at)
    .bind(d.overbook)
    .bind(d.pow_difficulty)
    .bind(d.expected_abandon)
    .bind(d.pow_max_difficulty)
    .bind(d.autopilot_min_rate)
    .bind(d.autopilot_max_rate)
    .bind(d.autopilot_p99_ms)
    .bind(d.autopilot_lag_s)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(ApiError::drop_not_found)?;
    mirror(st, &row).await?;
    tx.commit().await?;
    Ok(row)
}

/// Moves the drop to `to` if it is currently in one of `from` (with its webhook event in
/// the same transaction); tells every room.
pub async fn transition(
    st: &AppState,
    id: DropId,
    from: &[DropState],
    to: DropState,
) -> Result<DropRow, ApiError> {
    let mut tx = st.db.begin().await?;
    let current: Option<(DropState,)> =
        sqlx::query_as("SELECT state FROM drops WHERE id = $1 FOR UPDATE")
            .bind(id.get())
            .fetch_optional(&mut *tx)
            .await?;
    let (current,) = current.ok_or_else(ApiError::drop_not_found)?;
    if !from.contains(&current) {
        return Err(ApiError::conflict(
            "invalid_state",
            format!("cannot go from {current} to {to}"),
            json!({ "state": current }),
        ));
    }
    let row = sqlx::query_as::<_, DropRow>(&format!(
        "UPDATE drops SET state = $2, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id.get())
    .bind(to)
    .fetch_one(&mut *tx)
    .await?;
    let kind = match to {
        DropState::Paused => EventType::DropPaused,
        DropState::Active => EventType::DropResumed,
        DropState::Closed => EventType::DropClosed,
    };
    let at = DateTime::from_timestamp_millis(st.clock.now_ms()).unwrap_or_else(Utc::now);
    vq_orders::events::drop_event(&mut tx, id.get(), &row.product_name, to.as_str(), kind, at)
        .await?;
    mirror(st, &row).await?;
    tx.commit().await?;
    let mut conn = st.redis.clone();
    let event =
        serde_json::to_string(&DropEvent::State { state: to }).map_err(anyhow::Error::from)?;
    let _: () = conn.publish(st.keys.drop(id).events(), event).await?;
    Ok(row)
}

/// Drops newest first, `limit` rows with ids below `before`.
pub async fn page(st: &AppState, before: i64, limit: i64) -> Result<Vec<DropRow>, ApiError> {
    Ok(sqlx::query_as::<_, DropRow>(&format!(
        "SELECT {COLUMNS} FROM drops WHERE id < $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(&st.db)
    .await?)
}

/// Every drop not closed, oldest first (the console history samples these).
pub async fn open(st: &AppState) -> Result<Vec<DropRow>, ApiError> {
    Ok(sqlx::query_as::<_, DropRow>(&format!(
        "SELECT {COLUMNS} FROM drops WHERE state <> 'closed' ORDER BY id"
    ))
    .fetch_all(&st.db)
    .await?)
}

pub async fn of_product(st: &AppState, product: ProductId) -> Result<Vec<DropRow>, ApiError> {
    Ok(sqlx::query_as::<_, DropRow>(&format!(
        "SELECT {COLUMNS} FROM drops WHERE product_id = $1 ORDER BY id DESC LIMIT 50"
    ))
    .bind(product.get())
    .fetch_all(&st.db)
    .await?)
}

/// Deletes a drop nobody could have joined yet (its waiting room has not opened).
pub async fn delete(st: &AppState, id: DropId) -> Result<(), ApiError> {
    let mut tx = st.db.begin().await?;
    let d = sqlx::query_as::<_, DropRow>(&format!(
        "SELECT {COLUMNS} FROM drops WHERE id = $1 FOR UPDATE"
    ))
    .bind(id.get())
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(ApiError::drop_not_found)?;
    if st.clock.now_ms() >= d.opens_at().timestamp_millis() {
        return Err(ApiError::conflict(
            "already_open",
            "a drop whose waiting room opened cannot be deleted; close it instead",
            json!({ "state": d.state }),
        ));
    }
    sqlx::query("DELETE FROM drops WHERE id = $1")
        .bind(id.get())
        .execute(&mut *tx)
        .await?;
    let mut conn = st.redis.clone();
    let _: () = redis::pipe()
        .srem(st.keys.active_drops(), id.get())
        .srem(st.keys.stream_drops(), id.get())
        .query_async(&mut conn)
        .await?;
    let _: () = conn.del(st.keys.drop(id).all()).await?;
    tx.commit().await?;
    Ok(())
}
