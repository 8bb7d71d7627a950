//! Payment behind a trait, so a real provider can replace the simulation (see
//! [`crate::simulator`]). Every call carries the order id as its idempotency key: asking
//! again after a crash or a lost answer returns the first answer and never charges (or
//! refunds) twice, which is what lets the charge run outside any database transaction.

use crate::OrderId;
use futures::future::BoxFuture;

pub use crate::simulator::SimulatedProvider;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentResult {
    Approved {
        reference: String,
    },
    Declined {
        reason: String,
    },
    /// No answer (timeout, provider or its memory unreachable): the charge may or may not
    /// have happened, so the order stays CHARGING until the scheduler asks again.
    Unknown {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundResult {
    Refunded {
        reference: String,
    },
    /// Not refunded this time (provider unreachable…); the scheduler asks again.
    Failed {
        reason: String,
    },
}

pub trait PaymentProvider: Send + Sync {
    /// Charges `amount_cents` for `order_id` (the idempotency key) with the buyer's method.
    fn charge<'a>(
        &'a self,
        order_id: OrderId,
        amount_cents: i64,
        method: &'a str,
    ) -> BoxFuture<'a, PaymentResult>;

    /// Gives back `amount_cents` charged for `order_id` (again the idempotency key).
    fn refund(&self, order_id: OrderId, amount_cents: i64) -> BoxFuture<'_, RefundResult>;

    /// Whether the method is one this provider knows (unknown → 422, nothing charged).
    fn accepts(&self, method: &str) -> bool;
}
