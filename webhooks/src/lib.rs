//! Signed webhooks from the PostgreSQL outbox (see docs/webhooks.md).
//!
//! - [`endpoints`]: registration, listing, disabling, secret rotation, the attempt log and
//!   redelivery (the api's `webhooks` routes call these);
//! - [`deliver`]: the worker role's delivery loop (leases, per-endpoint slots, per-order
//!   ordering, backoff), with [`send`] (one attempt) and `record` (its consequences);
//! - [`signature`]: the `VQ-Signature` header, also used by `vitaqueue webhook verify`;
//! - [`target`]: which URLs and addresses may be a target (SSRF, DNS rebinding).
//!
//! Events are written by `vq_orders::events` inside the state changes' transactions.
//! Arrows: `vq-core` ← `vq-orders` ← this crate ← `vq-api`, `vitaqueue` (app).

pub mod deliver;
pub mod endpoints;
mod record;
pub mod send;
pub mod signature;
pub mod target;

pub use deliver::Deliverer;
pub use send::Pii;
pub use vq_orders::events::{Event, EventType};
