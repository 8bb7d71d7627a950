//! Every message the server pushes over a room's WebSocket, `{"type": ..., ...}`. The
//! `position` body is also what the HTTP queue endpoints answer, so both speak one shape.

use crate::outlook::{Chance, Outlook};
use serde::Serialize;
use vq_core::clock::rfc3339;
use vq_core::domain::{AdmitStatus, Notification};

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Position(Position),
    /// Sent once per token per socket. `seq` is the buyer's 1-based admission number (null
    /// only for a token whose name does not carry it, `prefix.seq`).
    Admitted {
        seq: Option<u64>,
        token: String,
        expires_at: String,
        expires_at_ms: i64,
    },
    Expired {
        message: &'static str,
    },
    Paused,
    Resumed,
    /// `final: false`: stock is 0 but units may come back; the buyer keeps the place on the
    /// waitlist and may stay (the socket stays open) or leave. `final: true`: nothing can
    /// come back; the socket is closed right after.
    SoldOut {
        #[serde(rename = "final")]
        is_final: bool,
        waitlist: bool,
    },
    /// The sale phase changed while waiting: `live` when units came back after a sell-out.
    Phase {
        phase: &'static str,
    },
    /// Answer to `status` when the buyer holds no rank: `admitted` (the token was sent) or
    /// `waitlist`.
    Status {
        place: &'static str,
    },
    Closed,
    Pong,
    Left,
    Error {
        code: &'static str,
        message: String,
    },
    Notification(Notification),
    /// Answer to a `purchase` sent on the socket: the body of the HTTP 201, plus the
    /// client's `request_id` when it sent one.
    Purchased {
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        #[serde(flatten)]
        receipt: crate::drops::wire::Reserved,
    },
    /// A `purchase` sent on the socket was refused: the HTTP status and body
    /// (`code`, `message`, details) the same request would get over HTTP.
    PurchaseRejected {
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        http_status: u16,
        code: &'static str,
        message: String,
        #[serde(flatten)]
        details: serde_json::Map<String, serde_json::Value>,
    },
}

impl ServerMsg {
    pub fn admitted(token: String, expires_at_ms: i64, seq: Option<u64>) -> Self {
        ServerMsg::Admitted {
            seq,
            token,
            expires_at: rfc3339(expires_at_ms),
            expires_at_ms,
        }
    }

    pub fn sold_out(is_final: bool) -> Self {
        ServerMsg::SoldOut {
            is_final,
            waitlist: !is_final,
        }
    }

    pub fn expired() -> Self {
        ServerMsg::Expired {
            message: "your purchase window expired; join again to queue at the back",
        }
    }

    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        ServerMsg::Error {
            code,
            message: message.into(),
        }
    }

    /// The socket's answer to a refused purchase, from the error HTTP would answer.
    pub fn purchase_rejected(request_id: Option<String>, e: &crate::error::ApiError) -> Self {
        let (status, code, message, details) = e.wire();
        ServerMsg::PurchaseRejected {
            request_id,
            http_status: status.as_u16(),
            code,
            message,
            details,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

/// A buyer's place in the queue.
#[derive(Debug, Clone, Serialize)]
pub struct Position {
    pub position: u64,
    pub ahead: u64,
    /// Seconds until the turn, the range's optimistic end (0.1 s steps; outlook.rs).
    pub eta_s: f64,
    /// The range's pessimistic end: the turn should come between the two.
    pub eta_hi_s: f64,
    /// Units not reserved.
    pub units_left: u64,
    /// Whether a unit may still reach this buyer (outlook.rs says how it is decided).
    pub chance: Chance,
    pub queue_len: u64,
    pub prequeue: bool,
    /// 0-based place in the drop's whole admission order (exact reads outside the
    /// pre-queue only), comparable with the `seq` of the admission to audit FIFO order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// The tick's status (pushes derived from a tick only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<AdmitStatus>,
    /// Redis time of that tick (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts_ms: Option<i64>,
}

impl Position {
    /// From the configured rate alone, stock unknown; see [`Position::with`].
    pub fn new(ahead: u64, rate: u64, queue_len: u64, prequeue: bool) -> Self {
        Position::with(ahead, rate, queue_len, prequeue, &Outlook::default())
    }

    /// With the drop's outlook of its last tick (stock, tokens, measured throughput).
    pub fn with(ahead: u64, rate: u64, queue_len: u64, prequeue: bool, o: &Outlook) -> Self {
        let (eta_s, eta_hi_s) = o.eta(ahead, rate);
        Position {
            position: ahead + 1,
            ahead,
            eta_s,
            eta_hi_s,
            units_left: o.units_left,
            chance: o.chance(ahead),
            queue_len,
            prequeue,
            index: None,
            status: None,
            ts_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wire(m: ServerMsg) -> serde_json::Value {
        serde_json::from_str(&m.to_json()).unwrap()
    }

    #[test]
    fn messages_keep_their_wire_shape() {
        assert_eq!(wire(ServerMsg::Paused), json!({"type": "paused"}));
        assert_eq!(
            wire(ServerMsg::error("bad_message", "x")),
            json!({"type": "error", "code": "bad_message", "message": "x"})
        );
        assert_eq!(
            wire(ServerMsg::Position(Position::new(4, 2, 9, false))),
            json!({"type": "position", "position": 5, "ahead": 4, "eta_s": 2.0,
                   "eta_hi_s": 2.3, "units_left": 0, "chance": "none",
                   "queue_len": 9, "prequeue": false})
        );
        assert_eq!(
            wire(ServerMsg::sold_out(false)),
            json!({"type": "sold_out", "final": false, "waitlist": true})
        );
        let a = wire(ServerMsg::admitted("t".into(), 0, Some(3)));
        assert_eq!(a["type"], "admitted");
        assert_eq!(a["seq"], 3);
        assert_eq!(a["expires_at"], "1970-01-01T00:00:00.000Z");
    }
}
