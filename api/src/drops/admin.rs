//! Drop manager API: create and configure drops; change the rate, pause, resume and close
//! while live. Every route needs the manager role.

use crate::drops::autopilot;
use crate::drops::spec::{CreateDropBody, DropFields, DropPatch};
use crate::drops::store::{self, DropRow, NewDrop};
use crate::drops::views::{self, LiveStats};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, DropPath, Manager};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use vq_core::domain::DropState::{Active, Closed, Paused};
use vq_core::domain::{DropState, Phase, ProductId};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/drops", post(create).get(list))
        .route(
            "/v1/admin/drops/{id}",
            get(show).patch(update).delete(remove),
        )
        .route("/v1/admin/drops/{id}/pause", post(pause))
        .route("/v1/admin/drops/{id}/resume", post(resume))
        .route("/v1/admin/drops/{id}/close", post(close))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(create, list, show, update, remove, pause, resume, close))]
pub struct Doc;

/// A drop as its manager sees it: the stored row, the phase and the live counters.
#[derive(Serialize, utoipa::ToSchema)]
struct AdminDrop {
    #[serde(flatten)]
    drop: DropRow,
    phase: Phase,
    stats: LiveStats,
    orders_in_db: i64,
    /// The autopilot's band and targets; absent when the rate is the manager's alone.
    autopilot: Option<vq_core::autopilot::Setting>,
    #[serde(flatten)]
    rate: autopilot::RateNow,
}

async fn view(st: &AppState, d: DropRow) -> Result<AdminDrop, ApiError> {
    let (stats, state) = views::live_stats(st, &d).await?;
    let state = state.unwrap_or(d.state);
    let (orders_in_db,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM orders WHERE drop_id = $1")
        .bind(d.id.get())
        .fetch_one(&st.db)
        .await?;
    let rate = autopilot::rate_now(st, &d).await?;
    Ok(AdminDrop {
        phase: views::phase(&d, state, stats.remaining, st.clock.now_ms()),
        autopilot: d.autopilot(),
        drop: d,
        stats,
        orders_in_db,
        rate,
    })
}

/// Creates a drop (its Redis mirror too); `product_id` fills the name and price.
#[utoipa::path(post, path = "/v1/admin/drops", tag = "admin", security(("bearer" = ["manager"])),
    request_body = CreateDropBody, responses((status = 201, body = AdminDrop)))]
async fn create(
    State(st): State<AppState>,
    Manager(_): Manager,
    ApiJson(mut body): ApiJson<CreateDropBody>,
) -> Result<(StatusCode, Json<AdminDrop>), ApiError> {
    if let Some(pid) = body.product_id {
        match ProductId::new(pid) {
            Ok(pid) => match crate::products::load(&st, pid).await {
                Ok(p) => {
                    body.product_name.get_or_insert(p.name);
                    body.price_cents.get_or_insert(p.price_cents);
                }
                Err(ApiError::NotFound(..)) => body.unknown_product = true,
                Err(e) => return Err(e),
            },
            Err(_) => body.unknown_product = true,
        }
    }
    let new = NewDrop::try_from(body).map_err(ApiError::Validation)?;
    let row = store::create(&st, new).await?;
    tracing::info!(
        drop = row.id.get(),
        stock = row.stock,
        rate = row.admission_rate,
        "drop created"
    );
    Ok((StatusCode::CREATED, Json(view(&st, row).await?)))
}

#[utoipa::path(get, path = "/v1/admin/drops/{id}", tag = "admin", security(("bearer" = ["manager"])),
    responses((status = 200, body = AdminDrop)))]
async fn show(
    State(st): State<AppState>,
    Manager(_): Manager,
    DropPath(id): DropPath,
) -> Result<Json<AdminDrop>, ApiError> {
    let d = store::load(&st, id).await?;
    Ok(Json(view(&st, d).await?))
}

/// Changes the given fields (the stock is fixed); a closed drop cannot change.
#[utoipa::path(patch, path = "/v1/admin/drops/{id}", tag = "admin", security(("bearer" = ["manager"])),
    request_body = DropFields, responses((status = 200, body = AdminDrop),
        (status = 409, body = ErrorBody, description = "`invalid_state` (closed) or `already_open` (start or pre-queue change after opening)")))]
