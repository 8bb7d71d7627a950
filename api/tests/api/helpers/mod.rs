//! `spawn_app()`: the api role, built by the same `vitaqueue::App` as the binary, on a free
//! port with a fresh PostgreSQL database and a unique Redis key prefix per test. By concern:
//! `http` (calls and the drop path's steps), `ws` (room sockets), `roles` (admission,
//! workers and schedulers as tasks), `processes` (a private redis-server and its
//! `MONITOR`; the `vitaqueue` role processes are in `procs`).

mod http;
mod processes;
pub mod receiver;
mod roles;
mod ws;

pub use processes::{Monitor, PrivateRedis};

/// Held by the tests that each saturate both cores for a while (the 5,000-buyer crowd, the
/// browser suites running Chromium), so the harness never runs two of them at once: side by
/// side they starved each other into request timeouts that said nothing about the code.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
pub use ws::{close_code, next_json, next_of, send_text, ws_request, Ws};

use sqlx::{Connection, PgConnection, PgPool};
use std::time::Duration;
use tokio::task::JoinHandle;
use vitaqueue::{App, Roles};
use vq_core::auth::JwtKeys;
use vq_core::config::Secret;
use vq_core::domain::UserId;
use vq_core::shutdown::{self, Trigger};
use vq_core::{Clock, Keys, RedisConn, Settings};

pub fn redis_url() -> String {
    std::env::var("VQ_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn admin_db_url() -> String {
    std::env::var("VQ_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub struct TestApp {
    pub addr: String,
    pub port: u16,
    pub db: PgPool,
    pub redis: RedisConn,
    pub keys: Keys,
    pub clock: Clock,
    pub settings: Settings,
    pub state: vq_api::AppState,
    pub http: reqwest::Client,
    jwt: JwtKeys,
    trigger: Trigger,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    db_name: String,
}

/// A last change to the settings of one test's app.
pub type Configure = Box<dyn FnOnce(&mut Settings) + Send>;

/// A periodic re-read interval no test window meets. Each socket's first re-read comes at a
/// random point of its interval (the spread), so a 10-minute interval still re-read inside
/// a test's window now and then. Re-reads run at min(this, ws.leave_grace_ms / 3): set the
/// grace to [`NO_RESYNC_GRACE_MS`] too.
pub const NO_RESYNC_MS: u64 = 30 * 86_400_000;
pub const NO_RESYNC_GRACE_MS: u64 = 3 * NO_RESYNC_MS;

pub struct Opts {
    pub clock: Clock,
    pub redis_url: String,
    pub resync_ms: u64,
    /// Last word on the settings (SMTP port, rate limits, TTLs…).
    pub configure: Option<Configure>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            clock: Clock::Redis,
            redis_url: redis_url(),
            resync_ms: 5000,
            configure: None,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Opts::default()).await
}

/// Like `spawn_app_with`, with a last say over the settings (cluster mode, limits, …),
/// applied after any `opts.configure`.
pub async fn spawn_app_tuned(
    mut opts: Opts,
    tune: impl FnOnce(&mut Settings) + Send + 'static,
) -> TestApp {
    let first = opts.configure.take();
    opts.configure = Some(Box::new(move |s: &mut Settings| {
        if let Some(f) = first {
            f(s);
        }
        tune(s);
    }));
    spawn_app_with(opts).await
}

pub async fn spawn_app_with(opts: Opts) -> TestApp {
    vq_core::telemetry::init(false);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let db_name = format!("vq_test_{id}");
    let admin = admin_db_url();
    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("postgres admin connection");
    sqlx::query(&format!("CREATE DATABASE \"{db_name}\""))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin.rsplit_once('/').expect("database url has a path").0;

    let mut settings = Settings::default();
    settings.http.port = 0;
    settings.redis.url = Secret::new(opts.redis_url.clone());
    settings.redis.prefix = format!("vqt{}", &id[..12]);
    settings.database.url = Secret::new(format!("{base}/{db_name}"));
    settings.database.max_connections = 10;
    settings.auth.jwt_secret = Some(Secret::new(format!("test-secret-{id}")));
    settings.ws.resync_ms = opts.resync_ms;
    // Tests watch every step of a position; production spaces pushes out.
    settings.ws.position_interval_ms = 0;
    settings.worker.block_ms = 50;
    // Every test client is 127.0.0.1: crowds would hit the per-address cap.
    settings.http.max_connections_per_ip = 0;
    settings.worker.claim_every_ms = 100;
    settings.auth.pii_key = Some(random_key());
    settings.auth.email_hash_key = Some(random_key());
    if let Some(f) = opts.configure {
        f(&mut settings);
    }

    let (trigger, stop) = shutdown::channel();
    let opts = vitaqueue::Opts {
        roles: Roles::API,
        clock: opts.clock.clone(),
        shutdown: stop,
    };
    let clock = opts.clock.clone();
    let app = App::build(settings.clone(), opts).await.expect("build app");
    let port = app.port().expect("api role");
    let state = app.api_state().expect("api role");
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        addr: format!("http://127.0.0.1:{port}"),
        port,
        db: state.db.clone(),
        redis: state.redis.clone(),
        keys: state.keys.clone(),
        clock,
        jwt: JwtKeys::new(settings.auth.jwt_secret.as_ref().unwrap()),
        settings,
        state,
        http: reqwest::Client::new(),
        trigger,
        server: Some(server),
        db_name,
    }
}

/// A fresh random 256-bit key, base64 (tests never use a fixed key).
pub fn random_key() -> Secret {
    use base64::Engine;
    let key: [u8; 32] = rand::random();
    Secret::new(base64::engine::general_purpose::STANDARD.encode(key))
}

pub struct Shopper {
    pub user: UserId,
    pub token: String,
}

impl TestApp {
    /// Fires the shutdown (server, admission controllers and workers of this app).
    pub fn shutdown(&self) {
        self.trigger.fire();
    }

    /// Stops the server and drops the test's database and Redis keys.
    pub async fn cleanup(mut self) {
        self.trigger.fire();
        if let Some(s) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), s).await;
        }
        self.db.close().await;
        if let Ok(mut c) = PgConnection::connect(&admin_db_url()).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.db_name
            ))
            .execute(&mut c)
            .await;
        }
        delete_prefix(&mut self.redis, self.keys.prefix()).await;
    }
}

pub async fn delete_prefix(conn: &mut RedisConn, prefix: &str) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(conn)
        .await
        .unwrap_or_default();
    for chunk in keys.chunks(500) {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(chunk).query_async(conn).await;
    }
}

/// Switches the per-account join and purchase limits off, for tests that hammer the
/// endpoints with one account on purpose (property tests); the limits have tests of their own.
pub fn unlimited_accounts(s: &mut Settings) {
    let off = vq_core::config::Limit {
        per_minute: 0,
        burst: 0,
    };
    s.limits.join_account = off;
    s.limits.purchase_account = off;
}
