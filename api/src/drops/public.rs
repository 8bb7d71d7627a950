//! Shopper HTTP API for one drop: details, the waiting room over plain HTTP (for clients
//! without WebSockets, and the load tester). The purchase lives in `purchase`.

use crate::drops::wire as replies;
use crate::drops::{lost, store, views};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{DropPath, Shopper, ShopperUnchecked};
use crate::limits::ClientIp;
use crate::messages::{Position, ServerMsg};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use redis::AsyncCommands;
use serde::Serialize;
use serde_json::{json, Value};
use vq_core::clock::rfc3339;
use vq_core::domain::{DropId, UserId};
use vq_core::fairness::Draw;
use vq_core::scripts::{JoinOutcome, JoinReject};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/drops", get(list))
        .route("/v1/drops/{id}", get(show))
        .route("/v1/drops/{id}/queue", post(join).get(status).delete(leave))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show, join, status, leave))]
pub struct Doc;

/// The drops, newest first, as buyers see them.
#[utoipa::path(get, path = "/v1/drops", tag = "drops", params(crate::pagination::PageQuery),
    responses((status = 200, body = crate::pagination::Paged<views::PublicDrop>)))]
async fn list(
    State(st): State<AppState>,
    crate::extract::ApiQuery(q): crate::extract::ApiQuery<crate::pagination::PageQuery>,
) -> Result<Json<crate::pagination::Paged<views::PublicDrop>>, ApiError> {
    let page = q.page()?;
    let rows = store::page(&st, page.before, page.limit + 1).await?;
    let mut items = Vec::with_capacity(rows.len());
    for d in &rows {
        items.push(views::public(&st, d).await?);
    }
    Ok(Json(crate::pagination::paged(items, page.limit, |d| d.id)))
}

/// One drop as buyers see it: phase, stock left, queue length, start.
#[utoipa::path(get, path = "/v1/drops/{id}", tag = "drops",
    responses((status = 200, body = views::PublicDrop)))]
async fn show(
    State(st): State<AppState>,
    DropPath(id): DropPath,
) -> Result<Json<views::PublicDrop>, ApiError> {
    let d = store::load(&st, id).await?;
    Ok(Json(views::public(&st, &d).await?))
}

/// Runs the join script (or a peek) and maps every outcome to a response body.
pub async fn join_or_peek(
    st: &AppState,
    id: DropId,
    user: UserId,
    peek: bool,
) -> Result<JoinOutcome, ApiError> {
    let started = std::time::Instant::now();
    let pseudonym = st.fairness.pseudonym(id, user);
    // A peek inserts nothing, so it needs no score (and no seed).
    let score = match peek {
        true => 0.0,
        false => (st.fairness.seed(st, id).await?).map_or(0.0, |s| s.score(&pseudonym)),
    };
    let draw = Draw {
        score,
        pseudonym: &pseudonym,
    };
    let mut conn = st.redis.clone();
    let out = st
        .scripts
        .join(&mut conn, &st.keys.drop(id), user, &st.clock, draw, peek)
        .await?;
    if !peek {
        metrics::histogram!("vq_join_duration_seconds").record(started.elapsed().as_secs_f64());
        let result = match &out {
            JoinOutcome::Queued { .. } => "queued",
            JoinOutcome::Admitted { .. } => "admitted",
            JoinOutcome::NotQueued => "not_queued",
            JoinOutcome::Rejected(_) => "rejected",
        };
        metrics::counter!("vq_joins_total", "result" => result).increment(1);
    }
    match out {
        JoinOutcome::Rejected(JoinReject::NoDrop) if lost::knows(st, id).await? => {
            Err(ApiError::Join(JoinReject::NeedsRebuild))
        }
        JoinOutcome::Rejected(r) => Err(ApiError::Join(r)),
        other => Ok(other),
    }
}

/// The HTTP queue answer: the WebSocket's position message plus `status: queued`.
#[derive(Serialize)]
struct Queued {
    #[serde(flatten)]
    msg: ServerMsg,
    status: &'static str,
}

