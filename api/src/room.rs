//! The waiting room over WebSocket: `GET /v1/drops/{id}/room`.
//!
//! The join happens before the upgrade, so a closed, sold-out or unknown drop is a plain
//! HTTP error (a buyer on the waitlist may still open the room). After that the server
//! pushes `position`, `admitted`, `expired`, `paused`, `resumed`, `sold_out`, `phase`,
//! `left` and `closed`; the client may send `ping`, `status`, `leave` and `purchase`. One `Session`
//! (room/session.rs) per socket; its exact re-reads are batched per node (room/reads.rs),
//! and once its buyer is admitted it moves to the node's checkout lane (room/checkout.rs).
//! Browsers authenticate the upgrade with a single-use ticket (room/ticket.rs), other
//! clients with `Authorization: Bearer`.

pub mod checkout;
pub mod reads;
mod session;
mod ticket;

use crate::drops::join_or_peek;
use crate::error::ApiError;
use crate::extract::DropPath;
use crate::limits::ClientIp;
use crate::AppState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use redis::AsyncCommands;
use serde::Deserialize;
use vq_core::domain::{AccountEvent, DropId, UserId};
use vq_core::scripts::{JoinOutcome, JoinReject};

pub use ticket::RoomAuth;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/drops/{id}/room", get(upgrade))
        .route("/v1/drops/{id}/ticket", post(ticket::issue))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(upgrade, ticket::issue))]
pub struct Doc;

/// Close code 1012 ("service restart"): the client should reconnect, to any node.
pub const CLOSE_RECONNECT: u16 = 1012;
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;

/// The waiting room as a WebSocket: joins (as `POST .../queue` does), then pushes
/// `{"type": ...}` messages: `position`, `admitted`, `expired`, `paused`, `resumed`,
/// `sold_out`, `phase`, `status`, `left`, `closed`, `notification`, `error`; the client may
/// send `ping`, `status` and `leave`. Browsers authenticate with `?ticket=` (see
/// `/ticket`), other clients with the bearer token.
#[utoipa::path(get, path = "/v1/drops/{id}/room", tag = "drops", security(("bearer" = ["shopper"]), ()),
    params(("ticket" = Option<String>, Query, description = "A single-use ticket from `POST /v1/drops/{id}/ticket`"),
        ("pow" = Option<String>, Query, description = "`<nonce>.<counter>`, when the drop asks for a proof of work")),
    responses((status = 101, description = "Switching to the WebSocket protocol"),
        (status = 403, body = crate::error::ErrorBody, description = "`pow_required` (with `challenge`) or `wrong_role`"),
        (status = 409, body = crate::error::ErrorBody, description = "`drop_closed`, `sold_out`, `limit_reached`, `not_open`"),
        (status = 426, body = crate::error::ErrorBody, description = "`websocket_required`: not an upgrade request"),
        (status = 429, body = crate::error::ErrorBody, description = "`rate_limited`")))]
async fn upgrade(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    DropPath(id): DropPath,
    auth: RoomAuth,
    pow: crate::pow::PowSolution,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    st.limits.join(ip, auth.user, None).await?;
    let joiner = crate::pow::Joiner {
        user: auth.user,
        ip,
        account_created: auth.account_created,
    };
    crate::pow::verify(&st, id, joiner, &pow).await?;
    let ws = match ws {
        Ok(ws) => ws,
        Err(r) => {
            // Unknown or closed drops are plain HTTP errors, whatever the request looked
            // like; only a valid room asks the client to upgrade.
            if let Err(e @ ApiError::Join(_)) = join_or_peek(&st, id, auth.user, true).await {
                return Err(e);
            }
            return Err(ApiError::BadRequest {
                status: StatusCode::UPGRADE_REQUIRED,
                code: "websocket_required",
                message: r.body_text(),
            });
        }
    };
    // The join itself rejects unknown, closed and sold-out drops before the upgrade; a
    // buyer on the waitlist keeps the place and may wait in the room.
    let first = match join_or_peek(&st, id, auth.user, false).await {
        Err(ApiError::Join(JoinReject::Waitlisted)) => {
            JoinOutcome::Rejected(JoinReject::Waitlisted)
        }
        other => other?,
    };
    let max = st.ws.max_message_bytes;
    Ok(ws
        .read_buffer_size(st.ws.read_buffer_bytes)
        // Every send flushes at once; no write batching buffer is worth keeping per socket.
        .write_buffer_size(0)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| session::Session::new(st, id, auth, ip).run(socket, first)))
}

/// Gives up the place (HTTP `DELETE .../queue` or the socket's `leave`): removes it and its
/// last-seen entry, then tells every node's sockets of the account in this room.
pub async fn leave(st: &AppState, id: DropId, user: UserId) -> Result<(), ApiError> {
    let k = st.keys.drop(id);
    let mut conn = st.redis.clone();
    let who = user.to_string();
    let (removed,): (u64,) = redis::pipe()
        .zrem(k.queue(), &who)
        .hdel(k.seen(), &who)
        .ignore()
        .query_async(&mut conn)
        .await?;
    if removed > 0 {
        // Counted for the fairness report (`left`); not `left`, which positions use.
        let _: i64 = conn.incr(k.quit(), 1).await?;
    }
    let ev = AccountEvent::Left {
        drop_id: id.get(),
        users: vec![who],
    };
    let payload = serde_json::to_string(&ev).map_err(anyhow::Error::from)?;
    let _: i64 = conn.publish(st.keys.user_events(), payload).await?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ClientMsg {
    Ping,
    Status,
    Leave,
    /// Buy with the token from `admitted`, on the socket already held (see
    /// `drops::purchase`); answered with `purchased` or `purchase_rejected`.
    Purchase {
        token: String,
        #[serde(default = "one")]
        quantity: i64,
        /// Echoed in the answer, so a client can match answers to requests.
        #[serde(default)]
        request_id: Option<String>,
    },
}

fn one() -> i64 {
    1
}
