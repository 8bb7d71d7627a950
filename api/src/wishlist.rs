//! A buyer's wishlist of products (owner only). Wishlisted buyers are told when a drop of
//! the product opens its waiting room (see vq_orders::notify).

use crate::error::ApiError;
use crate::extract::{ApiQuery, AuthUser, ProductPath};
use crate::pagination::{paged, PageQuery, Paged};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/wishlist", get(list))
        .route("/v1/wishlist/{id}", put(upsert).delete(remove))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, upsert, remove))]
pub struct Doc;

/// A product on the wishlist.
#[derive(Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = WishlistEntry)]
struct Entry {
    product_id: i64,
    product_name: String,
    note: String,
    notify: bool,
    created_at: DateTime<Utc>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WishlistBody)]
struct Body {
    note: Option<String>,
    notify: Option<bool>,
}

#[utoipa::path(get, path = "/v1/wishlist", tag = "catalog", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Paged<Entry>)))]
async fn list(
    State(st): State<AppState>,
    AuthUser(p): AuthUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Paged<Entry>>, ApiError> {
    let page = q.page()?;
    let rows = sqlx::query_as::<_, Entry>(
        "SELECT w.product_id, p.name AS product_name, w.note, w.notify, w.created_at \
         FROM wishlist w JOIN products p ON p.id = w.product_id \
         WHERE w.user_id = $1 AND w.product_id < $2 ORDER BY w.product_id DESC LIMIT $3",
    )
    .bind(p.user.0)
    .bind(page.before)
    .bind(page.limit + 1)
    .fetch_all(&st.db)
    .await?;
    Ok(Json(paged(rows, page.limit, |e| e.product_id)))
}

/// The body is optional: an empty PUT just adds the product with defaults.
impl TryFrom<axum::body::Bytes> for Body {
    type Error = ApiError;

    fn try_from(raw: axum::body::Bytes) -> Result<Self, ApiError> {
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body {
                note: None,
                notify: None,
            });
        }
        let body: Body = serde_json::from_slice(&raw).map_err(|e| {
            let malformed = e.is_syntax() || e.is_eof();
            ApiError::BadRequest {
                status: if malformed {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                },
                code: if malformed {
                    "malformed_json"
                } else {
                    "invalid_body"
                },
                message: e.to_string(),
            }
        })?;
        let mut c = vq_core::domain::Checker::default();
        c.opt("note", body.note.as_deref(), note);
        c.finish().map_err(ApiError::Validation)?;
        Ok(body)
    }
}

/// A note may span lines; no other control characters (NUL would fail in PostgreSQL).
fn note(n: &str) -> Result<(), vq_core::domain::Invalid> {
    use vq_core::domain::{no_controls, Invalid, Lines};
    no_controls(n, Lines::Multi)?;
    if n.chars().count() > 500 {
        return Err(Invalid("must be at most 500 characters".into()));
    }
    Ok(())
}

/// Adds the product (201) or updates the entry (200).
#[utoipa::path(put, path = "/v1/wishlist/{id}", tag = "catalog", security(("bearer" = [])), request_body(content = Body, description = "May be empty: no note, notifications on"),
    responses((status = 201, body = Entry), (status = 200, body = Entry)))]
async fn upsert(
    State(st): State<AppState>,
    AuthUser(p): AuthUser,
    ProductPath(product): ProductPath,
    raw: axum::body::Bytes,
) -> Result<(StatusCode, Json<Entry>), ApiError> {
    let body = Body::try_from(raw)?;
    let name = crate::products::load(&st, product).await?.name;
    let (created_at, inserted): (DateTime<Utc>, bool) = sqlx::query_as(
        "INSERT INTO wishlist (user_id, product_id, note, notify) VALUES ($1, $2, COALESCE($3, ''), COALESCE($4, TRUE)) \
         ON CONFLICT (user_id, product_id) DO UPDATE SET note = COALESCE($3, wishlist.note), \
         notify = COALESCE($4, wishlist.notify), updated_at = now() \
         RETURNING created_at, (xmax = 0) AS inserted",
    )
    .bind(p.user.0)
    .bind(product.get())
    .bind(&body.note)
    .bind(body.notify)
    .fetch_one(&st.db)
    .await?;
    let (note, notify): (String, bool) =
        sqlx::query_as("SELECT note, notify FROM wishlist WHERE user_id = $1 AND product_id = $2")
            .bind(p.user.0)
            .bind(product.get())
            .fetch_one(&st.db)
            .await?;
    let status = if inserted {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(Entry {
            product_id: product.get(),
            product_name: name,
            note,
            notify,
            created_at,
        }),
    ))
}

/// Idempotent: removing what is not there is still 204.
#[utoipa::path(delete, path = "/v1/wishlist/{id}", tag = "catalog", security(("bearer" = [])),
    responses((status = 204, description = "Removed (or was not there)")))]
async fn remove(
    State(st): State<AppState>,
    AuthUser(p): AuthUser,
    ProductPath(product): ProductPath,
) -> Result<StatusCode, ApiError> {
    sqlx::query("DELETE FROM wishlist WHERE user_id = $1 AND product_id = $2")
        .bind(p.user.0)
        .bind(product.get())
        .execute(&st.db)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
