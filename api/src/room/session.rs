//! One buyer's socket in a waiting room: applies room-wide ticks and account-directed
//! pushes from the hub, answers client messages, and re-reads the exact place now and then.

use super::{ClientMsg, CLOSE_RECONNECT, CLOSE_TOO_BIG};
use crate::drops::join_or_peek;
use crate::error::ApiError;
use crate::hub::{Direct, RoomEvent};
use crate::messages::{Position, ServerMsg};
use crate::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use vq_core::domain::{AdmitStatus, DropId, DropState, UserId};
use vq_core::scripts::{JoinOutcome, JoinReject};

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
            for m in out.drain(..) {
                if matches!(m, ServerMsg::Position(_)) {
                    metrics::counter!("vq_position_pushes_total").increment(1);
                }
                if tx.send(Message::Text(m.to_json().into())).await.is_err() {
                    return;
                }
            }
            if let Flow::Close(code, reason) = flow {
                let _ = tx
                    .send(Message::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    })))
                    .await;
                return;
            }
            flow = tokio::select! {
                _ = shutdown.wait() => Flow::Close(CLOSE_RECONNECT, "server shutting down; reconnect"),
                ev = reg.events.recv() => match ev {
                    Ok(ev) => self.on_event(ev, &mut out).await,
                    Err(RecvError::Lagged(_)) => self.resync(&mut out).await,
                    Err(RecvError::Closed) => Flow::Close(CLOSE_RECONNECT, "room closed; reconnect"),
                },
                d = reg.direct.recv() => match d {
                    Some(Direct::Admitted { token, expires_at_ms, seq }) => {
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
                },
                m = rx.next() => match m {
                    Some(Ok(Message::Text(t))) => self.on_client(t.as_str(), &mut out).await,
                    Some(Ok(Message::Binary(_))) => {
                        out.push(ServerMsg::error("bad_message", "binary frames are not supported; send JSON text"));
                        Flow::Continue
                    }
                    Some(Ok(Message::Close(_))) | None => return,
                    Some(Ok(_)) => Flow::Continue,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "websocket read error");
                        Flow::Close(CLOSE_TOO_BIG, "message too big or malformed frame")
                    }
                },
                _ = resync.tick() => self.resync(&mut out).await,
            };
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

    /// Adopts the outcome of an exact read (join script).
    fn apply(&mut self, o: JoinOutcome, out: &mut Vec<ServerMsg>) -> Flow {
        match o {
            JoinOutcome::Queued {
                rank,
                admitted_total,
                prequeue,
            } => {
                self.place = Place::Queued {
                    rank,
                    base: admitted_total,
                    prequeue,
                };
                Flow::Continue
            }
            JoinOutcome::Admitted {
                token,
                expires_at_ms,
            } => {
                let was_admitted =
                    matches!(self.place, Place::Admitted) && self.last_sent.is_some();
                self.place = Place::Admitted;
                if !was_admitted {
                    out.push(ServerMsg::admitted(token, expires_at_ms, None));
                }
                self.last_sent = Some(0);
                Flow::Continue
            }
            JoinOutcome::NotQueued => Flow::Close(1000, "not in the queue"),
            JoinOutcome::Rejected(r) => {
                let (msg, reason) = match r {
                    JoinReject::SoldOut => (ServerMsg::SoldOut, "sold out"),
                    JoinReject::Closed => (ServerMsg::Closed, "drop closed"),
                    other => (
                        ServerMsg::error(ApiError::Join(other).code(), "cannot stay in the room"),
                        "cannot stay in the room",
                    ),
                };
                out.push(msg);
                Flow::Close(1000, reason)
            }
        }
    }

    async fn resync(&mut self, out: &mut Vec<ServerMsg>) -> Flow {
        match join_or_peek(&self.st, self.id, self.user, true).await {
            Ok(o) => {
                let flow = self.apply(o, out);
                if matches!(self.place, Place::Queued { .. }) {
                    self.last_sent = None;
                    self.push_position(out);
                }
                flow
            }
            Err(ApiError::Join(r)) => self.apply(JoinOutcome::Rejected(r), out),
            Err(e) => {
                tracing::warn!(error = %e, "room resync failed");
                Flow::Continue
            }
        }
    }

    fn ahead(&self, admitted_total: Option<u64>) -> Option<(u64, bool)> {
        match self.place {
            Place::Queued {
                rank,
                base,
                prequeue,
            } => {
                let moved = admitted_total.map_or(0, |t| t.saturating_sub(base));
                Some((rank.saturating_sub(moved), prequeue && moved == 0))
            }
            Place::Admitted => None,
        }
    }

    /// Sends the place just read exactly. Outside the pre-queue it carries `index`, the
    /// 0-based place in the drop's whole admission order (admitted so far + rank), which a
    /// client can compare with the `seq` of its admission to audit FIFO order.
    fn push_position(&mut self, out: &mut Vec<ServerMsg>) {
        if let Some((ahead, pre)) = self.ahead(None) {
            let mut m = Position::new(ahead, self.rate, self.queue_len.max(ahead + 1), pre);
            if let Place::Queued {
                rank,
                base,
                prequeue: false,
            } = self.place
            {
                m.index = Some(rank + base);
            }
            out.push(ServerMsg::Position(m));
            self.last_sent = Some(ahead);
        }
    }

    async fn on_event(&mut self, ev: RoomEvent, out: &mut Vec<ServerMsg>) -> Flow {
        match ev {
            RoomEvent::Tick {
                admitted_total,
                queue_len,
                rate,
                status,
                now,
            } => {
                self.rate = rate.max(1);
                self.queue_len = queue_len;
                let Place::Queued {
                    rank,
                    base,
                    prequeue,
                } = self.place
                else {
                    return Flow::Continue;
                };
                // The sale started: the shuffled pre-queue order is final, read the real place.
                if prequeue && status != AdmitStatus::NotStarted {
                    return self.resync(out).await;
                }
                // Our place was popped but the admitted message has not reached us yet
                // (it may have gone out while we were reconnecting): read it exactly.
                if admitted_total.saturating_sub(base) > rank {
                    return self.resync(out).await;
                }
                if let Some((ahead, pre)) = self.ahead(Some(admitted_total)) {
                    // Push a change, but not more often than the configured interval: with
                    // fast ticks, per-tick pushes to every socket would dominate the node's
                    // CPU while telling buyers nothing a human can read that fast.
                    let changed = self.last_sent != Some(ahead) || self.last_status != Some(status);
                    let due = self
                        .last_push
                        .is_none_or(|t| t.elapsed() >= self.push_every);
                    if changed && due {
                        let mut m = Position::new(ahead, self.rate, queue_len, pre);
                        m.status = Some(status);
                        m.ts_ms = Some(now);
                        out.push(ServerMsg::Position(m));
                        self.last_sent = Some(ahead);
                        self.last_status = Some(status);
                        self.last_push = Some(tokio::time::Instant::now());
                    }
                }
                Flow::Continue
            }
            RoomEvent::SoldOut => {
                out.push(ServerMsg::SoldOut);
                Flow::Close(1000, "sold out")
            }
            RoomEvent::State(DropState::Closed) => {
                out.push(ServerMsg::Closed);
                Flow::Close(1000, "drop closed")
            }
            RoomEvent::State(DropState::Paused) => {
                out.push(ServerMsg::Paused);
                Flow::Continue
            }
            RoomEvent::State(DropState::Active) => {
                out.push(ServerMsg::Resumed);
                Flow::Continue
            }
        }
    }

    async fn on_client(&mut self, text: &str, out: &mut Vec<ServerMsg>) -> Flow {
        match serde_json::from_str::<ClientMsg>(text) {
            Ok(ClientMsg::Ping) => {
                out.push(ServerMsg::Pong);
                Flow::Continue
            }
            Ok(ClientMsg::Status) => self.resync(out).await,
            Ok(ClientMsg::Leave) => {
                let mut conn = self.st.redis.clone();
                let k = self.st.keys.drop(self.id);
                match redis::AsyncCommands::zrem::<_, _, i64>(
                    &mut conn,
                    k.queue(),
                    self.user.to_string(),
                )
                .await
                {
                    Ok(_) => {
                        out.push(ServerMsg::Left);
                        Flow::Close(1000, "left the queue")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "leave failed");
                        out.push(ServerMsg::error("internal", "could not leave; try again"));
                        Flow::Continue
                    }
                }
            }
            Err(e) => {
                out.push(ServerMsg::error(
                    "bad_message",
                    format!("expected {{\"type\": \"ping\" | \"status\" | \"leave\"}}: {e}"),
                ));
                Flow::Continue
            }
        }
    }
}
