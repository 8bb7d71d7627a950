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
use vq_core::domain::{DropEvent, DropId, DropState, ProductId};

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
}

impl DropRow {
    pub fn drop_id(&self) -> DropId {
        self.id
    }

    pub fn opens_at(&self) -> DateTime<Utc> {
        self.starts_at - chrono::Duration::seconds(self.prequeue_s.into())
    }
}

pub use super::mirror::{mirror, mirror_to};

const COLUMNS: &str = "id, product_name, price_cents, stock, per_user_limit, admission_rate, \
    max_holders, token_ttl_s, prequeue_s, overbook, starts_at, state, product_id, shuffle_seed, \
    shuffle_commitment, pow_difficulty, expected_abandon";

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
}

/// Creates the drop with a fresh draw seed, so the commitment is public before anyone
/// can join.
pub async fn create(st: &AppState, n: NewDrop) -> Result<DropRow, ApiError> {
    let seed = vq_core::fairness::Seed::random();
    let mut tx = st.db.begin().await?;
    let row = sqlx::query_as::<_, DropRow>(&format!(
        "INSERT INTO drops (product_name, price_cents, stock, per_user_limit, admission_rate, \
         max_holders, token_ttl_s, prequeue_s, starts_at, product_id, overbook, shuffle_seed, \
         shuffle_commitment, pow_difficulty, expected_abandon) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
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
         updated_at = now() \
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
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(ApiError::drop_not_found)?;
    mirror(st, &row).await?;
    tx.commit().await?;
    Ok(row)
}

/// Moves the drop to `to` if it is currently in one of `from`; tells every room.
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
