//! Liveness and readiness probes.

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(ready))
}

/// Ready when both stores answer; a load balancer stops sending buyers here otherwise.
async fn ready(State(st): State<AppState>) -> (StatusCode, Json<Value>) {
    let mut conn = st.redis.clone();
    let redis_ok = redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .is_ok();
    let db_ok = sqlx::query("SELECT 1").execute(&st.db).await.is_ok();
    let status = if redis_ok && db_ok && !st.shutdown.is_fired() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "redis": redis_ok, "postgres": db_ok, "connections": st.hub.connections() })),
    )
}
