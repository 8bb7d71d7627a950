//! Rebuilding a drop Redis lost without selling again what an acknowledged purchase holds
//! (docs/durability.md, "After Redis loss"). A purchase is acknowledged (201) once its
//! stream entry is in Redis; the order reaches PostgreSQL when a worker writes it. When
//! Redis loses the drop in between, the entry is gone, and only two facts survive:
//! the orders written, and the seq lease (`drop_seq_leases.issued_upto`, written before
//! Redis could issue any seq under it). Every seq up to the lease without an order may be a
//! 201 whose unit is held: the rebuild proves nothing is at stake only when there is none.
//! Otherwise the drop stays lost until a manager confirms, seeing the stake first; the
//! confirmed rebuild keeps those units off sale (`hold_back`, the default) or, explicitly,
//! releases them.

use crate::drops::{lost, stock, store};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, DropPath, Manager};
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;
use vq_core::domain::DropId;
use vq_core::{Keys, RedisConn};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/drops/{id}/rebuild", get(preview).post(confirm))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(preview, confirm))]
pub struct Doc;

/// What a rebuild of the drop would put at stake now.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct AtStake {
    pub drop_id: i64,
    /// Whether Redis lost the drop's state (a rebuild only runs then).
    pub lost: bool,
    /// The highest seq Redis may have issued (None: no lease recorded, nothing provable).
    pub issued_upto: Option<i64>,
    /// Orders written with a seq up to `issued_upto`.
    pub orders_written: i64,
    /// Seqs up to `issued_upto` without an order: each may be a 201 whose order is lost
    /// (or a token never used, or a seq never issued: nothing left tells them apart).
    pub unwritten_seqs: i64,
    pub per_user_limit: i64,
    /// Units those seqs may hold: min(units not held by PostgreSQL, unwritten × limit).
    pub units_at_risk: i64,
    /// Units PostgreSQL holds (taken orders and unapplied restocks).
    pub taken: i64,
    pub stock: i64,
    /// True when a rebuild needs a manager's confirmation (`units_at_risk > 0`).
    pub needs_confirm: bool,
}

/// How the manager settles what is at stake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Not confirmed: rebuild only when nothing is at stake.
    Unconfirmed,
    /// Confirmed: rebuild, keeping `units_at_risk` off sale.
    HoldBack,
    /// Confirmed: rebuild, selling those units again (a lost 201 may then be oversold).
    Release,
}

pub async fn at_stake(
    db: &PgPool,
    redis: &mut RedisConn,
    keys: &Keys,
    id: DropId,
) -> anyhow::Result<AtStake> {
    let d = store::load_from(db, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no drop {}", id.get()))?;
    let lease: Option<i64> =
        sqlx::query_scalar("SELECT issued_upto FROM drop_seq_leases WHERE drop_id = $1")
            .bind(id.get())
            .fetch_optional(db)
            .await?;
    let written: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM orders WHERE drop_id = $1 AND id > drop_id * 4294967296 \
         AND id <= drop_id * 4294967296 + $2",
    )
    .bind(id.get())
    .bind(lease.unwrap_or(i64::from(u32::MAX)))
    .fetch_one(db)
    .await?;
    let taken = stock::taken_units(db, id).await?;
    let free = (i64::from(d.stock) - taken).max(0);
    let limit = i64::from(d.per_user_limit);
    let unwritten = lease.map_or(0, |l| (l - written).max(0));
    let units = match lease {
        Some(_) => free.min(unwritten.saturating_mul(limit)),
        None => free,
    };
    let lost = lost::scan(db, redis, keys).await?.contains(&id);
    Ok(AtStake {
        drop_id: id.get(),
        lost,
        issued_upto: lease,
        orders_written: written,
        unwritten_seqs: unwritten,
        per_user_limit: limit,
        units_at_risk: units,
        taken,
        stock: i64::from(d.stock),
        needs_confirm: units > 0,
    })
}

/// What `rebuild_checked` did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Rebuilt {
    /// Sellable units after the rebuild.
    pub stock: i64,
    pub held_back: i64,
    pub at_stake: AtStake,
}

/// Why a rebuild did not run.
#[derive(Debug)]
pub enum Refused {
    /// Redis still has the drop: a rebuild would forget its live reservations.
    NotLost,
    /// Something may be at stake and no manager confirmed.
    NeedsConfirm(AtStake),
}

