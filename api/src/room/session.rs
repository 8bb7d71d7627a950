//! One buyer's socket in a waiting room: applies room-wide ticks and account-directed
//! pushes from the hub, answers client messages, and re-reads the exact place now and then.

mod client;
mod guard;
mod place;

use super::{RoomAuth, CLOSE_RECONNECT};
use crate::hub::Direct;
use crate::messages::ServerMsg;
use crate::outlook::Outlook;
use crate::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use guard::Bucket;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{interval_at, Instant};
use vq_core::domain::{AdmitStatus, DropId, UserId};
use vq_core::scripts::JoinOutcome;

enum Place {
    /// Rank at the last exact read, and the admitted and left counts at that moment.
    Queued {
        rank: u64,
        base: u64,
        left_base: u64,
        prequeue: bool,
    },
    /// Stock is 0 and the buyer keeps the place on the waitlist (rank not read).
    Waiting,
    /// The token already sent on this socket (sent once per token).
    Admitted { token: String },
}

pub(super) struct Session {
    st: AppState,
    id: DropId,
    user: UserId,
    auth: RoomAuth,
    /// The client's address, for the per-address purchase limit.
    ip: std::net::IpAddr,
    place: Place,
    rate: u64,
    /// The drop's stock and throughput at the last tick (one copy per tick, shared).
    outlook: Outlook,
    queue_len: u64,
    /// Last tick's counts, so `status` is answered without Redis.
    admitted_total: Option<u64>,
    left_total: u64,
    last_sent: Option<u64>,
    last_status: Option<AdmitStatus>,
    last_push: Option<Instant>,
    push_every: Duration,
    /// A non-final `sold_out` was sent and no restock since.
    waitlisted: bool,
    bucket: Bucket,
    refused_in_row: u32,
    last_heard: Instant,
    /// Runs on the checkout lane (room/checkout.rs).
    on_lane: bool,
}

enum Flow {
    Continue,
    Close(u16, &'static str),
}

/// How [`Session::serve`] ended.
enum End {
    Closed,
    /// The buyer was admitted on a socket not yet on the checkout lane.
    ToCheckout,
}

/// The socket's halves and its hub registration, which move with it to the checkout lane.
struct Link {
    tx: SplitSink<WebSocket, Message>,
    rx: futures::stream::SplitStream<WebSocket>,
    reg: crate::hub::Registration,
}

impl Session {
    pub(super) fn new(st: AppState, id: DropId, auth: RoomAuth, ip: std::net::IpAddr) -> Self {
        let push_every = Duration::from_millis(st.ws.position_interval_ms);
        let bucket = Bucket::new(st.ws.client_msgs_per_s, st.ws.client_msgs_burst);
        Session {
            id,
            user: auth.user,
            auth,
            ip,
            place: Place::Waiting,
            rate: 1,
            outlook: Outlook::default(),
            queue_len: 0,
            admitted_total: None,
            left_total: 0,
            last_sent: None,
            last_status: None,
            last_push: None,
            push_every,
            waitlisted: false,
            bucket,
            refused_in_row: 0,
            last_heard: Instant::now(),
            on_lane: false,
            st,
        }
    }

    /// Exact re-reads (which also mark the buyer present) run well inside the leave grace.
    fn resync_every(&self) -> Duration {
        let every = self.st.ws.resync_ms.min(self.st.ws.leave_grace_ms / 3);
        Duration::from_millis(every.max(100))
    }

    pub(super) async fn run(mut self, socket: WebSocket, first: JoinOutcome) {
        let cap = self.st.ws.max_sockets_per_account;
        let reg = self.st.hub.register(self.id, self.user, cap);
        let (tx, rx) = socket.split();
        let mut link = Link { tx, rx, reg };
        let mut out = Vec::new();
        let flow = self.apply(first, &mut out);
        if matches!(flow, Flow::Continue) {
            Box::pin(self.read_outlook()).await;
            self.push_position(&mut out);
        }
        if let End::ToCheckout = self.serve(&mut link, &mut out, flow).await {
            // The buyer holds a token: the rest of this socket's life (the purchase, mostly)
            // runs on the checkout lane, out of the room's queue (room/checkout.rs).
            self.on_lane = true;
            let st = self.st.clone();
            st.checkout.spawn(async move {
                self.serve(&mut link, &mut out, Flow::Continue).await;
                Box::pin(self.gone()).await;
            });
            return;
        }
        Box::pin(self.gone()).await;
    }

