//! VitaQueue api role: HTTP + WebSocket front door. `Application::build` binds the
//! listener (port 0 in tests) on the stores the composition root shares with the other
//! roles, and `run_until_stopped` serves until the shutdown fires, then closes every
//! WebSocket with "reconnect" and waits for them to drain (the last `AppState` clone going).
//!
//! Arrows: depends on `vq-core` and `vq-orders` (order transitions, payment, restock,
//! the stream group), never on `vq-worker`; built by `vitaqueue` (app), which also runs the
//! operator commands (reconcile, rebuild, create-manager) found here.
//!
//! Layout, by resource: `drops/` (public and admin routes, request specs, the store, views,
//! stock), `room/` (the WebSocket waiting room) with `hub` (pub/sub fan-out) and `messages`
//! (every server push), `accounts/`, `orders`, `products`, `wishlist`, `notifications`;
//! around them `state` (AppState), `extract`, `error`, `limits`, `pagination`, `web` (pages
//! and assets), `compress` (response compression), `openapi` (the API document, read from
//! the route modules' `Doc`s), `health`, `observe`. Arrows run from routes down to the store
//! and `error`; only this file assembles the routers.

pub mod accounts;
pub mod compress;
pub mod drops;
pub mod error;
pub mod extract;
pub mod health;
pub mod hub;
pub mod limits;
pub mod messages;
pub mod notifications;
pub mod observe;
pub mod openapi;
pub mod orders;
pub mod outlook;
pub mod pagination;
pub mod pow;
pub mod products;
pub mod room;
pub mod serve;
pub mod state;
pub mod web;
pub mod webhooks;
pub mod wishlist;

/// `vq_api::stock` stays the path of the reconcile/rebuild commands.
pub use drops::stock;
pub use state::{AppState, Shared};

use axum::Router;
use error::ApiError;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use vq_core::auth::JwtKeys;
use vq_core::config::Settings;
use vq_core::{Clock, Keys, RedisConn, Scripts, Shutdown};