/// The rebuild every path uses (`vitaqueue rebuild`, the console, the automatic one):
/// refuses over a live drop, and without a confirmation whenever a unit may be held by an
/// acknowledged purchase it cannot see. Every run and refusal is recorded in
/// `drop_rebuilds`.
pub async fn rebuild_checked(
    db: &PgPool,
    redis: &mut RedisConn,
    keys: &Keys,
    id: DropId,
    decision: Decision,
    trigger: &'static str,
) -> anyhow::Result<Result<Rebuilt, Refused>> {
    let stake = at_stake(db, redis, keys, id).await?;
    if !stake.lost {
        return Ok(Err(Refused::NotLost));
    }
    let held_back = match decision {
        Decision::Unconfirmed if stake.needs_confirm => {
            record(db, &stake, trigger, false, 0, -1).await?;
            return Ok(Err(Refused::NeedsConfirm(stake)));
        }
        Decision::Unconfirmed | Decision::Release => 0,
        Decision::HoldBack => stake.units_at_risk,
    };
    let left = stock::restore(db, redis, keys, id, held_back).await?;
    let confirmed = decision != Decision::Unconfirmed;
    record(db, &stake, trigger, confirmed, held_back, left).await?;
    metrics::counter!("vq_drop_rebuilds_total", "trigger" => trigger).increment(1);
    tracing::warn!(
        drop = id.get(),
        stock = left,
        held_back,
        unwritten = stake.unwritten_seqs,
        ?decision,
        trigger,
        "drop's Redis state rebuilt from PostgreSQL"
    );
    Ok(Ok(Rebuilt {
        stock: left,
        held_back,
        at_stake: stake,
    }))
}

async fn record(
    db: &PgPool,
    s: &AtStake,
    trigger: &str,
    confirmed: bool,
    held_back: i64,
    stock: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO drop_rebuilds (drop_id, trigger, confirmed, issued_upto, orders_written, \
         unwritten_seqs, held_back, stock) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(s.drop_id)
    .bind(trigger)
    .bind(confirmed)
    .bind(s.issued_upto)
    .bind(s.orders_written)
    .bind(s.unwritten_seqs)
    .bind(held_back)
    .bind(stock)
    .execute(db)
    .await?;
    Ok(())
}

/// What a rebuild would put at stake: the acknowledged purchases whose orders may be lost.
#[utoipa::path(get, path = "/v1/admin/drops/{id}/rebuild", tag = "admin", security(("bearer" = ["manager"])),
    responses((status = 200, body = AtStake)))]
async fn preview(
    State(st): State<AppState>,
    Manager(_): Manager,
    DropPath(id): DropPath,
) -> Result<Json<AtStake>, ApiError> {
    let mut conn = st.redis.clone();
    if store::load_from(&st.db, id).await?.is_none() {
        return Err(ApiError::drop_not_found());
    }
    Ok(Json(at_stake(&st.db, &mut conn, &st.keys, id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RebuildBody {
    /// The manager saw what is at stake and rebuilds anyway.
    #[serde(default)]
    pub confirm: bool,
    /// With `confirm`: sell the units at risk again (default: keep them off sale).
    #[serde(default)]
    pub release: bool,
}

/// Rebuilds the drop's Redis state from PostgreSQL. Without `confirm: true` it runs only
/// when no acknowledged purchase can be at stake.
#[utoipa::path(post, path = "/v1/admin/drops/{id}/rebuild", tag = "admin", security(("bearer" = ["manager"])),
    request_body = RebuildBody,
    responses((status = 200, body = Rebuilt),
        (status = 409, body = ErrorBody, description = "`rebuild_needs_confirm` (with `at_stake`), `not_lost`: Redis still has the drop")))]
async fn confirm(
    State(st): State<AppState>,
    Manager(_): Manager,
    DropPath(id): DropPath,
    ApiJson(body): ApiJson<RebuildBody>,
) -> Result<Json<Rebuilt>, ApiError> {
    if store::load_from(&st.db, id).await?.is_none() {
        return Err(ApiError::drop_not_found());
    }
    let decision = match (body.confirm, body.release) {
        (false, _) => Decision::Unconfirmed,
        (true, false) => Decision::HoldBack,
        (true, true) => Decision::Release,
    };
    let mut conn = st.redis.clone();
    match rebuild_checked(&st.db, &mut conn, &st.keys, id, decision, "admin").await? {
        Ok(r) => Ok(Json(r)),
        Err(Refused::NotLost) => Err(ApiError::conflict(
            "not_lost",
            "Redis still has this drop's state: a rebuild would forget its live reservations",
            json!({}),
        )),
        Err(Refused::NeedsConfirm(s)) => Err(ApiError::conflict(
            "rebuild_needs_confirm",
            format!(
                "up to {} units may be held by acknowledged purchases whose orders were lost \
                 with Redis ({} seqs issued without an order); confirm to rebuild",
                s.units_at_risk, s.unwritten_seqs
            ),
            json!({ "at_stake": s }),
        )),
    }
}