async fn place_body(st: &AppState, id: DropId, out: JoinOutcome) -> Result<Value, ApiError> {
    Ok(match out {
        JoinOutcome::Queued { rank, prequeue, .. } => {
            let r = crate::outlook::read(st, id).await?;
            let pos = Position::with(rank, r.rate, r.queue_len, prequeue, &r.outlook);
            json!(Queued {
                msg: ServerMsg::Position(pos),
                status: "queued",
            })
        }
        JoinOutcome::Admitted {
            token,
            expires_at_ms,
            seq,
        } => json!({
            "status": "admitted",
            "token": token,
            "seq": seq,
            "expires_at": rfc3339(expires_at_ms),
            "expires_at_ms": expires_at_ms,
        }),
        JoinOutcome::NotQueued => {
            return Err(ApiError::NotFound(
                "not_in_queue",
                "you have no place in this waiting room".into(),
            ))
        }
        JoinOutcome::Rejected(r) => return Err(ApiError::Join(r)),
    })
}

/// The place as JSON, with the buyer's own pseudonym for this drop, to find themselves in
/// the draw published after the start.
async fn place_reply(
    st: &AppState,
    id: DropId,
    user: UserId,
    out: JoinOutcome,
) -> Result<Json<Value>, ApiError> {
    let mut body = place_body(st, id, out).await?;
    body["pseudonym"] = json!(st.fairness.pseudonym(id, user));
    Ok(Json(body))
}

/// Joins the waiting room over plain HTTP (the room socket does the same on upgrade). The
/// proof of work, when the drop asks for one, comes in `X-VQ-Pow` or `?pow=`.
#[utoipa::path(post, path = "/v1/drops/{id}/queue", tag = "drops",
    security(("bearer" = ["shopper"])), params(("pow" = Option<String>, Query, description = "`<nonce>.<counter>`, or the X-VQ-Pow header")),
    responses((status = 200, body = replies::Place),
        (status = 403, body = ErrorBody, description = "`pow_required` (with a fresh `challenge`)"),
        (status = 409, body = ErrorBody, description = "`drop_closed`, `sold_out` (`waitlist: true` keeps the place), `limit_reached`, `not_open` (with `opens_at`)"),
        (status = 429, body = ErrorBody, description = "`rate_limited` (with `retry_after`)"),
        (status = 503, body = ErrorBody, description = "`needs_rebuild`: Redis lost this drop's state")))]
async fn join(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    DropPath(id): DropPath,
    who: ShopperUnchecked,
    pow: crate::pow::PowSolution,
) -> Result<Json<Value>, ApiError> {
    let p = who.p;
    st.limits.join(ip, p.user, Some(&who.jti)).await?;
    let joiner = crate::pow::Joiner {
        user: p.user,
        ip,
        account_created: p.account_created,
    };
    crate::pow::verify(&st, id, joiner, &pow).await?;
    let out = join_or_peek(&st, id, p.user, false).await?;
    place_reply(&st, id, p.user, out).await
}

/// The caller's place, without joining.
#[utoipa::path(get, path = "/v1/drops/{id}/queue", tag = "drops", security(("bearer" = ["shopper"])),
    responses((status = 200, body = replies::Place),
        (status = 404, body = ErrorBody, description = "`not_in_queue` or `drop_not_found`")))]
async fn status(
    State(st): State<AppState>,
    DropPath(id): DropPath,
    Shopper(p): Shopper,
) -> Result<Json<Value>, ApiError> {
    let out = join_or_peek(&st, id, p.user, true).await?;
    place_reply(&st, id, p.user, out).await
}

/// Gives up the place. Idempotent: leaving twice, or without a place, is still 204.
#[utoipa::path(delete, path = "/v1/drops/{id}/queue", tag = "drops", security(("bearer" = ["shopper"])),
    responses((status = 204, description = "The place is given up (or there was none)")))]
async fn leave(
    State(st): State<AppState>,
    DropPath(id): DropPath,
    Shopper(p): Shopper,
) -> Result<StatusCode, ApiError> {
    let k = st.keys.drop(id);
    let mut conn = st.redis.clone();
    if !conn.exists::<_, bool>(k.cfg()).await? {
        return Err(lost::no_drop(&st, id).await);
    }
    crate::room::leave(&st, id, p.user).await?;
    Ok(StatusCode::NO_CONTENT)
}
