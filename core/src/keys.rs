//! Redis key layout. Every key of one drop carries the hash tag `{drop:ID}` so a whole drop
//! lives on one Redis Cluster slot and the Lua scripts may touch all of its keys.

use crate::domain::DropId;

/// Key namespace; tests use a unique prefix so they never see each other's data.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Keys {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn drop(&self, id: DropId) -> DropKeys {
        DropKeys {
            base: format!("{}:{{drop:{}}}", self.prefix, id.get()),
        }
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
            .strip_prefix(&self.prefix)?
            .strip_prefix(":{drop:")?;
        let id = rest.strip_suffix("}:events")?;
        id.parse().ok().and_then(|v| DropId::new(v).ok())
    }
}

/// All keys of one drop.
#[derive(Clone, Debug)]
pub struct DropKeys {
    base: String,
}

// Besides the keys named in DESIGN.md: `receipts` (HASH token -> "qty|remaining|total|ms",
// the outcome a purchase retry replays), `unpaid` (HASH token -> qty, reservations not yet
// paid or given back: units that may still come back), `seen` (HASH user -> last-seen ms, for
// the leave grace), `left` (count of buyers removed after the grace), `seqs` (HASH token ->
// admission seq, so a reconnect's admitted message carries the same seq as the tick's),
// `draw` (ZSET pseudonym -> draw score of every pre-queue joiner: the list the fairness
// endpoint reveals), `admscores` (LIST of admitted buyers' queue scores in admission order),
// `quit` (count of buyers who left the queue on their own), `fairrep` (the cached fairness
// report, JSON), `rebuild_lock` (one automatic rebuild at a time across api nodes),
// `history` (LIST of the console's samples, capped) and `history_gate` (one sampler per
// interval across api nodes).
macro_rules! key {
    ($($name:ident),*) => {
        impl DropKeys {
            $(pub fn $name(&self) -> String { format!("{}:{}", self.base, stringify!($name)) })*
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
    quit,
    fairrep,
    rebuild_lock
);

impl DropKeys {
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
            self.quit(),
            self.fairrep(),
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
}
