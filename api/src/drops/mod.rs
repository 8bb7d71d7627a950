//! Drops, by concern: `public` (shopper routes: details, the HTTP waiting room), `purchase`
//! (the purchase, shared by HTTP and the room socket),
//! `admin` (manager routes), `spec` (request bodies parsed into valid values), `store`
//! (PostgreSQL rows and their Redis mirror), `views` (read models and phase), `stock`
//! (reconcile/rebuild across both stores), `lost` (drops whose Redis state is gone),
//! `fairness` (the verifiable pre-queue draw), `report` (the fairness report of a drop),
//! `simulate` (the what-if simulator for managers), `history` (the console's capped samples
//! and the rate changes), `latency` (purchase latencies flushed for the autopilot) and `autopilot` (the drop's autopilot setting and the live rate).
//!
//! Arrows run one way: routes → spec/views → store → `crate::error`; nothing here is
//! imported back by `store` or `views`.

pub mod admin;
pub mod autopilot;
pub mod autorebuild;
pub mod fairness;
pub mod history;
pub mod latency;
pub mod lease;
pub mod lost;
pub mod mirror;
pub mod public;
pub mod purchase;
pub mod recover;
pub mod report;
pub mod simulate;
pub mod spec;
pub mod stock;
pub mod store;
pub mod views;
pub mod wire;

pub use public::join_or_peek;

use crate::AppState;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(public::router())
        .merge(purchase::router())
        .merge(admin::router())
        .merge(recover::router())
        .merge(fairness::router())
        .merge(history::router())
        .merge(simulate::router())
}
