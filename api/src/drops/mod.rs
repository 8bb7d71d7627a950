//! Drops, by concern: `public` (shopper routes: details, the HTTP waiting room, purchase),
//! `admin` (manager routes), `spec` (request bodies parsed into valid values), `store`
//! (PostgreSQL rows and their Redis mirror), `views` (read models and phase), `stock`
//! (reconcile/rebuild across both stores), `lost` (drops whose Redis state is gone) and
//! `fairness` (the verifiable pre-queue draw).
//!
//! Arrows run one way: routes → spec/views → store → `crate::error`; nothing here is
//! imported back by `store` or `views`.

pub mod admin;
pub mod fairness;
pub mod lost;
pub mod mirror;
pub mod public;
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
        .merge(admin::router())
        .merge(fairness::router())
}
