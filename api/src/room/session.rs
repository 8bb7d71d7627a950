//! One buyer's socket in a waiting room: applies room-wide ticks and account-directed
//! pushes from the hub, answers client messages, and re-reads the exact place now and then.

mod client;
mod place;

use super::CLOSE_RECONNECT;
use crate::hub::Direct;
use crate::messages::ServerMsg;
use crate::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use vq_core::domain::{AdmitStatus, DropId, UserId};
use vq_core::scripts::JoinOutcome;

enum Place {
    /// Rank at the last exact read, and the admitted count at that moment.
    Queued {
        rank: u64,
        base: u64,
        prequeue: bool,
    },
    Admitted,
}

pub(super) struct Session {
    st: AppState,
    id: DropId,
    user: UserId,
    place: Place,
    rate: u64,
    queue_len: u64,
    last_sent: Option<u64>,
    last_status: Option<AdmitStatus>,
    last_push: Option<tokio::time::Instant>,
    push_every: Duration,
}

enum Flow {
    Continue,
    Close(u16, &'static str),
}

impl Session {
    pub(super) fn new(st: AppState, id: DropId, user: UserId) -> Self {
        let push_every = Duration::from_millis(st.ws.position_interval_ms);
        Session {
            st,
            id,
            user,
            place: Place::Admitted,
            rate: 1,
            queue_len: 0,
            last_sent: None,
            last_status: None,
            last_push: None,
            push_every,
        }
    }

    pub(super) async fn run(mut self, socket: WebSocket, first: JoinOutcome) {
        let mut reg = self.st.hub.register(self.id, self.user);
        let (mut tx, mut rx) = socket.split();
        let mut shutdown = self.st.shutdown.clone();
        let resync_every = Duration::from_millis(self.st.ws.resync_ms.max(100));
        // Spread the exact re-reads of all connections over the interval.
        let offset = resync_every.mul_f64(rand::random::<f64>());
        let mut resync =
            tokio::time::interval_at(tokio::time::Instant::now() + offset, resync_every);

        let mut out = Vec::new();
        let mut flow = self.apply(first, &mut out);
        if matches!(flow, Flow::Continue) {
            self.rate = self.cfg_rate().await;
            self.push_position(&mut out);
        }
        loop {
            if !flush(&mut tx, &mut out, &flow).await {
                return;
            }
            flow = tokio::select! {
                _ = shutdown.wait() => Flow::Close(CLOSE_RECONNECT, "server shutting down; reconnect"),
                ev = reg.events.recv() => match ev {
                    Ok(ev) => self.on_event(ev, &mut out).await,
                    Err(RecvError::Lagged(_)) => self.resync(&mut out).await,
                    Err(RecvError::Closed) => Flow::Close(CLOSE_RECONNECT, "room closed; reconnect"),
                },
                d = reg.direct.recv() => self.on_direct(d, &mut out),
                m = rx.next() => match m {
                    Some(Ok(Message::Close(_))) | None => return,
                    m => self.on_frame(m, &mut out).await,
                },
                _ = resync.tick() => self.resync(&mut out).await,
            };
        }
    }

    /// A push meant for this account only.
    fn on_direct(&mut self, d: Option<Direct>, out: &mut Vec<ServerMsg>) -> Flow {
        match d {
            Some(Direct::Admitted {
                token,
                expires_at_ms,
                seq,
            }) => {
                self.place = Place::Admitted;
                out.push(ServerMsg::admitted(token, expires_at_ms, seq));
                Flow::Continue
            }
            Some(Direct::Notify(n)) => {
                out.push(ServerMsg::Notification(n));
                Flow::Continue
            }
            Some(Direct::Expired) => {
                out.push(ServerMsg::expired());
                Flow::Close(1000, "token expired")
            }
            None => Flow::Close(CLOSE_RECONNECT, "room closed; reconnect"),
        }
    }

    async fn cfg_rate(&self) -> u64 {
        let mut conn = self.st.redis.clone();
        redis::AsyncCommands::hget::<_, _, Option<u64>>(
            &mut conn,
            self.st.keys.drop(self.id).cfg(),
            "rate",
        )
        .await
        .ok()
        .flatten()
        .unwrap_or(1)
    }
}

/// Sends the queued messages, then the close frame if `flow` says so. False when the
/// socket is gone or closed.
async fn flush(
    tx: &mut SplitSink<WebSocket, Message>,
    out: &mut Vec<ServerMsg>,
    flow: &Flow,
) -> bool {
    for m in out.drain(..) {
        if matches!(m, ServerMsg::Position(_)) {
            metrics::counter!("vq_position_pushes_total").increment(1);
        }
        if tx.send(Message::Text(m.to_json().into())).await.is_err() {
            return false;
        }
    }
    if let Flow::Close(code, reason) = *flow {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = tx.send(Message::Close(Some(frame))).await;
        return false;
    }
    true
}
