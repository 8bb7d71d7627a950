//! Shopper HTTP API for one drop: details, the waiting room over plain HTTP (for clients
//! without WebSockets, and the load tester), and the purchase.

use crate::drops::wire::{self as replies, PurchaseBody};
use crate::drops::{lost, store, views};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, DropPath, Shopper};
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
use vq_core::scripts::{JoinOutcome, JoinReject, PurchaseOutcome, PurchaseReject};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/drops", get(list))
        .route("/v1/drops/{id}", get(show))
        .route("/v1/drops/{id}/queue", post(join).get(status).delete(leave))
        .route("/v1/drops/{id}/purchase", post(purchase))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show, join, status, leave, purchase))]
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
            let mut conn = st.redis.clone();
            let k = st.keys.drop(id);
            let (rate, qlen): (Option<u64>, u64) = redis::pipe()
                .hget(k.cfg(), "rate")
                .zcard(k.queue())
                .query_async(&mut conn)
                .await?;
            let pos = Position::new(rank, rate.unwrap_or(1), qlen, prequeue);
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
    Shopper(p): Shopper,
    pow: crate::pow::PowSolution,
) -> Result<Json<Value>, ApiError> {
    st.limits.join(ip, p.user).await?;
    crate::pow::verify(&st, id, p.user, &pow).await?;
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

/// Buys with the purchase token the admission gave: reserves the units and writes the
/// order (pending payment).
#[utoipa::path(post, path = "/v1/drops/{id}/purchase", tag = "drops", security(("bearer" = ["shopper"])),
    request_body = PurchaseBody,
    responses((status = 201, body = replies::Reserved),
        (status = 403, body = ErrorBody, description = "`invalid_token` or `not_your_token`"),
        (status = 409, body = ErrorBody, description = "`token_used`, `drop_closed`, `sold_out`, `limit_reached` (with `allowance`), `insufficient_stock` (with `remaining`)"),
        (status = 410, body = ErrorBody, description = "`token_expired`"),
        (status = 429, body = ErrorBody, description = "`rate_limited`"),
        (status = 503, body = ErrorBody, description = "`needs_rebuild`")))]
async fn purchase(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    DropPath(id): DropPath,
    Shopper(p): Shopper,
    ApiJson(body): ApiJson<PurchaseBody>,
) -> Result<(StatusCode, Json<replies::Reserved>), ApiError> {
    st.limits.purchase(ip, p.user).await?;
    let qty = body.checked()?;
    let mut conn = st.redis.clone();
    let k = st.keys.drop(id);
    let started = std::time::Instant::now();
    let out = st
        .scripts
        .purchase(&mut conn, &k, &body.token, p.user, qty, &st.clock)
        .await?;
    if matches!(out, PurchaseOutcome::Reserved { .. }) {
        conn.wait_durable("purchase").await?;
    }
    metrics::histogram!("vq_purchase_duration_seconds").record(started.elapsed().as_secs_f64());
    let outcome = match &out {
        PurchaseOutcome::Reserved { .. } => "reserved",
        PurchaseOutcome::Rejected(r) => r.code(),
    };
    metrics::counter!("vq_purchases_total", "outcome" => outcome).increment(1);
    match out {
        PurchaseOutcome::Reserved {
            remaining,
            user_total,
            seq,
            ..
        } => Ok((
            StatusCode::CREATED,
            Json(replies::Reserved {
                status: replies::ReservedTag::Reserved,
                order_id: id.order_id(seq),
                token: body.token,
                quantity: qty.get(),
                remaining,
                bought_total: user_total,
                order_status: vq_orders::Status::PendingPayment,
            }),
        )),
        PurchaseOutcome::Rejected(PurchaseReject::NoDrop) if lost::knows(&st, id).await? => {
            Err(ApiError::Purchase(PurchaseReject::NeedsRebuild))
        }
        PurchaseOutcome::Rejected(r) => Err(ApiError::Purchase(r)),
    }
}
