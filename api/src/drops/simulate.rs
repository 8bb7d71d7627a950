//! `POST /v1/admin/simulate` (manager only): the what-if simulator (vq_core::simulate) over
//! HTTP, for the console form. The body is read field by field, so every bad field (missing,
//! wrong type, out of range, unknown) is named in one 422 `validation_failed`.

use crate::error::ApiError;
use crate::extract::{ApiJson, Manager};
use crate::AppState;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Map, Value};
use std::sync::LazyLock;
use tokio::sync::Semaphore;
use vq_core::domain::FieldErrors;
use vq_core::simulate::{self, Params, Prediction};

/// Runs at once per node: a run of a million buyers takes a core for a fraction of a second.
static RUNS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(2));

const INTS: [&str; 4] = ["buyers", "stock", "rate", "token_ttl_s"];
const SHARES: [&str; 3] = ["abandon", "fail", "overbook"];

#[derive(utoipa::OpenApi)]
#[openapi(paths(simulate))]
pub struct Doc;

pub fn router() -> axum::Router<AppState> {
    Router::new().route("/v1/admin/simulate", post(simulate))
}

/// What-if: predicts a drop's sell-out time, waits, tokens per unit and share served from
/// its settings, before running it. Every bad field is named in one 422.
#[utoipa::path(post, path = "/v1/admin/simulate", tag = "admin", security(("bearer" = ["manager"])),
    request_body = Params,
    responses((status = 200, body = Prediction),
        (status = 503, body = crate::error::ErrorBody, description = "`busy`: two runs already going on this node")))]
async fn simulate(
    Manager(_): Manager,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Result<Json<Prediction>, ApiError> {
    let p = parse(&body).map_err(ApiError::Validation)?;
    let _permit = RUNS
        .try_acquire()
        .map_err(|_| ApiError::Busy { retry_after_s: 1 })?;
    let out = tokio::task::spawn_blocking(move || simulate::run(&p))
        .await
        .map_err(anyhow::Error::from)?;
    Ok(Json(out))
}

/// The body into checked parameters, or every problem by field.
fn parse(body: &Map<String, Value>) -> Result<Params, FieldErrors> {
    let mut bad = FieldErrors::new();
    for k in body.keys() {
        if !INTS.contains(&k.as_str()) && !SHARES.contains(&k.as_str()) && k != "seed" {
            bad.insert(k.clone(), "unknown field".into());
        }
    }
    let mut int = |k: &str| match body.get(k) {
        None => {
            bad.insert(k.into(), "required".into());
            0
        }
        Some(v) => v.as_u64().unwrap_or_else(|| {
            bad.insert(k.into(), "must be a whole number".into());
            0
        }),
    };
    let [buyers, stock, rate, token_ttl_s] = INTS.map(&mut int);
    let seed = body.get("seed").map_or(0, |_| int("seed"));
    let mut share = |k: &str| match body.get(k).and_then(Value::as_f64) {
        Some(v) => v,
        None => {
            bad.insert(k.into(), "required, a number".into());
            0.0
        }
    };
    let [abandon, fail, overbook] = SHARES.map(&mut share);
    let p = Params {
        buyers,
        stock,
        rate,
        token_ttl_s,
        abandon,
        fail,
        overbook,
        seed,
    };
    if let Err(errs) = p.check() {
        for e in errs {
            bad.entry(e.field.into()).or_insert(e.message);
        }
    }
    if bad.is_empty() {
        Ok(p)
    } else {
        Err(bad)
    }
}
