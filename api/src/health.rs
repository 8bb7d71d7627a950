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

/// Ready when both stores answer and no open drop lost its Redis state; a load balancer
/// stops sending buyers here otherwise. `needs_rebuild` lists the drops to rebuild (one
/// query and one Redis pipeline per probe).
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