/// The drain's sender rides in the state (one `Arc` all `AppState` clones share); a
/// WebSocket session owns a clone of the state for its whole life, so once the HTTP server
/// has stopped, the drain's receiver sees `None` exactly when the last session let go. No
/// counter to poll.
#[derive(Clone)]
pub(crate) struct Drain(#[allow(dead_code)] Option<mpsc::Sender<()>>);

pub fn router(state: AppState, http: &vq_core::config::Http) -> Router {
    let (max_body, timeout) = (http.max_body_bytes, http.request_timeout);
    let r = Router::new()
        .merge(accounts::router())
        .merge(drops::router())
        .merge(room::router())
        .merge(orders::router())
        .merge(products::router())
        .merge(wishlist::router())
        .merge(notifications::router())
        .merge(webhooks::router())
        .merge(pow::router())
        .merge(health::router())
        .merge(observe::router())
        .merge(web::router())
        .merge(openapi::router())
        .fallback(|| async { ApiError::NotFound("not_found", "no such route".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::BadRequest {
                status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
                code: "method_not_allowed",
                message: "method not allowed on this route".into(),
            }
        })
        .layer(axum::middleware::from_fn(
            move |r: axum::extract::Request, n: axum::middleware::Next| {
                limits::bounded(max_body, timeout, r, n)
            },
        ))
        .layer(axum::middleware::from_fn(observe::track))
        .with_state(state);
    web::with_security_headers(r, max_body)
}

pub struct Application {
    port: u16,
    http: vq_core::config::Http,
    listener: tokio::net::TcpListener,
    router: Router,
    state: AppState,
    drained: mpsc::Receiver<()>,
    pubsub: Vec<redis::Client>,
    /// The lost-state check (`drops::autorebuild::watch`): how often, and whether it rebuilds.
    lost_check_ms: u64,
    auto_rebuild: bool,
    /// The console history's sampling interval (`drops::history`); 0: off.
    history_ms: u64,
}

impl Application {
    /// Binds the HTTP port; Redis and PostgreSQL (already migrated) come from the caller,
    /// the composition root that shares them with the other roles of the process.
    pub async fn build(
        settings: &Settings,
        redis: RedisConn,
        db: PgPool,
        clock: Clock,
        shutdown: Shutdown,
    ) -> anyhow::Result<Self> {
        vq_core::config::secrets::check_secrets(&settings.auth)?;
        let secret = settings.auth.jwt_secret.as_ref().expect("checked");
        observe::handle();
        let accounts = accounts::Accounts::from_settings(settings)?.map(Arc::new);
        if accounts.is_none() {
            tracing::warn!("auth.pii_key not set: account endpoints are disabled");
        }
        let (drain, drained) = mpsc::channel(1);
        let limits = limits::Limiters::new(settings, redis.clone(), clock.clone());
        let scripts = Arc::new(Scripts::default());
        let keys = Keys::new(&settings.redis.prefix);
        let checkout = room::checkout::Checkout::start(
            &redis,
            settings.redis.url.expose(),
            &settings.redis.prefix,
        )
        .await?;
        let reads = room::reads::Reads::start(room::reads::Deps {
            redis: redis.clone(),
            scripts: scripts.clone(),
            keys: keys.clone(),
            clock: clock.clone(),
        });
        let state = AppState::new(Shared {
            redis: redis.clone(),
            db,
            scripts,
            keys,
            clock,
            jwt: Arc::new(JwtKeys::new(secret)),
            hub: Arc::new(hub::Hub::new(
                std::time::Duration::from_millis(settings.ws.position_interval_ms),
                std::time::Duration::from_millis(settings.admission.tick_ms),
            )),
            reads: Arc::new(reads),
            checkout: Arc::new(checkout),
            ws: settings.ws.clone(),
            orders: settings.orders.clone(),
            pow: settings.pow.clone(),
            payments: Arc::new(vq_orders::payment::SimulatedProvider::from_config(
                &settings.payment,
                redis,
                &settings.redis.prefix,
            )),
            shutdown,
            accounts,
            limits: Arc::new(limits),
            fairness: Arc::new(drops::fairness::Fairness::from_settings(&settings.auth)),
            webhooks: settings.webhooks.clone(),
            latency: Arc::default(),
            drain: Drain(Some(drain)),
        });
        let listener = listen(&settings.http).await?;
        let port = listener.local_addr()?.port();
        Ok(Application {
            port,
            http: settings.http.clone(),
            listener,
            router: router(state.clone(), &settings.http),
            state,
            drained,
            pubsub: vq_core::conn::pubsub_clients(&settings.redis)?,
            lost_check_ms: settings.redis.lost_check_ms,
            auto_rebuild: settings.redis.auto_rebuild,
            history_ms: settings.redis.history_ms,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle on the state for callers outside the server (tests, other roles); it does
    /// not hold the drain open, so keeping it does not delay the server's stop.
    pub fn state(&self) -> AppState {
        AppState::new(Shared {
            drain: Drain(None),
            ..Shared::clone(&self.state)
        })
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let detached = self.state();
        let sampler = self.state();
        let forecaster = self.state();
        let latencies = self.state();
        let leases = tokio::spawn(drops::lease::run(self.state()));
        let st = self.state;
        let hub = tokio::spawn(st.hub.clone().run(
            self.pubsub,
            st.keys.clone(),
            st.shutdown.clone(),
        ));
        let upkeep = tokio::spawn(async {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                observe::handle().run_upkeep();
            }
        });
        let watch = tokio::spawn(drops::autorebuild::watch(
            detached,
            Duration::from_millis(self.lost_check_ms.max(100)),
            self.auto_rebuild,
        ));
        let every = Duration::from_millis(st.ws.position_interval_ms.max(100));
        let forecasts = tokio::spawn(outlook::refresh::run(forecaster, every));
        let history_ms = self.history_ms;
        let history = tokio::spawn(async move {
            if history_ms > 0 {
                drops::history::run(sampler, history_ms).await;
            }
        });
        let latency = tokio::spawn(drops::latency::run(latencies));
        tracing::info!(port = self.port, "api listening");
        serve::serve(self.listener, self.router, &self.http, st.shutdown.clone()).await?;
        // Upgraded sockets live outside the HTTP server's graceful drain: each holds a clone
        // of the state, so the drain closes when the last one ends (bounded at 10 s).
        drop(st);
        let mut drained = self.drained;
        if tokio::time::timeout(Duration::from_secs(10), drained.recv())
            .await
            .is_err()
        {
            tracing::warn!("WebSocket sessions still open after 10 s; stopping anyway");
        }
        hub.abort();
        upkeep.abort();
        watch.abort();
        leases.abort();
        history.abort();
        forecasts.abort();
        latency.abort();
        tracing::info!("api stopped");
        Ok(())
    }
}

/// Binds the HTTP port with the configured accept backlog.
async fn listen(http: &vq_core::config::Http) -> anyhow::Result<tokio::net::TcpListener> {
    let addr = tokio::net::lookup_host((http.host.as_str(), http.port))
        .await?
        .next()
        .ok_or_else(|| anyhow::anyhow!("http.host {:?} resolves to nothing", http.host))?;
    let sock = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    Ok(sock.listen(http.listen_backlog.max(1))?)
}