async fn update(
    State(st): State<AppState>,
    Manager(_): Manager,
    DropPath(id): DropPath,
    ApiJson(patch): ApiJson<DropFields>,
) -> Result<Json<AdminDrop>, ApiError> {
    let mut d = store::load(&st, id).await?;
    let p = DropPatch::try_from(patch).map_err(ApiError::Validation)?;
    if d.state == DropState::Closed {
        return Err(ApiError::conflict(
            "invalid_state",
            "a closed drop cannot change",
            serde_json::json!({ "state": d.state }),
        ));
    }
    // Moving the start after the room opened would reorder people already waiting.
    if (p.starts_at.is_some() || p.prequeue_s.is_some())
        && st.clock.now_ms() >= d.opens_at().timestamp_millis()
    {
        return Err(ApiError::conflict(
            "already_open",
            "start time and pre-queue window are fixed once the waiting room opened",
            serde_json::Value::Null,
        ));
    }
    d.product_name = p.product_name.unwrap_or(d.product_name);
    d.price_cents = p.price_cents.unwrap_or(d.price_cents);
    d.starts_at = p.starts_at.unwrap_or(d.starts_at);
    d.per_user_limit = p.per_user_limit.unwrap_or(d.per_user_limit);
    d.admission_rate = p.admission_rate.unwrap_or(d.admission_rate);
    d.max_holders = p.max_holders.unwrap_or(d.max_holders);
    d.token_ttl_s = p.token_ttl_s.unwrap_or(d.token_ttl_s);
    d.prequeue_s = p.prequeue_s.unwrap_or(d.prequeue_s);
    d.overbook = p.overbook.unwrap_or(d.overbook);
    d.expected_abandon = p.expected_abandon.unwrap_or(d.expected_abandon);
    d.pow_difficulty = p.pow_difficulty.unwrap_or(d.pow_difficulty);
    d.pow_max_difficulty = p.pow_max_difficulty.unwrap_or(d.pow_max_difficulty);
    // A rate set by hand takes it back from the autopilot (unless the same patch sets one).
    match p.autopilot {
        Some(a) => d.set_autopilot(a),
        None if p.admission_rate.is_some() => d.set_autopilot(None),
        None => {}
    }
    let row = store::save(&st, &d).await?;
    if p.admission_rate.is_some() {
        autopilot::set_by_hand(&st, &row).await?;
    }
    tracing::info!(
        drop = row.id.get(),
        rate = row.admission_rate,
        "drop updated"
    );
    Ok(Json(view(&st, row).await?))
}

/// Pauses admission (the queue keeps its order).
#[utoipa::path(post, path = "/v1/admin/drops/{id}/pause", tag = "admin", security(("bearer" = ["manager"])),
    responses((status = 200, body = AdminDrop), (status = 409, body = ErrorBody, description = "`invalid_state` (with `state`): not from the drop's state")))]
async fn pause(
    State(st): State<AppState>,
    Manager(_): Manager,
    DropPath(id): DropPath,
) -> Result<Json<AdminDrop>, ApiError> {
    let row = store::transition(&st, id, &[Active], Paused).await?;
    Ok(Json(view(&st, row).await?))
}

/// Resumes a paused drop.
#[utoipa::path(post, path = "/v1/admin/drops/{id}/resume", tag = "admin", security(("bearer" = ["manager"])),
    responses((status = 200, body = AdminDrop), (status = 409, body = ErrorBody, description = "`invalid_state` (with `state`): not from the drop's state")))]
async fn resume(
    State(st): State<AppState>,
    Manager(_): Manager,
    DropPath(id): DropPath,
) -> Result<Json<AdminDrop>, ApiError> {
    let row = store::transition(&st, id, &[Paused], Active).await?;
    Ok(Json(view(&st, row).await?))
}

/// Ends the drop for good.
#[utoipa::path(post, path = "/v1/admin/drops/{id}/close", tag = "admin", security(("bearer" = ["manager"])),
    responses((status = 200, body = AdminDrop), (status = 409, body = ErrorBody, description = "`invalid_state` (with `state`): not from the drop's state")))]
async fn close(
    State(st): State<AppState>,
    Manager(_): Manager,
    DropPath(id): DropPath,
) -> Result<Json<AdminDrop>, ApiError> {
    let row = store::transition(&st, id, &[Active, Paused], Closed).await?;
    Ok(Json(view(&st, row).await?))
}

#[utoipa::path(get, path = "/v1/admin/drops", tag = "admin", security(("bearer" = ["manager"])),
    params(crate::pagination::PageQuery),
    responses((status = 200, body = crate::pagination::Paged<AdminDrop>)))]
async fn list(
    State(st): State<AppState>,
    Manager(_): Manager,
    crate::extract::ApiQuery(q): crate::extract::ApiQuery<crate::pagination::PageQuery>,
) -> Result<Json<crate::pagination::Paged<AdminDrop>>, ApiError> {
    let page = q.page()?;
    let rows = store::page(&st, page.before, page.limit + 1).await?;
    let mut items = Vec::with_capacity(rows.len());
    for d in rows {
        items.push(view(&st, d).await?);
    }
    Ok(Json(crate::pagination::paged(items, page.limit, |d| {
        d.drop.id.get()
    })))
}

#[utoipa::path(delete, path = "/v1/admin/drops/{id}", tag = "admin", security(("bearer" = ["manager"])),
    responses((status = 204, description = "Deleted"), (status = 409, body = ErrorBody, description = "`already_open`: its waiting room opened; close it instead")))]
async fn remove(
    State(st): State<AppState>,
    Manager(_): Manager,
    DropPath(id): DropPath,
) -> Result<StatusCode, ApiError> {
    store::delete(&st, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
