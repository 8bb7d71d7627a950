//! VitaQueue api role: HTTP + WebSocket front door. `Application::build` binds the
//! listener (port 0 in tests) and `run_until_stopped` serves until the shutdown fires,
//! then closes every WebSocket with "reconnect" and waits for them to drain.

pub mod admin;
pub mod drop_store;
pub mod drops;
pub mod error;
pub mod extract;
pub mod health;
pub mod hub;
pub mod room;
pub mod views;

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
    pub shutdown: Shutdown,
}

pub fn router(state: AppState, max_body: usize) -> Router {
    Router::new()
        .merge(admin::router())
        .merge(drops::router())
        .merge(room::router())
        .merge(health::router())
        .fallback(|| async { ApiError::NotFound("not_found", "no such route".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::BadRequest {
                status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
                code: "method_not_allowed",
                message: "method not allowed on this route".into(),
            }
        })
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
        let secret =
            settings.auth.jwt_secret.as_ref().ok_or_else(|| {
                anyhow::anyhow!("auth.jwt_secret (VQ_AUTH__JWT_SECRET) must be set")
            })?;
        let redis = vq_core::store::redis(settings).await?;
        let db = vq_core::store::postgres(settings).await?;
        let state = AppState {
            redis,
            db,
            scripts: Arc::new(Scripts::default()),
            keys: Keys::new(&settings.redis.prefix),
            clock,
            jwt: Arc::new(JwtKeys::new(secret)),
            hub: Arc::new(hub::Hub::default()),
            ws: settings.ws.clone(),
            shutdown,
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
        let mut stop = st.shutdown.clone();
        tracing::info!(port = self.port, "api listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { stop.wait().await })
            .await?;
        // Upgraded sockets live outside the HTTP server's graceful drain: wait for them.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while st.hub.connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        hub.abort();
        tracing::info!("api stopped");
        Ok(())
    }
}
