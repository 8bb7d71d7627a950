//! The waiting room over WebSocket: `GET /v1/drops/{id}/room`.
//!
//! The join happens before the upgrade, so a closed, sold-out or unknown drop is a plain
//! HTTP error. After that the server pushes `position`, `admitted`, `expired`, `paused`,
//! `resumed`, `sold_out` and `closed` (see `crate::messages::ServerMsg`); the client may send
//! `ping`, `status` and `leave`. One `Session` (room/session.rs) per socket.

mod session;

use crate::drops::join_or_peek;
use crate::error::ApiError;
use crate::extract::{AuthUser, DropPath};
use crate::limits::ClientIp;
use crate::AppState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/drops/{id}/room", get(upgrade))
}

/// Close code 1012 ("service restart"): the client should reconnect, to any node.
pub const CLOSE_RECONNECT: u16 = 1012;
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;

async fn upgrade(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    DropPath(id): DropPath,
    AuthUser(p): AuthUser,
    pow: crate::pow::PowSolution,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    st.limits.join(ip, p.user).await?;
    crate::pow::verify(&st, id, p.user, &pow).await?;
    let ws = match ws {
        Ok(ws) => ws,
        Err(r) => {
            // Unknown or closed drops are plain HTTP errors, whatever the request looked
            // like; only a valid room asks the client to upgrade.
            if let Err(e @ ApiError::Join(_)) = join_or_peek(&st, id, p.user, true).await {
                return Err(e);
            }
            return Err(ApiError::BadRequest {
                status: StatusCode::UPGRADE_REQUIRED,
                code: "websocket_required",
                message: r.body_text(),
            });
        }
    };
    // The join itself rejects unknown, closed and sold-out drops before the upgrade.
    let first = join_or_peek(&st, id, p.user, false).await?;
    let max = st.ws.max_message_bytes;
    Ok(ws
        .read_buffer_size(st.ws.read_buffer_bytes)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| session::Session::new(st, id, p.user).run(socket, first)))
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ClientMsg {
    Ping,
    Status,
    Leave,
}
