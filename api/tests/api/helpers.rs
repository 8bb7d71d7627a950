//! `spawn_app()`: a real api server on a free port, a fresh PostgreSQL database and a
//! unique Redis key prefix per test, plus handles to run admission controllers and
//! workers as tasks (so a test can abort one mid-batch).

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use vq_api::Application;
use vq_core::auth::{JwtKeys, Role};
use vq_core::config::Secret;
use vq_core::domain::{DropId, UserId};
use vq_core::shutdown::{self, Trigger};
use vq_core::{Clock, Keys, RedisConn, Scripts, Settings};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

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
    settings.worker.claim_every_ms = 100;
    settings.auth.pii_key = Some(random_key());
    settings.auth.email_hash_key = Some(random_key());
    if let Some(f) = opts.configure {
        f(&mut settings);
    }

    let (trigger, stop) = shutdown::channel();
    let app = Application::build(&settings, opts.clock.clone(), stop)
        .await
        .expect("build app");
    let port = app.port();
    let state = app.state().clone();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        addr: format!("http://127.0.0.1:{port}"),
        port,
        db: state.db.clone(),
        redis: state.redis.clone(),
        keys: state.keys.clone(),
        clock: opts.clock,
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
    pub fn manager(&self) -> String {
        self.jwt
            .issue(UserId(uuid::Uuid::new_v4()), Role::Manager, 3600)
    }

    pub fn shopper(&self) -> Shopper {
        let user = UserId(uuid::Uuid::new_v4());
        Shopper {
            user,
            token: self.jwt.issue(user, Role::Shopper, 3600),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    /// Sends a request and returns (status, JSON body or Null).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method.parse().unwrap(), self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A drop live since a minute ago with the given overrides.
    pub async fn create_drop(&self, overrides: Value) -> DropId {
        let mut spec = json!({
            "product_name": "Test Sneaker",
            "price_cents": 12900,
            "stock": 10,
            "starts_at": "2020-01-01T00:00:00Z",
            "per_user_limit": 1,
            "admission_rate": 1000,
            "max_holders": 1000,
            "token_ttl_s": 60,
            "prequeue_s": 0,
        });
        for (k, v) in overrides.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let (status, body) = self
            .call("POST", "/v1/admin/drops", Some(&self.manager()), Some(spec))
            .await;
        assert_eq!(status, 201, "create drop: {body}");
        DropId::new(body["id"].as_i64().unwrap()).unwrap()
    }

    pub fn admitter(&self) -> vq_admission::Admitter {
        vq_admission::Admitter::new(
            self.redis.clone(),
            Arc::new(Scripts::default()),
            self.keys.clone(),
            self.clock.clone(),
            self.settings.admission.max_batch,
        )
    }

    /// An admission controller with its own Redis connection, as a separate process has.
    pub async fn own_admitter(&self) -> vq_admission::Admitter {
        let conn = vq_core::store::redis(&self.settings).await.expect("redis");
        vq_admission::Admitter::new(
            conn,
            Arc::new(Scripts::default()),
            self.keys.clone(),
            self.clock.clone(),
            self.settings.admission.max_batch,
        )
    }

    /// Runs an admission controller as a task until shutdown (or abort).
    pub fn start_admission(&self, tick_ms: u64) -> JoinHandle<()> {
        let a = self.admitter();
        tokio::spawn(a.run(Duration::from_millis(tick_ms), self.trigger.subscribe()))
    }

    pub async fn worker(
        &self,
        consumer: &str,
        claim_idle_ms: u64,
        batch: usize,
    ) -> vq_worker::Worker {
        let mut cfg = self.settings.worker.clone();
        cfg.consumer = consumer.into();
        cfg.claim_idle_ms = claim_idle_ms;
        cfg.batch_size = batch;
        vq_worker::Worker::new(
            &redis_url_of(&self.settings),
            self.redis.clone(),
            self.db.clone(),
            self.keys.clone(),
            cfg,
        )
        .await
        .expect("worker")
    }

    pub fn run_worker(&self, w: vq_worker::Worker) -> JoinHandle<()> {
        tokio::spawn(w.run(self.trigger.subscribe()))
    }

    /// Joins over HTTP and returns the response body.
    pub async fn join(&self, drop: DropId, s: &Shopper) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/v1/drops/{drop}/queue"),
            Some(&s.token),
            None,
        )
        .await
    }

    pub async fn purchase(&self, drop: DropId, s: &Shopper, token: &str, qty: i64) -> (u16, Value) {
        let body = json!({ "token": token, "quantity": qty });
        self.call(
            "POST",
            &format!("/v1/drops/{drop}/purchase"),
            Some(&s.token),
            Some(body),
        )
        .await
    }

    pub async fn ws(&self, drop: DropId, s: &Shopper) -> Ws {
        let url = format!(
            "ws://127.0.0.1:{}/v1/drops/{drop}/room?access_token={}",
            self.port, s.token
        );
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        ws
    }

    pub async fn orders(&self, drop: DropId) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE drop_id = $1")
            .bind(drop.get())
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// Waits until PostgreSQL holds `n` orders for the drop (or panics after 15 s).
    pub async fn wait_orders(&self, drop: DropId, n: i64) {
        for _ in 0..300 {
            if self.orders(drop).await >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} orders, found {}", self.orders(drop).await);
    }

    /// An order scheduler on the app's clock with the given payment simulation.
    pub fn scheduler(&self, payment: vq_core::config::Payment) -> vq_worker::scheduler::Scheduler {
        vq_worker::scheduler::Scheduler {
            db: self.db.clone(),
            redis: self.redis.clone(),
            scripts: Arc::new(Scripts::default()),
            keys: self.keys.clone(),
            clock: self.clock.clone(),
            orders: self.settings.orders.clone(),
            provider: Arc::new(vq_worker::payment::SimulatedProvider::from_config(&payment)),
            payment,
            mailer: self.state.accounts.clone().map(|accounts| {
                Arc::new(vq_api::accounts::NotifyByMail {
                    accounts,
                    db: self.db.clone(),
                }) as Arc<dyn vq_worker::notify::NotifyMailer>
            }),
        }
    }

    /// The account's place in the drop's waiting room (`GET /v1/drops/{id}/queue`).
    pub async fn place(&self, drop: DropId, s: &Shopper) -> (u16, Value) {
        self.call(
            "GET",
            &format!("/v1/drops/{drop}/queue"),
            Some(&s.token),
            None,
        )
        .await
    }

    /// The purchase token of an account that has been admitted.
    pub async fn admitted_token(&self, drop: DropId, s: &Shopper) -> String {
        let (st, b) = self.place(drop, s).await;
        assert_eq!((st, b["status"].as_str()), (200, Some("admitted")), "{b}");
        b["token"].as_str().unwrap().to_string()
    }

    /// Joins, gets admitted and buys `qty`; returns the purchase token. Needs a drop whose
    /// holder cap and rate leave room for this buyer.
    pub async fn buy(&self, drop: DropId, s: &Shopper, qty: i64) -> String {
        let (st, b) = self.join(drop, s).await;
        assert_eq!(st, 200, "join: {b}");
        self.admitter().tick_drop(drop).await.unwrap();
        let token = self.admitted_token(drop, s).await;
        let (st, b) = self.purchase(drop, s, &token, qty).await;
        assert_eq!(st, 201, "purchase: {b}");
        token
    }

    /// Writes every pending reservation to PostgreSQL (worker passes until none is left).
    pub async fn flush_orders(&self) {
        let mut w = self.worker("flush", 60_000, 1000).await;
        while w.step().await.unwrap() > 0 {}
    }

    pub async fn order_of(&self, s: &Shopper, token: &str) -> i64 {
        sqlx::query_scalar("SELECT id FROM orders WHERE token = $1 AND user_id = $2")
            .bind(token)
            .bind(s.user.0)
            .fetch_one(&self.db)
            .await
            .expect("order written")
    }

    pub async fn remaining(&self, drop: DropId) -> i64 {
        redis::AsyncCommands::get(&mut self.redis.clone(), self.keys.drop(drop).stock())
            .await
            .unwrap()
    }

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

