//! The purchase, over HTTP (`POST /v1/drops/{id}/purchase`) and over the room socket
//! (`{"type": "purchase", ...}`): one function, [`buy`], so both speak the same limits,
//! script, reasons and idempotency (the token is the key: a retry of a reserved token by its
//! owner with the same quantity answers the same receipt again and changes nothing).

use crate::drops::lost;
use crate::drops::wire::{PurchaseBody, Reserved, ReservedTag};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ensure_not_revoked, ApiJson, DropPath, ShopperUnchecked};
use crate::limits::{self, ClientIp};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use std::net::IpAddr;
use vq_core::domain::{DropId, UserId};
use vq_core::scripts::{GatedOutcome, PurchaseOutcome, PurchaseReject, Settle, Stage};
use vq_core::{Durable, RedisConn};

/// What a strict-mode refusal tells the client to wait before retrying (a replica that is
/// behind catches up in well under this; one that is gone takes a failover or an operator).
const NOT_REPLICATED_RETRY_S: u64 = 1;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/drops/{id}/purchase", post(purchase))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(purchase))]
pub struct Doc;

/// Buys with the purchase token the admission gave: reserves the units and writes the
/// order (pending payment).
#[utoipa::path(post, path = "/v1/drops/{id}/purchase", tag = "drops", security(("bearer" = ["shopper"])),
    request_body = PurchaseBody,
    responses((status = 201, body = Reserved),
        (status = 403, body = ErrorBody, description = "`invalid_token` or `not_your_token`"),
        (status = 409, body = ErrorBody, description = "`token_used`, `drop_closed`, `sold_out`, `limit_reached` (with `allowance`), `insufficient_stock` (with `remaining`)"),
        (status = 410, body = ErrorBody, description = "`token_expired`"),
        (status = 429, body = ErrorBody, description = "`rate_limited`"),
        (status = 503, body = ErrorBody, description = "`needs_rebuild`, or `not_replicated` (`redis.durability = \"strict\"`: no replica confirmed it, nothing is reserved; `Retry-After`)")))]
async fn purchase(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    DropPath(id): DropPath,
    who: ShopperUnchecked,
    body: Result<ApiJson<PurchaseBody>, ApiError>,
) -> Result<(StatusCode, Json<Reserved>), ApiError> {
    let body = match body {
        Ok(ApiJson(body)) => body,
        Err(e) => {
            ensure_not_revoked(&st, &who.jti).await?;
            return Err(e);
        }
    };
    let conn = st.redis.clone();
    let receipt = buy(&st, conn, ip, id, who.p.user, Some(&who.jti), body).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

/// Rate limits (per address, per account; with `revoked`, that access token's revocation
/// in the same round trip), body checks, purchase.lua, WAIT when configured, metrics:
/// everything a purchase is, whichever transport carried it.
///
/// On one server the gate rides in the purchase's own script call (lua/gated_purchase.lua:
/// one round trip, not two). A body that fails its checks still goes through the gate
/// alone first, so the refusals keep their order: revoked, rate limited, bad body, then
/// what the script says. `conn` is the connection the script call goes over: the shared
/// one, or the checkout lane's for a room socket (room/checkout.rs).
pub async fn buy(
    st: &AppState,
    mut conn: RedisConn,
    ip: IpAddr,
    id: DropId,
    user: UserId,
    revoked: Option<&uuid::Uuid>,
    body: PurchaseBody,
) -> Result<Reserved, ApiError> {
    let qty = match body.checked() {
        Ok(qty) => qty,
        Err(e) => {
            st.limits.purchase(ip, user, revoked).await?;
            return Err(e);
        }
    };
    let k = st.keys.drop(id);
    let started = std::time::Instant::now();
    let (token, clock) = (&body.token, &st.clock);
    let stage = if conn.strict() {
        Stage::Staged
    } else {
        Stage::Direct
    };
    let out = match st.limits.purchase_folded(ip, user, revoked) {
        Some(gate) => {
            let buckets = gate.buckets();
            let gate = gate.args(&buckets);
            if conn.too_few_replicas() {
                return Err(not_replicated("refused"));
            }
            let sent = st
                .scripts
                .gated_purchase(&mut conn, gate, &k, token, user, qty, clock, stage);
            match sent.await? {
                GatedOutcome::Purchase(out) => out,
                GatedOutcome::Stopped(v) => return Err(limits::refusal(v)),
            }
        }
        None => {
            st.limits.purchase(ip, user, revoked).await?;
            if conn.too_few_replicas() {
                return Err(not_replicated("refused"));
            }
            let s = &st.scripts;
            let sent = s.purchase_as(&mut conn, &k, token, user, qty, clock, stage);
            sent.await?
        }
    };
    if matches!(out, PurchaseOutcome::Reserved { .. }) {
        confirm(st, &mut conn, &k, token, stage).await?;
    }
    let took = started.elapsed();
    metrics::histogram!("vq_purchase_duration_seconds").record(took.as_secs_f64());
    st.latency.record(id, took);
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
        } => Ok(Reserved {
            status: ReservedTag::Reserved,
            order_id: id.order_id(seq),
            token: body.token,
            quantity: qty.get(),
            remaining,
            bought_total: user_total,
            order_status: vq_orders::Status::PendingPayment,
        }),
        PurchaseOutcome::Rejected(PurchaseReject::NoDrop) if lost::knows(st, id).await? => {
            Err(ApiError::Purchase(PurchaseReject::NeedsRebuild))
        }
        PurchaseOutcome::Rejected(r) => Err(ApiError::Purchase(r)),
    }
}

/// After a reservation: WAIT for the replicas. Strict mode (a staged reservation) commits
/// the order entry once they confirmed it, and otherwise undoes it exactly and answers 503:
/// nothing reserved (docs/durability.md, "Strict"). Acknowledge mode answers 201 either way;
/// a short WAIT is counted.
async fn confirm(
    st: &AppState,
    conn: &mut RedisConn,
    k: &vq_core::DropKeys,
    token: &str,
    stage: Stage,
) -> Result<(), ApiError> {
    let waited = conn.wait_durable("purchase").await?;
    if stage == Stage::Direct {
        return Ok(());
    }
    let how = match waited {
        Durable::Replicated => Settle::Commit(token),
        Durable::Off | Durable::Short { .. } => Settle::Undo(token),
    };
    let settled = st.scripts.settle(conn, k, how, &st.clock).await?;
    match how {
        Settle::Commit(_) => Ok(()),
        // Nothing staged any more: another request of this token (or the sweeper) already
        // committed it; still not confirmed by this request's WAIT, so not acknowledged here.
        _ if settled == 0 => Err(not_replicated("unconfirmed")),
        _ => Err(not_replicated("undone")),
    }
}

fn not_replicated(how: &'static str) -> ApiError {
    metrics::counter!("vq_purchases_not_replicated_total", "how" => how).increment(1);
    ApiError::NotReplicated {
        retry_after_s: NOT_REPLICATED_RETRY_S,
    }
}
