//! The order domain: what happens to a reservation after the purchase script made it.
//!
//! - [`status`]: `Status` (decoded by sqlx from the TEXT column) and `OrderId`;
//! - [`transition`]: the status machine, one locked-row transaction per move, restocks
//!   written to the `restocks` outbox in the same transaction;
//! - [`pay`], [`payment`], [`simulator`], [`refund`]: the charge outside any transaction
//!   (CHARGING, then the provider with the order id as idempotency key, then PAID or
//!   PAYMENT_FAILED), the provider trait and its simulator, and refunds;
//! - [`events`]: webhook event types and the outbox writer used inside those transactions;
//! - [`restock`]: applies the outbox to Redis (idempotent per order);
//! - [`scheduler`]: time-driven moves, the outbox, stock sync, simulated buyers, notices;
//! - [`notify`]: pre-queue notifications (stored, pushed, emailed);
//! - [`stream`]: the order stream's consumer group, shared by the api (creates it) and
//!   the worker (reads through it).
//!
//! Arrows: `vq-core` ← `vq-orders` ← `vq-worker`, `vq-api` ← `vitaqueue` (app). This
//! crate knows nothing of HTTP or of the stream reader; the api and the worker call into it.

pub mod events;
pub mod notify;
pub mod order;
pub mod pay;
pub mod payment;
pub mod refund;
pub mod restock;
pub mod scheduler;
pub mod simulator;
pub mod status;
pub mod stream;
pub mod transition;

pub use pay::pay;
pub use status::{OrderId, Status};
pub use stream::{ensure_group, GROUP};
pub use transition::{
    apply, cancel, lock, request_return, sweep, transition, Order, TransitionError, COLUMNS,
};