    /// The socket's loop, until it closes or, off the lane, its buyer is admitted.
    async fn serve(&mut self, link: &mut Link, out: &mut Vec<ServerMsg>, mut flow: Flow) -> End {
        let mut shutdown = self.st.shutdown.clone();
        let resync_every = self.resync_every();
        // Spread the exact re-reads of all connections over the interval.
        let offset = resync_every.mul_f64(rand::random::<f64>());
        let mut resync = interval_at(Instant::now() + offset, resync_every);
        let ping_every = Duration::from_millis(self.st.ws.ping_interval_ms.max(50));
        let mut ping = interval_at(Instant::now() + ping_every, ping_every);
        loop {
            if !flush(&mut link.tx, out, &flow).await {
                return End::Closed;
            }
            if !self.on_lane && matches!(self.place, Place::Admitted { .. }) {
                return End::ToCheckout;
            }
            flow = tokio::select! {
                _ = shutdown.wait() => Flow::Close(CLOSE_RECONNECT, "server shutting down; reconnect"),
                ev = link.reg.events.recv() => match ev {
                    Ok(ev) => self.on_event(ev, out).await,
                    Err(RecvError::Lagged(_)) => Box::pin(self.reread(out, false)).await,
                    Err(RecvError::Closed) => Flow::Close(CLOSE_RECONNECT, "room closed; reconnect"),
                },
                d = link.reg.direct.recv() => self.on_direct(d, out),
                m = link.rx.next() => match m {
                    Some(Ok(Message::Close(_))) | None => return End::Closed,
                    m => { self.last_heard = Instant::now(); self.on_frame(m, out).await }
                },
                _ = resync.tick() => self.periodic(out).await,
                _ = ping.tick() => match self.ping(ping_every) {
                    Some(m) => { let _ = link.tx.send(m).await; Flow::Continue }
                    None => Flow::Close(guard::CLOSE_DEAD_PEER, "no pong; peer gone"),
                },
            };
        }
    }

    /// The periodic exact read, which also checks the session the socket was opened with.
    async fn periodic(&mut self, out: &mut Vec<ServerMsg>) -> Flow {
        if let Some(flow) = self.expiry_check() {
            return flow;
        }
        Box::pin(self.reread(out, true)).await
    }

    /// A ping when the peer was heard recently; None when it was silent for two intervals.
    fn ping(&self, every: Duration) -> Option<Message> {
        (self.last_heard.elapsed() <= every * 2).then(|| Message::Ping(Vec::new().into()))
    }

    /// Records the moment the buyer went away, so the leave grace counts from it.
    async fn gone(&self) {
        if matches!(self.place, Place::Admitted { .. }) {
            return;
        }
        let mut conn = self.st.redis.clone();
        let k = self.st.keys.drop(self.id);
        if let Err(e) = self
            .st
            .scripts
            .touch(&mut conn, &k, self.user, &self.st.clock)
            .await
        {
            tracing::debug!(error = %e, "last-seen on close failed");
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
                self.admitted(token, expires_at_ms, seq, out);
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
            Some(Direct::Left) => {
                out.push(ServerMsg::Left);
                Flow::Close(1000, "left the queue")
            }
            Some(Direct::Replaced) => Flow::Close(
                guard::CLOSE_REPLACED,
                "too many sockets for this account; newest kept",
            ),
            None => Flow::Close(CLOSE_RECONNECT, "room closed; reconnect"),
        }
    }

    /// Sends `admitted` once per token on this socket, whichever path told us first.
    fn admitted(
        &mut self,
        token: String,
        expires_at_ms: i64,
        seq: Option<u64>,
        out: &mut Vec<ServerMsg>,
    ) {
        if matches!(&self.place, Place::Admitted { token: t } if *t == token) {
            return;
        }
        self.place = Place::Admitted {
            token: token.clone(),
        };
        self.last_sent = Some(0);
        out.push(ServerMsg::admitted(token, expires_at_ms, seq));
    }

    /// Stock, tokens, rate and this node's measured throughput, before the first tick.
    async fn read_outlook(&mut self) {
        match crate::outlook::read(&self.st, self.id).await {
            Ok(r) => {
                self.outlook = r.outlook;
                self.rate = r.rate;
            }
            Err(e) => tracing::debug!(error = %e, "outlook read failed"),
        }
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
