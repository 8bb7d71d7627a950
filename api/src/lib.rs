//! VitaQueue api role: HTTP + WebSocket front door. `Application::build` binds the
//! listener (port 0 in tests) and `run_until_stopped` serves until the shutdown fires,
//! then closes every WebSocket with "reconnect" and waits for them to drain.

pub mod accounts;
pub mod admin;
pub mod drop_spec;
pub mod drop_store;
pub mod drops;
pub mod error;
pub mod extract;
pub mod health;
pub mod hub;
pub mod limits;
pub mod notifications;
pub mod observe;
pub mod orders;
pub mod page;
pub mod pages;
pub mod products;
pub mod room;
pub mod stock;
pub mod views;
pub mod wishlist;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use error::ApiError;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use vq_core::auth::JwtKeys;
use vq_core::config::{Settings, Ws};
use vq_core::{Clock, Keys, RedisConn, Scripts, Shutdown};

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub redis: RedisConn,
    pub db: PgPool,
    pub scripts: Arc<Scripts>,
    pub keys: Keys,
    pub clock: Clock,
    pub jwt: Arc<JwtKeys>,
    pub hub: Arc<hub::Hub>,
    pub ws: Ws,
    pub orders: vq_core::config::Orders,
    pub payments: Arc<dyn vq_worker::payment::PaymentProvider>,
    pub shutdown: Shutdown,
    /// `None` when no PII key is configured (the account routes then answer 503).
    pub accounts: Option<Arc<accounts::Accounts>>,
    pub limits: Arc<limits::Limiters>,
}

pub fn router(state: AppState, max_body: usize) -> Router {
    Router::new()
        .merge(accounts::router())
        .merge(admin::router())
        .merge(drops::router())
        .merge(room::router())
        .merge(orders::router())
        .merge(products::router())
        .merge(wishlist::router())
        .merge(notifications::router())
        .merge(health::router())
        .merge(observe::router())
        .merge(pages::router())
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
                limits::drain_oversize(max_body, r, n)
            },
        ))
        .layer(axum::middleware::from_fn(observe::track))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

pub struct Application {
    port: u16,
    listener: tokio::net::TcpListener,
    router: Router,
    state: AppState,
    pubsub: Vec<redis::Client>,
}

impl Application {
    /// Connects to Redis and PostgreSQL (migrating it) and binds the HTTP port.
    pub async fn build(
        settings: &Settings,
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
        let redis = vq_core::store::redis(settings).await?;
        let db = vq_core::store::postgres(settings).await?;
        let limits = limits::Limiters::new(settings, redis.clone(), clock.clone());
        let state = AppState {
            redis,
            db,
            scripts: Arc::new(Scripts::default()),
            keys: Keys::new(&settings.redis.prefix),
            clock,
            jwt: Arc::new(JwtKeys::new(secret)),
            hub: Arc::new(hub::Hub::default()),
            ws: settings.ws.clone(),
            orders: settings.orders.clone(),
            payments: Arc::new(vq_worker::payment::SimulatedProvider::from_config(
                &settings.payment,
            )),
            shutdown,
            accounts,
            limits: Arc::new(limits),
        };
        let addr = format!("{}:{}", settings.http.host, settings.http.port);
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        let port = listener.local_addr()?.port();
        Ok(Application {
            port,
            listener,
            router: router(state.clone(), settings.http.max_body_bytes),
            state,
            pubsub: vq_core::conn::pubsub_clients(&settings.redis)?,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
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
        let mut stop = st.shutdown.clone();
        tracing::info!(port = self.port, "api listening");
        // Connect info gives the rate limits the peer address.
        let service = self
            .router
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(self.listener, service)
            .with_graceful_shutdown(async move { stop.wait().await })
            .await?;
        // Upgraded sockets live outside the HTTP server's graceful drain: wait for them.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while st.hub.connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        hub.abort();
        upkeep.abort();
        tracing::info!("api stopped");
        Ok(())
    }
}
