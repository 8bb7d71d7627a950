//! A buyer's notifications (for the web page; open WebSockets get them pushed too).

use crate::error::ApiError;
use crate::extract::{ApiQuery, AuthUser};
use crate::pagination::{paged, PageQuery, Paged};
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/notifications", get(list))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(list))]
pub struct Doc;

#[derive(Serialize, sqlx::FromRow, utoipa::ToSchema)]
struct Notification {
    id: i64,
    kind: String,
    drop_id: i64,
    message: String,
    created_at: DateTime<Utc>,
}

/// What this account was told, newest first.
#[utoipa::path(get, path = "/v1/notifications", tag = "notifications", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Paged<Notification>)))]
async fn list(
    State(st): State<AppState>,
    AuthUser(p): AuthUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Paged<Notification>>, ApiError> {
    let page = q.page()?;
    let rows = sqlx::query_as::<_, Notification>(
        "SELECT id, kind, drop_id, message, created_at FROM notifications \
         WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
    )
    .bind(p.user.0)
    .bind(page.before)
    .bind(page.limit + 1)
    .fetch_all(&st.db)
    .await?;
    Ok(Json(paged(rows, page.limit, |n| n.id)))
}
