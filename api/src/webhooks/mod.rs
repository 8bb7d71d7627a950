//! Webhook endpoints for integrators (manager role): register, list, disable and enable,
//! rotate the secret, delete, read the attempt log and redeliver an event. The domain is
//! `vq-webhooks`; delivery runs in the worker role. See docs/webhooks.md.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Manager};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use vq_webhooks::endpoints::{
    self, Attempt, Created, Endpoint, EndpointError, NewEndpoint, Rotated,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/webhooks", post(create).get(list))
        .route("/v1/admin/webhooks/{id}", get(show).delete(remove))
        .route("/v1/admin/webhooks/{id}/disable", post(disable))
        .route("/v1/admin/webhooks/{id}/enable", post(enable))
        .route("/v1/admin/webhooks/{id}/rotate", post(rotate))
        .route("/v1/admin/webhooks/{id}/deliveries", get(deliveries))
        .route(
            "/v1/admin/webhooks/{id}/events/{event_id}/redeliver",
            post(redeliver),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        create, list, show, remove, disable, enable, rotate, deliveries, redeliver
    ),
    components(schemas(vq_webhooks::Event, vq_webhooks::EventType))
)]
pub struct Doc;

impl From<EndpointError> for ApiError {
    fn from(e: EndpointError) -> Self {
        match e {
            EndpointError::Validation(f) => ApiError::Validation(f),
            EndpointError::NotFound => not_found(),
            EndpointError::EventNotFound => {
                ApiError::NotFound("event_not_found", "no such event".into())
            }
            EndpointError::TooMany { max } => ApiError::conflict(
                "limit_reached",
                format!("at most {max} webhook endpoints may exist; delete one first"),
                serde_json::json!({ "max": max }),
            ),
            EndpointError::Db(e) => ApiError::Internal(e.into()),
        }
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("webhook_not_found", "no such webhook endpoint".into())
}

fn endpoint_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    raw.parse().map_err(|_| not_found())
}

/// Registers an endpoint. The answer carries its signing secret: shown this once.
#[utoipa::path(post, path = "/v1/admin/webhooks", tag = "webhooks", security(("bearer" = ["manager"])),
    request_body = NewEndpoint, responses((status = 201, body = Created),
        (status = 409, body = ErrorBody, description = "`limit_reached`: `webhooks.max_endpoints` exist")))]
async fn create(
    State(st): State<AppState>,
    Manager(_): Manager,
    ApiJson(body): ApiJson<NewEndpoint>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let created = endpoints::create(&st.db, &st.webhooks, body).await?;
    tracing::info!(endpoint = %created.endpoint.id, url = %created.endpoint.url, "webhook endpoint created");
    Ok((StatusCode::CREATED, Json(created)))
}

/// Every endpoint (bounded by `webhooks.max_endpoints`), oldest first.
#[utoipa::path(get, path = "/v1/admin/webhooks", tag = "webhooks", security(("bearer" = ["manager"])),
    responses((status = 200, body = Vec<Endpoint>)))]
async fn list(
    State(st): State<AppState>,
    Manager(_): Manager,
) -> Result<Json<Vec<Endpoint>>, ApiError> {
    Ok(Json(endpoints::list(&st.db).await?))
}

#[utoipa::path(get, path = "/v1/admin/webhooks/{id}", tag = "webhooks", security(("bearer" = ["manager"])),
    params(("id" = uuid::Uuid, Path, description = "The endpoint's id")),
    responses((status = 200, body = Endpoint)))]
async fn show(
    State(st): State<AppState>,
    Manager(_): Manager,
    Path(id): Path<String>,
) -> Result<Json<Endpoint>, ApiError> {
    Ok(Json(endpoints::get(&st.db, endpoint_id(&id)?).await?))
}

/// Deletes the endpoint, its pending deliveries and its attempt log.
#[utoipa::path(delete, path = "/v1/admin/webhooks/{id}", tag = "webhooks", security(("bearer" = ["manager"])),
    params(("id" = uuid::Uuid, Path, description = "The endpoint's id")),
    responses((status = 204, description = "Deleted")))]
async fn remove(
    State(st): State<AppState>,
    Manager(_): Manager,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    endpoints::delete(&st.db, endpoint_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stops deliveries to the endpoint (new events are not queued for it meanwhile).
#[utoipa::path(post, path = "/v1/admin/webhooks/{id}/disable", tag = "webhooks", security(("bearer" = ["manager"])),
    params(("id" = uuid::Uuid, Path, description = "The endpoint's id")),
    responses((status = 200, body = Endpoint)))]
async fn disable(
    State(st): State<AppState>,
    Manager(_): Manager,
    Path(id): Path<String>,
) -> Result<Json<Endpoint>, ApiError> {
    Ok(Json(
        endpoints::set_enabled(&st.db, endpoint_id(&id)?, false).await?,
    ))
}

/// Resumes deliveries (also after an automatic disable), with a fresh failure clock.
#[utoipa::path(post, path = "/v1/admin/webhooks/{id}/enable", tag = "webhooks", security(("bearer" = ["manager"])),
    params(("id" = uuid::Uuid, Path, description = "The endpoint's id")),
    responses((status = 200, body = Endpoint)))]
async fn enable(
    State(st): State<AppState>,
    Manager(_): Manager,
    Path(id): Path<String>,
) -> Result<Json<Endpoint>, ApiError> {
    Ok(Json(
        endpoints::set_enabled(&st.db, endpoint_id(&id)?, true).await?,
    ))
}

/// A new signing secret (shown once); the previous one keeps signing for 24 h, so every
/// delivery meanwhile carries two `v1` signatures.
#[utoipa::path(post, path = "/v1/admin/webhooks/{id}/rotate", tag = "webhooks", security(("bearer" = ["manager"])),
    params(("id" = uuid::Uuid, Path, description = "The endpoint's id")),
    responses((status = 200, body = Rotated)))]
async fn rotate(
    State(st): State<AppState>,
    Manager(_): Manager,
    Path(id): Path<String>,
) -> Result<Json<Rotated>, ApiError> {
    Ok(Json(endpoints::rotate(&st.db, endpoint_id(&id)?).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
struct AttemptsQuery {
    /// How many attempts, newest first (1–500, default 100).
    limit: Option<i64>,
}

/// The endpoint's delivery attempts, newest first, with status and latency.
#[utoipa::path(get, path = "/v1/admin/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = ["manager"])),
    params(("id" = uuid::Uuid, Path, description = "The endpoint's id"), AttemptsQuery),
    responses((status = 200, body = Vec<Attempt>)))]
async fn deliveries(
    State(st): State<AppState>,
    Manager(_): Manager,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AttemptsQuery>,
) -> Result<Json<Vec<Attempt>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    Ok(Json(
        endpoints::attempts(&st.db, endpoint_id(&id)?, limit).await?,
    ))
}

/// Queues the event for this endpoint again, now (delivered or not before).
#[utoipa::path(post, path = "/v1/admin/webhooks/{id}/events/{event_id}/redeliver", tag = "webhooks",
    security(("bearer" = ["manager"])),
    params(("id" = uuid::Uuid, Path, description = "The endpoint's id"),
        ("event_id" = uuid::Uuid, Path, description = "The event's id")),
    responses((status = 202, description = "Queued")))]
async fn redeliver(
    State(st): State<AppState>,
    Manager(_): Manager,
    Path((id, event)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let event = event
        .parse()
        .map_err(|_| ApiError::NotFound("event_not_found", "no such event".into()))?;
    endpoints::redeliver(&st.db, endpoint_id(&id)?, event).await?;
    Ok(StatusCode::ACCEPTED)
}
