//! The messages published on Redis pub/sub. Writers: `admit.lua` (tick), `purchase.lua`
//! (sold_out), `restock.lua` (restock), the api's drop store (state) and the worker's
//! notifier (account notifications). Reader: the api's hub. Both sides use these types, so
//! a field renamed on one side fails to compile (Rust) or fails `core/tests/lua/events.rs`
//! (Lua).

use super::{AdmitStatus, DropState};
use serde::{Deserialize, Serialize};

/// One message on a drop's events channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DropEvent {
    Tick(Tick),
    /// The last unit was reserved.
    SoldOut {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        now: Option<i64>,
    },
    /// A manager paused, resumed or closed the drop.
    State {
        state: DropState,
    },
    /// Stock came back (cancel, failed payment, expiry, return): rooms need no action.
    Restock {
        #[serde(default)]
        remaining: i64,
    },
}

/// One admission tick, published by `admit.lua` once per call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    pub status: AdmitStatus,
    pub admitted_total: u64,
    pub queue_len: u64,
    pub rate: u64,
    /// Redis time of the tick (ms), so clients can measure push latency.
    pub now: i64,
    #[serde(default)]
    pub live: u64,
    #[serde(default)]
    pub remaining: i64,
    /// Reservations not yet paid or given back (units that may come back).
    #[serde(default)]
    pub open: u64,
    /// Omitted by the script when empty (cjson would encode an empty table as `{}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admitted: Vec<AdmittedBuyer>,
    /// Accounts whose purchase token expired in this tick.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expired: Vec<String>,
    /// Buyers ever removed for being gone past the leave grace (positions count it).
    #[serde(default)]
    pub left_total: u64,
    /// Buyers removed in this tick for being gone past the leave grace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left: Vec<String>,
    /// The drop's seq lease (cfg `seq_lease`), when it has one: what the api nodes keep
    /// ahead of `admitted_total` (api/src/drops/lease.rs) without reading Redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<u64>,
}

/// `[user, token, expires_at_ms, seq]`: seq is the 1-based admission number in the drop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmittedBuyer(pub String, pub String, pub i64, pub u64);

/// One message on the account-events channel: delivered to every open socket of `users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AccountEvent {
    Notification {
        #[serde(flatten)]
        note: Notification,
        users: Vec<String>,
    },
    /// The account gave up its place in `drop_id` (over HTTP or another socket): every
    /// node closes that account's sockets in that room with a `left` message.
    Left { drop_id: i64, users: Vec<String> },
}

/// What an account is told (pushed to its sockets as `{"type":"notification", ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub kind: String,
    pub drop_id: i64,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_event_is_the_documented_shape() {
        let ev = DropEvent::State {
            state: DropState::Closed,
        };
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v, serde_json::json!({"type": "state", "state": "closed"}));
        assert_eq!(serde_json::from_value::<DropEvent>(v).unwrap(), ev);
    }

    #[test]
    fn account_event_flattens_the_notification() {
        let raw = r#"{"type":"notification","kind":"prequeue_open","drop_id":3,"message":"m","users":["u"]}"#;
        let AccountEvent::Notification { note, users } = serde_json::from_str(raw).unwrap() else {
            panic!("a notification")
        };
        assert_eq!(note.drop_id, 3);
        assert_eq!(users, vec!["u".to_string()]);
    }
}
