//! Redis key layout. Every key of one drop carries the hash tag `{drop:ID}` so a whole drop
//! lives on one Redis Cluster slot and the Lua scripts may touch all of its keys.
//!
//! `Keys` is cloned into every request's state, so the prefix is shared (`Arc`), never
//! copied; and the keys of a drop are built once per drop and process (a bounded cache),
//! not once per request: the purchase names 12 keys per call.

use crate::domain::DropId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Drops whose keys one process keeps built; past this the cache starts over (a drop's
/// keys cost a few hundred bytes, and far fewer drops than this are live at once).
const CACHED_DROPS: usize = 4096;

/// Key namespace; tests use a unique prefix so they never see each other's data.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: Arc<str>,
    drops: Arc<Mutex<HashMap<DropId, DropKeys>>>,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Keys {
            prefix: Arc::from(prefix.into()),
            drops: Arc::default(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The drop's keys, built on the first call for this drop and shared afterwards.
    pub fn drop(&self, id: DropId) -> DropKeys {
        let mut cache = self.drops.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = cache.get(&id) {
            return k.clone();
        }
        if cache.len() >= CACHED_DROPS {
            cache.clear();
        }
        let k = DropKeys(Arc::new(DropBase {
            base: format!("{}:{{drop:{}}}", self.prefix, id.get()),
            purchase: OnceLock::new(),
        }));
        cache.insert(id, k.clone());
        k
    }

    /// Drops whose admission is running (the admission controller ticks these).
    pub fn active_drops(&self) -> String {
        format!("{}:drops:active", self.prefix)
    }

    /// Drops whose order stream the workers read.
    pub fn stream_drops(&self) -> String {
        format!("{}:drops:streams", self.prefix)
    }

    /// Channel for events addressed to accounts rather than to a drop's room.
    pub fn user_events(&self) -> String {
        format!("{}:user-events", self.prefix)
    }

    /// Pending e-mail verification code of one address (by its keyed hash).
    pub fn email_code(&self, email_hash_hex: &str) -> String {
        format!("{}:auth:code:{email_hash_hex}", self.prefix)
    }

    /// Present while the access token with this `jti` is revoked (expires with it).
    /// A proof-of-work challenge nonce, alive until solved once or expired.
    pub fn pow_nonce(&self, nonce: &str) -> String {
        format!("{}:pow:{nonce}", self.prefix)
    }

    pub fn revoked_jti(&self, jti: &uuid::Uuid) -> String {
        format!("{}:auth:revoked:{}", self.prefix, jti.simple())
    }

    /// Pattern matching every drop's event channel.
    pub fn events_pattern(&self) -> String {
        format!("{}:{{drop:*}}:events", self.prefix)
    }

    /// Parses the drop id back out of an event channel name.
    pub fn drop_of_channel(&self, channel: &str) -> Option<DropId> {
        let rest = channel
            .strip_prefix(&*self.prefix)?
            .strip_prefix(":{drop:")?;
        let id = rest.strip_suffix("}:events")?;
        id.parse().ok().and_then(|v| DropId::new(v).ok())
    }
}

/// All keys of one drop; cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct DropKeys(Arc<DropBase>);

#[derive(Debug)]
struct DropBase {
    base: String,
    /// KEYS of purchase.lua, in its order, built on the first purchase of the drop.
    purchase: OnceLock<[String; 13]>,
}

// Besides the keys named in DESIGN.md: `receipts` (HASH token -> "qty|remaining|total|ms",
// the outcome a purchase retry replays), `unpaid` (HASH token -> qty, reservations not yet
// paid or given back: units that may still come back), `seen` (HASH user -> last-seen ms, for
// the leave grace), `left` (count of buyers removed after the grace), `seqs` (no longer
// written: a token's admission seq is its name's suffix, `prefix.seq`; listed in `all` so a
// clean-up still removes what older versions wrote), `draw` (ZSET pseudonym -> draw score of every pre-queue joiner: the list the fairness
// endpoint reveals), `joins` (HASH: join.lua's record of each join, user -> n and "user#n" ->
// queue score), `admorder` (LIST "user#n" of admitted buyers in admission order: the two
// records the fairness report's FIFO check compares; `admscores` is no longer written),
// `quit` (count of buyers who left the queue on their own), `fairrep` (the cached fairness
// report, JSON), `rebuild_lock` (one automatic rebuild at a time across api nodes),
// `history` (LIST of the console's samples, capped) and `history_gate` (one sampler per
// interval across api nodes), `ratelog` (LIST of the rate changes, capped; lua/rate.lua),
// `ap_lease` (one autopilot decision per interval across admission processes),
// `aplat:<second>` (the purchase latency histogram of one second, expiring; not in `all`)
// and `staged` (HASH token -> a strict-mode purchase waiting for its replica,
// lua/settle.lua).
macro_rules! key {
    ($($name:ident),*) => {
        impl DropKeys {
            $(pub fn $name(&self) -> String { format!("{}:{}", self.0.base, stringify!($name)) })*
        }
    };
}
key!(
    cfg,
    queue,
    seq,
    stock,
    tokens,
    expiry,
    holders,
    admitted,
    bucket,
    window,
    admlog,
    history,
    history_gate,
    events,
    expired,
    buyers,
    orders,
    reservations,
    restocked,
    receipts,
    unpaid,
    seen,
    left,
    seqs,
    draw,
    admscores,
    joins,
    admorder,
    quit,
    fairrep,
    rebuild_lock,
    ratelog,
    ap_lease,
    staged
);

impl DropKeys {
    /// Joins of this drop in one second (`sec`: unix seconds), for the proof of work's
    /// pressure; each expires a few seconds after its second.
    pub fn join_rate(&self, sec: i64) -> String {
        format!("{}:jr:{sec}", self.0.base)
    }

    /// Joins of this drop from one address in one minute (`min`: unix minutes).
    pub fn join_addr(&self, min: i64, ip: std::net::IpAddr) -> String {
        format!("{}:ja:{min}:{ip}", self.0.base)
    }

    /// The purchase latency histogram of one second (see `autopilot::sketch`).
    pub fn aplat(&self, second: i64) -> String {
        format!("{}:aplat:{second}", self.0.base)
    }

    /// KEYS[1..13] of lua/purchase.lua (see its header), built once per drop.
    pub fn purchase_set(&self) -> &[String; 13] {
        self.0.purchase.get_or_init(|| {
            [
                self.cfg(),
                self.tokens(),
                self.expiry(),
                self.holders(),
                self.stock(),
                self.buyers(),
                self.orders(),
                self.events(),
                self.reservations(),
                self.expired(),
                self.receipts(),
                self.unpaid(),
                self.staged(),
            ]
        })
    }

    /// KEYS of lua/settle.lua (see its header).
    pub fn settle_set(&self) -> [String; 12] {
        [
            self.staged(),
            self.orders(),
            self.cfg(),
            self.events(),
            self.stock(),
            self.buyers(),
            self.reservations(),
            self.unpaid(),
            self.receipts(),
            self.tokens(),
            self.expiry(),
            self.holders(),
        ]
    }

    /// Every key of the drop (for clean-up and rebuild).
    pub fn all(&self) -> Vec<String> {
        vec![
            self.cfg(),
            self.queue(),
            self.seq(),
            self.stock(),
            self.tokens(),
            self.expiry(),
            self.holders(),
            self.admitted(),
            self.bucket(),
            self.window(),
            self.admlog(),
            self.history(),
            self.history_gate(),
            self.expired(),
            self.buyers(),
            self.orders(),
            self.reservations(),
            self.restocked(),
            self.receipts(),
            self.rebuild_lock(),
            self.unpaid(),
            self.seen(),
            self.left(),
            self.seqs(),
            self.draw(),
            self.admscores(),
            self.joins(),
            self.admorder(),
            self.quit(),
            self.fairrep(),
            self.ratelog(),
            self.ap_lease(),
            self.staged(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_hash_tag_and_channel_round_trips() {
        let keys = Keys::new("vq");
        let id = DropId::new(42).unwrap();
        let k = keys.drop(id);
        assert_eq!(k.queue(), "vq:{drop:42}:queue");
        for key in k.all() {
            assert!(key.contains("{drop:42}"), "{key}");
        }
        assert_eq!(keys.drop_of_channel(&k.events()), Some(id));
        assert_eq!(keys.drop_of_channel("other:{drop:42}:events"), None);
        assert_eq!(keys.drop_of_channel("vq:{drop:x}:events"), None);
    }

    #[test]
    fn a_drops_keys_are_built_once_and_match_the_named_ones() {
        let keys = Keys::new("vq");
        let id = DropId::new(7).unwrap();
        let (a, b) = (keys.drop(id), keys.clone().drop(id));
        assert!(
            Arc::ptr_eq(&a.0, &b.0),
            "the second lookup reuses the first"
        );
        let set = a.purchase_set();
        assert_eq!(set[0], a.cfg());
        assert_eq!(set[11], a.unpaid());
        assert!(std::ptr::eq(set, b.purchase_set()));
        let other = Keys::new("vq").drop(DropId::new(8).unwrap());
        assert_eq!(other.cfg(), "vq:{drop:8}:cfg");
    }
}