fn redis_url_of(s: &Settings) -> String {
    s.redis.url.expose().to_string()
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

/// Next JSON text message (skipping pings), or None on close/timeout.
pub async fn next_json(ws: &mut Ws, timeout_ms: u64) -> Option<Value> {
    loop {
        let m = tokio::time::timeout(Duration::from_millis(timeout_ms), ws.next())
            .await
            .ok()??;
        match m.ok()? {
            Message::Text(t) => return serde_json::from_str(t.as_str()).ok(),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

/// Next message of the given type, skipping others.
pub async fn next_of(ws: &mut Ws, kind: &str, timeout_ms: u64) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let m = next_json(ws, left.as_millis() as u64).await?;
        if m["type"] == kind {
            return Some(m);
        }
    }
}

/// Waits for the close frame and returns its code.
pub async fn close_code(ws: &mut Ws, timeout_ms: u64) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await.ok()?? {
            Ok(Message::Close(Some(f))) => return Some(f.code.into()),
            Ok(Message::Close(None)) => return Some(1005),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.to_string().into()))
        .await
        .expect("ws send");
}

/// A private redis-server on a free loopback port, killed on drop.
pub struct PrivateRedis {
    pub url: String,
    child: std::process::Child,
}

impl PrivateRedis {
    pub async fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        // Owned from here on, so the process is killed and reaped on every path.
        let me = PrivateRedis {
            url: format!("redis://127.0.0.1:{port}"),
            child,
        };
        for _ in 0..100 {
            if let Ok(c) = redis::Client::open(me.url.as_str()) {
                if let Ok(mut conn) = c.get_multiplexed_async_connection().await {
                    if redis::cmd("PING")
                        .query_async::<String>(&mut conn)
                        .await
                        .is_ok()
                    {
                        return me;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("private redis-server did not start");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
