//! Per-node fan-out of drop events. One pattern subscription per api node receives each
//! admission tick once; every connected buyer derives their position from it locally, so
//! position updates cost O(1) Redis work per node per tick, however many buyers wait here.

mod inbox;
mod lanes;
mod listen;

pub use inbox::Inbox;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use vq_core::domain::{
    AccountEvent, AdmitStatus, AdmittedBuyer, DropEvent, DropId, DropState, Notification, Tick,
    UserId,
};

use crate::outlook::{Meter, Outlook};

/// What every buyer in a room hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    Tick {
        status: AdmitStatus,
        admitted_total: u64,
        queue_len: u64,
        rate: u64,
        /// Redis time of the tick (ms), so clients can measure push latency.
        now: i64,
        /// Buyers ever removed for leaving: they were ahead, so positions count them.
        left_total: u64,
        /// Stock, tokens and measured throughput: computed once per tick for all sockets.
        outlook: Outlook,
    },
    /// purchase.lua reserved the last unit: a hint only (the tick status says whether
    /// units may still come back).
    SoldOut,
    State(DropState),
}

/// What only one account hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Direct {
    Admitted {
        token: String,
        expires_at_ms: i64,
        seq: Option<u64>,
    },
    Expired,
    /// The account gave up its place in this room (HTTP `DELETE .../queue`, another socket,
    /// or removed after the leave grace).
    Left,
    /// A newer socket of the account pushed this one over the per-account cap.
    Replaced,
    /// An account-level notification, pushed to every open socket of the account.
    Notify(Notification),
}

type Senders = HashMap<u64, (DropId, Arc<Inbox>)>;

#[derive(Default)]
pub struct Hub {
    /// Measured admission throughput per drop (outlook.rs).
    pub meter: Meter,
    /// What the last tick of each drop said about its seq lease (drops/lease.rs).
    pub leases: crate::drops::lease::Seen,
    /// Per room: its sockets' lanes and the schedule that spreads ticks over them
    /// (hub/lanes.rs).
    rooms: Mutex<HashMap<DropId, lanes::Room>>,
    /// Lanes per room and the push interval each lane hears a tick in.
    lanes: usize,
    push_gap: Duration,
    /// Account id → its open sockets (any drop).
    users: Mutex<HashMap<String, Senders>>,
    next_id: AtomicU64,
    connections: AtomicUsize,
}

