//! The JSON bodies of the shopper routes that are not views of a stored row: the purchase
//! request and reply, and the queue place (its schema; `public::place_body` builds it).

use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vq_core::domain::Quantity;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseBody {
    /// The purchase token of the admission.
    pub token: String,
    /// 1 to 100 (and within the drop's per-person limit).
    #[serde(default = "one")]
    #[schema(default = 1, minimum = 1, maximum = 100)]
    pub quantity: i64,
}

fn one() -> i64 {
    1
}

impl PurchaseBody {
    /// The quantity as a domain value; an empty or oversized token is refused before any
    /// Redis work.
    pub fn checked(&self) -> Result<Quantity, ApiError> {
        let qty = u32::try_from(self.quantity)
            .map_err(|_| vq_core::domain::Invalid("must be between 1 and 100".into()))
            .and_then(Quantity::new)
            .map_err(|e| ApiError::Validation([("quantity".to_string(), e.0)].into()))?;
        if self.token.is_empty() || self.token.len() > 128 {
            let msg = "must be 1 to 128 characters".to_string();
            return Err(ApiError::Validation([("token".to_string(), msg)].into()));
        }
        Ok(qty)
    }
}

/// A one-value tag of a reply (`"status": "reserved"`...).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReservedTag {
    Reserved,
}

/// The purchase went through: the units are reserved and the order awaits payment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Reserved {
    pub status: ReservedTag,
    /// The order to pay (`/v1/orders/{id}/pay`); null only for a token issued before
    /// admission numbers were stored.
    pub order_id: Option<i64>,
    pub token: String,
    pub quantity: u32,
    /// Units left in the drop.
    pub remaining: i64,
    /// Units this account has bought in this drop, this purchase included.
    pub bought_total: i64,
    pub order_status: vq_orders::Status,
}

/// The caller's place: still waiting (`status: queued`, with the fields of the room
/// socket's `position` message, `messages::Position`) or let in (`status: admitted`, with the purchase token).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Schema only: `public::place_body` builds this body as JSON.
pub enum Place {
    Queued(QueuedPlace),
    Admitted(AdmittedPlace),
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // Schema only, see `Place`.
pub struct QueuedPlace {
    /// Always `position` (the room socket's message type).
    #[serde(rename = "type")]
    #[schema(pattern = "^position$")]
    kind: String,
    /// 1-based place in the queue.
    position: u64,
    ahead: u64,
    /// Seconds until admission (0.1 s steps): the range's optimistic end, from the model
    /// forecast at the low end of the abandonment range (else the measured rate).
    eta_s: f64,
    /// The range's pessimistic end: the model's upper draws at the high end of the
    /// abandonment range, plus slack (else the slower average, plus a margin).
    eta_hi_s: f64,
    /// Units not yet sold or reserved.
    units_left: u64,
    /// Whether a unit may still reach this buyer.
    chance: crate::outlook::Chance,
    queue_len: u64,
    /// Still in the pre-queue: the place is drawn at the start.
    prequeue: bool,
    /// 0-based place in the drop's whole admission order, when exact.
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u64>,
    /// Always `queued`.
    #[schema(pattern = "^queued$")]
    status: String,
    /// The caller's pseudonym in this drop's published draw (`/fairness`).
    pseudonym: String,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // Schema only, see `Place`.
pub struct AdmittedPlace {
    /// Always `admitted`.
    #[schema(pattern = "^admitted$")]
    status: String,
    /// The purchase token for `/purchase`.
    token: String,
    /// The 1-based admission number.
    seq: Option<u64>,
    expires_at: String,
    expires_at_ms: i64,
    pseudonym: String,
}
