//! Where the buyer stands: adopting exact reads of the join script, deriving the place
//! from room-wide ticks in between, and pushing it when it changed.

use super::guard::CLOSE_SESSION_REVOKED;
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
                    left_base: self.left_total,
                    prequeue,
                };
                Flow::Continue
            }
            JoinOutcome::Admitted {
                token,
                expires_at_ms,
                seq,
            } => {
                self.admitted(token, expires_at_ms, seq, out);
                Flow::Continue
            }
            JoinOutcome::NotQueued => Flow::Close(1000, "not in the queue"),
            JoinOutcome::Rejected(JoinReject::Waitlisted) => {
                self.place = Place::Waiting;
                self.waitlist(out);
                Flow::Continue
            }
            JoinOutcome::Rejected(r) => {
                let (msg, reason) = match r {
                    JoinReject::SoldOut => (ServerMsg::sold_out(true), "sold out"),
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

    /// Tells a waiting buyer (once per sell-out) that stock is 0 but the place is kept.
    fn waitlist(&mut self, out: &mut Vec<ServerMsg>) {
        if !self.waitlisted {
            self.waitlisted = true;
            out.push(ServerMsg::sold_out(false));
        }
    }

    /// Reads the exact place through the node's batched reads (with the periodic check of
    /// the session when `check_session`); what they leave open, join.lua's peek answers
    /// for this buyer alone. For the reads every socket makes: the periodic one, and the
    /// whole pre-queue's at the start.
    pub(super) async fn reread(&mut self, out: &mut Vec<ServerMsg>, check_session: bool) -> Flow {
        let jti = check_session.then_some(self.auth.jti);
        let place = match self.st.reads.ask(self.id, self.user, jti).await {
            Some(a) if a.revoked => return Flow::Close(CLOSE_SESSION_REVOKED, "session revoked"),
            Some(a) => a.place,
            None if check_session => match self.session_check().await {
                Some(flow) => return flow,
                None => None,
            },
            None => None,
        };
        match place {
            Some((rank, admitted_total, prequeue)) => {
                let read = JoinOutcome::Queued {
                    rank,
                    admitted_total,
                    prequeue,
                };
                self.adopt(read, out)
            }
            None => self.resync(out).await,
        }
    }

    /// Adopts an exact read and pushes the place it gives.
    fn adopt(&mut self, read: JoinOutcome, out: &mut Vec<ServerMsg>) -> Flow {
        let flow = self.apply(read, out);
        if matches!(self.place, Place::Queued { .. }) {
            self.last_sent = None;
            self.push_position(out);
        }
        flow
    }

    /// One buyer's exact read with join.lua's peek, which owns every case (for the rare
    /// reads: overtaken by admission, a lagging receiver, units back after a sell-out).
    pub(super) async fn resync(&mut self, out: &mut Vec<ServerMsg>) -> Flow {
        match join_or_peek(&self.st, self.id, self.user, true).await {
            Ok(o) => self.adopt(o, out),
            Err(ApiError::Join(r)) => self.apply(JoinOutcome::Rejected(r), out),
            Err(e) => {
                tracing::warn!(error = %e, "room resync failed");
                Flow::Continue
            }
        }
    }

    /// Buyers ahead who were admitted or left since the exact read.
    fn ahead(&self, admitted_total: Option<u64>) -> Option<(u64, bool)> {
        match self.place {
            Place::Queued {
                rank,
                base,
                left_base,
                prequeue,
            } => {
                let moved = admitted_total.map_or(0, |t| {
                    t.saturating_sub(base) + self.left_total.saturating_sub(left_base)
                });
                Some((rank.saturating_sub(moved), prequeue && moved == 0))
            }
            _ => None,
        }
    }

    /// A position `ahead` of this buyer with the drop's rate and outlook as last known.
    fn position(&self, ahead: u64, pre: bool) -> Position {
        let queue_len = self.queue_len.max(ahead + 1);
        Position::with(ahead, self.rate, queue_len, pre, &self.outlook)
    }

    /// Sends the place just read exactly. Outside the pre-queue it carries `index`, the
    /// 0-based place in the drop's whole admission order (admitted so far + rank), which a
    /// client can compare with the `seq` of its admission to audit FIFO order. It counts as
    /// a push for the interval: at a drop's start every socket pushes its drawn place, and a
    /// tick pushed right after it would be a second frame per socket inside the start's burst.
    pub(super) fn push_position(&mut self, out: &mut Vec<ServerMsg>) {
        if let Some((ahead, pre)) = self.ahead(None) {
            let mut m = self.position(ahead, pre);
            if let Place::Queued {
                rank,
                base,
                prequeue: false,
                ..
            } = self.place
            {
                m.index = Some(rank + base);
            }
            out.push(ServerMsg::Position(m));
            self.last_sent = Some(ahead);
            self.last_push = Some(tokio::time::Instant::now());
        }
    }

    /// Answers `status` from what this socket already knows (no Redis call).
    pub(super) fn cached_status(&self, out: &mut Vec<ServerMsg>) {
        match self.place {
            Place::Queued { .. } => {
                if let Some((ahead, pre)) = self.ahead(self.admitted_total) {
                    let mut m = self.position(ahead, pre);
                    m.status = self.last_status;
                    out.push(ServerMsg::Position(m));
                }
            }
            Place::Waiting => out.push(ServerMsg::Status { place: "waitlist" }),
            Place::Admitted { .. } => out.push(ServerMsg::Status { place: "admitted" }),
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
                left_total,
                outlook,
            } => {
                self.rate = rate.max(1);
                self.outlook = outlook;
                self.queue_len = queue_len;
                self.admitted_total = Some(admitted_total);
                self.left_total = left_total;
                match self.on_phase(status, out).await {
                    Some(flow) => flow,
                    None => self.on_tick(admitted_total, status, now, out).await,
                }
            }
            RoomEvent::SoldOut => {
                if !matches!(self.place, Place::Admitted { .. }) {
                    self.waitlist(out);
                }
                Flow::Continue
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

    /// Sell-out and restock as the tick status tells them: `sold_out` is final (every
    /// socket hears it and is closed), `sold_out_pending` keeps waiters on the waitlist,
    /// and `ok` after a sell-out is pushed as the phase going live again.
    async fn on_phase(&mut self, status: AdmitStatus, out: &mut Vec<ServerMsg>) -> Option<Flow> {
        match status {
            AdmitStatus::SoldOut => {
                out.push(ServerMsg::sold_out(true));
                Some(Flow::Close(1000, "sold out"))
            }
            AdmitStatus::SoldOutPending if !matches!(self.place, Place::Admitted { .. }) => {
                self.waitlist(out);
                None
            }
            AdmitStatus::Ok if self.waitlisted => {
                self.waitlisted = false;
                out.push(ServerMsg::Phase { phase: "live" });
                Some(Box::pin(self.resync(out)).await)
            }
            _ => None,
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
            ..
        } = self.place
        else {
            return Flow::Continue;
        };
        // The sale started: the shuffled pre-queue order is final, read the real place
        // (every pre-queue socket at once: batched).
        if prequeue && status != AdmitStatus::NotStarted {
            return Box::pin(self.reread(out, false)).await;
        }
        // Our place was popped but the admitted message has not reached us yet
        // (it may have gone out while we were reconnecting): read it exactly.
        if admitted_total.saturating_sub(base) > rank {
            return Box::pin(self.resync(out)).await;
        }
        if let Some((ahead, pre)) = self.ahead(Some(admitted_total)) {
            // Push a change, but not more often than the configured interval: with
            // fast ticks, per-tick pushes to every socket would dominate the node's
            // CPU while telling buyers nothing a human can read that fast.
            let changed = self.last_sent != Some(ahead) || self.last_status != Some(status);
            // The lane hears a tick about once per interval; allow for the jitter of
            // when this task ran last time, or a late socket would skip every other one.
            let due = self
                .last_push
                .is_none_or(|t| t.elapsed() >= self.push_every.mul_f64(0.75));
            if changed && due {
                let mut m = Position::with(ahead, self.rate, self.queue_len, pre, &self.outlook);
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
