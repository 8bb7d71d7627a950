//! Liveness and readiness probes.

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(ready))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, ready))]
pub struct Doc;

/// Alive: the process answers (it checks nothing else).
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Object)))]
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when both stores answer and no open drop lost its Redis state; a load balancer
/// stops sending buyers here otherwise. `needs_rebuild` lists the drops to rebuild (one
/// query and one Redis pipeline per probe).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready: `{redis, postgres, needs_rebuild: [], ...}`", body = Object),
        (status = 503, description = "Not ready: the same body says which part failed", body = Object)))]
async fn ready(State(st): State<AppState>) -> (StatusCode, Json<Value>) {
    let mut conn = st.redis.clone();
    let redis_ok = redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .is_ok();
    let db_ok = sqlx::query("SELECT 1").execute(&st.db).await.is_ok();
    let lost = if redis_ok && db_ok {
        crate::drops::lost::scan(&st.db, &mut conn, &st.keys)
            .await
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let status = if redis_ok && db_ok && lost.is_empty() && !st.shutdown.is_fired() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "redis": redis_ok,
            "postgres": db_ok,
            "needs_rebuild": lost,
            "connections": st.hub.connections(),
        })),
    )
}
