//! A bounded history of each open drop's numbers (stock left, queue length, admissions,
//! live token holders), so the manager console draws a chart that survives a reload and is
//! the same on every screen. Every api node runs `run` every `redis.history_ms`; a
//! `SET NX PX` gate per drop and interval lets one node record each sample fleet-wide. The
//! list is capped at `CAP` samples (RPUSH + LTRIM), so a drop's history never grows past a
//! fixed size (ten minutes at the default of one sample a second).
//!
//! `GET /v1/admin/drops/{id}/history` (manager) answers the samples oldest first, and the
//! drop's rate changes (the autopilot's and the managers', each with its reason; written
//! by lua/rate.lua into the capped `ratelog`), oldest first.

use crate::drops::{store, views};
use crate::error::ApiError;
use crate::extract::{DropPath, Manager};
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use vq_core::autopilot::RateChange;

/// Samples kept per drop.
pub const CAP: isize = 600;

#[derive(Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Sample {
    pub t_ms: i64,
    pub remaining: i64,
    pub queue_len: u64,
    pub admitted_total: u64,
    pub live_holders: u64,
    /// The admission rate at the sample (absent in samples older than the autopilot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u32>,
}

/// The console chart's data: the newest `cap` samples, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct History {
    pub drop_id: i64,
    pub cap: isize,
    pub samples: Vec<Sample>,
    /// Every recorded change of the admission rate, oldest first (the newest
    /// `autopilot::LOG_CAP`).
    pub rate_changes: Vec<RateChange>,
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(show))]
pub struct Doc;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/drops/{id}/history", get(show))
}

/// The drop's recent numbers (stock left, queue length, admissions, live holders, rate),
/// one sample per `redis.history_ms`, and its rate changes, for the console chart.
#[utoipa::path(get, path = "/v1/admin/drops/{id}/history", tag = "admin", security(("bearer" = ["manager"])),
    responses((status = 200, body = History)))]
async fn show(
    State(st): State<AppState>,
    Manager(_): Manager,
    DropPath(id): DropPath,
) -> Result<Json<History>, ApiError> {
    store::load(&st, id).await?;
    let mut conn = st.redis.clone();
    let k = st.keys.drop(id);
    let (raw, changes): (Vec<String>, Vec<String>) = redis::pipe()
        .lrange(k.history(), 0, -1)
        .lrange(k.ratelog(), 0, -1)
        .query_async(&mut conn)
        .await?;
    Ok(Json(History {
        drop_id: id.get(),
        cap: CAP,
        samples: parsed(&raw),
        rate_changes: parsed(&changes),
    }))
}

/// The entries that parse; others (an older or foreign shape) are skipped.
fn parsed<T: serde::de::DeserializeOwned>(raw: &[String]) -> Vec<T> {
    raw.iter()
        .filter_map(|s| serde_json::from_str(s).ok())
        .collect()
}

/// Records one sample of `d` unless a node already did in this interval (`every_ms`).
/// True when this call recorded it.
pub async fn record(st: &AppState, d: &store::DropRow, every_ms: u64) -> Result<bool, ApiError> {
    let k = st.keys.drop(d.drop_id());
    let mut conn = st.redis.clone();
    let gate: Option<String> = redis::cmd("SET")
        .arg(k.history_gate())
        .arg(1)
        .arg("NX")
        .arg("PX")
        .arg(every_ms.saturating_sub(50).max(1))
        .query_async(&mut conn)
        .await?;
    if gate.is_none() {
        return Ok(false);
    }
    let (s, _) = views::live_stats(st, d).await?;
    let rate: Option<u32> = conn.hget(k.cfg(), "rate").await?;
    let sample = Sample {
        rate,
        t_ms: st.clock.now_ms(),
        remaining: s.remaining,
        queue_len: s.queue_len,
        admitted_total: s.admitted_total,
        live_holders: s.live_holders,
    };
    let json = serde_json::to_string(&sample).map_err(anyhow::Error::from)?;
    let _: () = redis::pipe()
        .rpush(k.history(), json)
        .ignore()
        .ltrim(k.history(), -CAP, -1)
        .ignore()
        .query_async(&mut conn)
        .await?;
    Ok(true)
}

/// Samples every open drop once per `every_ms`, for as long as the api runs.
pub async fn run(st: AppState, every_ms: u64) {
    let mut tick = tokio::time::interval(Duration::from_millis(every_ms.max(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let rows = match store::open(&st).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!(error = %e, "history: listing open drops failed");
                continue;
            }
        };
        for d in &rows {
            if let Err(e) = record(&st, d, every_ms).await {
                tracing::debug!(drop = d.id.get(), error = %e, "history sample failed");
            }
        }
    }
}
