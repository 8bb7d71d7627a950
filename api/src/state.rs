//! The state every handler receives: connections, scripts, settings and the per-node
//! services (hub, limiters, accounts). Built once by `Application::build`.

use crate::{accounts, hub, limits};
use sqlx::PgPool;
use std::sync::Arc;
use vq_core::auth::JwtKeys;
use vq_core::config::Ws;
use vq_core::{Clock, Keys, RedisConn, Scripts, Shutdown};

/// Everything a handler needs, behind one `Arc`: axum's `State` extractor clones the state
/// for every request, and cloning and dropping the dozen handles below one by one (each an
/// atomic count or two) was 4 % of the api's CPU on the purchase path (benchmarks/NOTES-2026-11.md,
/// section "2.3 One script call per purchase").
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub(crate) fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`]; cloned only to make a state without the drain.
#[derive(Clone)]
pub struct Shared {
    pub redis: RedisConn,
    pub db: PgPool,
    pub scripts: Arc<Scripts>,
    pub keys: Keys,
    pub clock: Clock,
    pub jwt: Arc<JwtKeys>,
    pub hub: Arc<hub::Hub>,
    /// The node's batched room re-reads (room/reads.rs).
    pub reads: Arc<crate::room::reads::Reads>,
    /// Where an admitted buyer's room socket lives on (room/checkout.rs).
    pub checkout: Arc<crate::room::checkout::Checkout>,
    pub ws: Ws,
    pub orders: vq_core::config::Orders,
    /// How the join's proof of work is priced (see `vq_core::pow::difficulty`).
    pub pow: vq_core::config::Pow,
    pub payments: Arc<dyn vq_orders::payment::PaymentProvider>,
    pub shutdown: Shutdown,
    /// `None` when no PII key is configured (the account routes then answer 503).
    pub accounts: Option<Arc<accounts::Accounts>>,
    pub limits: Arc<limits::Limiters>,
    /// Pseudonym key and draw-seed cache (the verifiable pre-queue draw).
    pub fairness: Arc<crate::drops::fairness::Fairness>,
    /// Endpoint bounds and the address policy (webhooks/).
    pub webhooks: vq_core::config::Webhooks,
    /// This node's purchase latencies per drop, flushed to Redis once a second for the
    /// autopilot (`drops::latency`).
    pub latency: Arc<vq_core::autopilot::sketch::Recorder>,
    /// Keeps the api's drain open while a clone of the state lives (see `Drain`).
    #[allow(dead_code)] // held, never read: dropping the last clone is the signal
    pub(crate) drain: crate::Drain,
}
