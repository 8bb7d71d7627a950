//! Where the buyer stands: adopting exact reads of the join script, deriving the place
//! from room-wide ticks in between, and pushing it when it changed.

use super::{Flow, Place, Session};
use crate::drops::join_or_peek;
use crate::error::ApiError;
use crate::hub::RoomEvent;
use crate::messages::{Position, ServerMsg};
use vq_core::domain::{AdmitStatus, DropState};
use vq_core::scripts::{JoinOutcome, JoinReject};

impl Session {
    /// Adopts the outcome of an exact read (join script).
    pub(super) fn apply(&mut self, o: JoinOutcome, out: &mut Vec<ServerMsg>) -> Flow {
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

    pub(super) async fn resync(&mut self, out: &mut Vec<ServerMsg>) -> Flow {
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
    pub(super) fn push_position(&mut self, out: &mut Vec<ServerMsg>) {
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

    pub(super) async fn on_event(&mut self, ev: RoomEvent, out: &mut Vec<ServerMsg>) -> Flow {
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
                self.on_tick(admitted_total, status, now, out).await
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

    /// Derives the place from a room-wide tick; reads it exactly when the tick says the
    /// derived one may be wrong.
    async fn on_tick(
        &mut self,
        admitted_total: u64,
        status: AdmitStatus,
        now: i64,
        out: &mut Vec<ServerMsg>,
    ) -> Flow {
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
                let mut m = Position::new(ahead, self.rate, self.queue_len, pre);
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
}