/// A registered connection; dropping it unregisters.
pub struct Registration {
    hub: Arc<Hub>,
    drop: DropId,
    user: String,
    id: u64,
    pub events: broadcast::Receiver<RoomEvent>,
    pub direct: Arc<Inbox>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut users = self.hub.users.lock().expect("hub lock");
        if let Some(conns) = users.get_mut(&self.user) {
            conns.remove(&self.id);
            if conns.is_empty() {
                users.remove(&self.user);
            }
        }
        drop(users);
        let mut rooms = self.hub.rooms.lock().expect("hub lock");
        if rooms.get(&self.drop).is_some_and(|r| r.receivers() <= 1) {
            rooms.remove(&self.drop);
        }
        self.hub.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Hub {
    /// `push_gap`: the push interval (`ws.position_interval_ms`); `tick`: how often
    /// admission ticks (`admission.tick_ms`), so a room gets one lane per tick of the gap.
    pub fn new(push_gap: Duration, tick: Duration) -> Self {
        let per_gap = push_gap.as_millis() / tick.as_millis().max(1);
        Hub {
            lanes: per_gap.clamp(1, 32) as usize,
            push_gap,
            ..Hub::default()
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Registers a socket; when the account then has more than `cap` sockets on this node,
    /// the oldest is told `Replaced`.
    pub fn register(self: &Arc<Self>, drop: DropId, user: UserId, cap: usize) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let events = self
            .rooms
            .lock()
            .expect("hub lock")
            .entry(drop)
            .or_insert_with(|| lanes::Room::new(self.lanes, self.push_gap))
            .subscribe(id);
        let direct = Arc::new(Inbox::default());
        let user = user.to_string();
        {
            let mut users = self.users.lock().expect("hub lock");
            let conns = users.entry(user.clone()).or_default();
            conns.insert(id, (drop, direct.clone()));
            if conns.len() > cap.max(1) {
                if let Some(oldest) = conns.keys().min().copied() {
                    if let Some((_, inbox)) = conns.remove(&oldest) {
                        inbox.push(Direct::Replaced);
                        inbox.close();
                    }
                }
            }
        }
        self.connections.fetch_add(1, Ordering::SeqCst);
        Registration {
            hub: self.clone(),
            drop,
            user,
            id,
            events,
            direct,
        }
    }

    /// Sends to the account's sockets in `drop`'s room, or in every room when `drop` is None.
    fn tell(&self, drop: Option<DropId>, user: &str, msg: Direct) {
        if let Some(conns) = self.users.lock().expect("hub lock").get(user) {
            for (room, inbox) in conns.values() {
                if drop.is_none_or(|d| d == *room) {
                    inbox.push(msg.clone());
                }
            }
        }
    }

    /// Handles one message of the account-events channel.
    pub fn dispatch_users(&self, payload: &[u8]) {
        match serde_json::from_slice(payload) {
            Ok(AccountEvent::Notification { note, users }) => {
                for user in &users {
                    self.tell(None, user, Direct::Notify(note.clone()));
                }
            }
            Ok(AccountEvent::Left { drop_id, users }) => {
                if let Ok(drop) = DropId::new(drop_id) {
                    for user in &users {
                        self.tell(Some(drop), user, Direct::Left);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "unreadable account event"),
        }
    }

    fn broadcast(&self, drop: DropId, ev: RoomEvent) {
        if let Some(room) = self.rooms.lock().expect("hub lock").get(&drop) {
            room.send_all(&ev);
        }
    }

    /// Handles one event message published on a drop's channel.
    pub fn dispatch(&self, drop: DropId, payload: &[u8]) {
        match serde_json::from_slice(payload) {
            Ok(DropEvent::Tick(t)) => self.on_tick(drop, t),
            Ok(DropEvent::SoldOut { .. }) => {
                metrics::counter!("vq_drop_sold_out_events_total").increment(1);
                self.broadcast(drop, RoomEvent::SoldOut);
            }
            Ok(DropEvent::State { state }) => self.broadcast(drop, RoomEvent::State(state)),
            Ok(DropEvent::Restock { .. }) => {}
            Err(e) => tracing::warn!(error = %e, "unreadable drop event"),
        }
    }

    fn on_tick(&self, drop: DropId, t: Tick) {
        let outlook = self.meter.observe(drop, &t);
        self.leases.observe(drop, &t);
        let d = drop.get().to_string();
        metrics::gauge!("vq_drop_queue_length", "drop" => d.clone()).set(t.queue_len as f64);
        metrics::gauge!("vq_drop_admitted", "drop" => d.clone()).set(t.admitted_total as f64);
        metrics::gauge!("vq_drop_tokens_live", "drop" => d.clone()).set(t.live as f64);
        metrics::gauge!("vq_drop_remaining", "drop" => d.clone()).set(t.remaining as f64);
        metrics::counter!("vq_tokens_issued_total", "drop" => d.clone())
            .increment(t.admitted.len() as u64);
        metrics::counter!("vq_tokens_expired_total", "drop" => d).increment(t.expired.len() as u64);
        for AdmittedBuyer(user, token, expires_at_ms, seq) in t.admitted {
            let msg = Direct::Admitted {
                token,
                expires_at_ms,
                seq: Some(seq),
            };
            self.tell(Some(drop), &user, msg);
        }
        for user in t.expired {
            self.tell(Some(drop), &user, Direct::Expired);
        }
        for user in t.left {
            self.tell(Some(drop), &user, Direct::Left);
        }
        let ev = RoomEvent::Tick {
            status: t.status,
            admitted_total: t.admitted_total,
            queue_len: t.queue_len,
            rate: t.rate,
            now: t.now,
            left_total: t.left_total,
            outlook,
        };
        if let Some(room) = self.rooms.lock().expect("hub lock").get_mut(&drop) {
            room.tick(&ev, t.status);
        }
    }
}
