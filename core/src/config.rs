//! One layered configuration: built-in defaults, then an optional TOML file, then
//! `VQ_`-prefixed environment variables (`VQ_HTTP__PORT=8080`, `VQ_AUTH__JWT_SECRET=…`).

use serde::Deserialize;
use std::fmt;

mod limits;
pub use limits::{Limit, Limits};

/// A secret string: usable, but never printed by `Debug` or logs.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default)]
pub struct Settings {
    pub http: Http,
    pub redis: Redis,
    pub database: Database,
    pub auth: Auth,
    pub admission: Admission,
    pub worker: Worker,
    pub ws: Ws,
    pub orders: Orders,
    pub payment: Payment,
    pub metrics: Metrics,
    pub smtp: Smtp,
    pub limits: Limits,
    pub log_json: bool,
}

/// Where roles without the HTTP api (admission, worker) serve `/metrics`.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default)]
pub struct Metrics {
    pub listen: Option<String>,
}

/// Order lifecycle timing (seconds). D+1 shipping and D+2 delivery by default.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Orders {
    /// Unpaid reservations expire (and restock) after this long.
    pub payment_ttl_s: u64,
    pub ship_after_s: u64,
    pub deliver_after_s: u64,
    /// A delivered order may be returned within this window.
    pub return_window_s: u64,
    /// A requested return is received (and restocked) after this long.
    pub return_process_s: u64,
    pub scheduler_tick_ms: u64,
}

/// The simulated payment provider, and the simulated buyers that pay (or not) by themselves.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Payment {
    /// Share of charges the provider declines (0..1).
    pub failure_rate: f64,
    pub latency_ms: u64,
    /// When true, the scheduler pays new orders itself, as simulated buyers would.
    pub autopay: bool,
    /// Share of auto-paid orders whose buyer walks away (they expire and restock).
    pub abandon_rate: f64,
}

impl Default for Orders {
    fn default() -> Self {
        Orders {
            payment_ttl_s: 600,
            ship_after_s: 86_400,
            deliver_after_s: 86_400,
            return_window_s: 14 * 86_400,
            return_process_s: 86_400,
            scheduler_tick_ms: 1000,
        }
    }
}

impl Default for Payment {
    fn default() -> Self {
        Payment {
            failure_rate: 0.0,
            latency_ms: 0,
            autopay: false,
            abandon_rate: 0.0,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Http {
    pub host: String,
    /// 0 picks a free port (tests); the bound port is reported by `build()`.
    pub port: u16,
    pub max_body_bytes: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Redis {
    /// One server's URL, or with `cluster` a comma-separated list of seed nodes.
    pub url: Secret,
    /// Namespace of every key; tests use a unique one.
    pub prefix: String,
    /// Talk to a Redis Cluster (keys routed by slot) instead of one server.
    pub cluster: bool,
    /// Rebuild a drop whose Redis state is lost from PostgreSQL without an operator (one api
    /// node at a time, under a Redis lock). Off by default: a rebuild drops waiting-room places.
    pub auto_rebuild: bool,
    /// How often each api node compares the open drops in PostgreSQL with Redis.
    pub lost_check_ms: u64,
}

impl Redis {
    /// The node URLs in `url` (one unless it lists cluster seeds).
    pub fn urls(&self) -> Vec<&str> {
        self.url
            .expose()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect()
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Database {
    pub url: Secret,
    pub max_connections: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Auth {
    /// HS256 key for access tokens. No default: a server without one refuses to start.
    pub jwt_secret: Option<Secret>,
    /// AES-256-GCM key (base64 of 32 bytes) for name, address, phone and e-mail at rest.
    /// No default: without it the account endpoints answer 503 and no account is stored.
    pub pii_key: Option<Secret>,
    /// HMAC-SHA256 key (base64, at least 32 bytes) for the e-mail lookup hash and the
    /// stored verification codes. Required together with `pii_key`.
    pub email_hash_key: Option<Secret>,
    pub access_ttl_s: i64,
    pub refresh_ttl_s: i64,
    /// Lifetime of an e-mailed verification code.
    pub code_ttl_s: i64,
    /// Wrong guesses after which a code is dead.
    pub code_max_tries: u32,
}

/// Outgoing mail (verification codes). `starttls = false` is for a relay on loopback.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub starttls: bool,
    pub timeout_ms: u64,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            jwt_secret: None,
            pii_key: None,
            email_hash_key: None,
            access_ttl_s: 900,
            refresh_ttl_s: 30 * 86_400,
            code_ttl_s: 300,
            code_max_tries: 5,
        }
    }
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            host: "127.0.0.1".into(),
            port: 25,
            from: "VitaQueue <no-reply@vitaqueue.local>".into(),
            username: None,
            password: None,
            starttls: false,
            timeout_ms: 10_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Admission {
    pub tick_ms: u64,
    /// Most buyers one tick may admit for one drop.
    pub max_batch: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Worker {
    /// Consumer name in the stream group; must differ between live workers.
    pub consumer: String,
    pub batch_size: usize,
    pub block_ms: u64,
    /// Pending entries idle this long belong to a dead consumer and are reclaimed.
    pub claim_idle_ms: u64,
    pub claim_every_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Ws {
    pub max_message_bytes: usize,
    /// Exact rank re-read interval per connection (positions are derived in between).
    pub resync_ms: u64,
    /// Shortest time between two position pushes to one socket.
    pub position_interval_ms: u64,
    /// Read buffer per socket. The WebSocket library zero-fills the whole buffer on every
    /// read, so each idle connection keeps all of it resident: its default of 128 KiB
    /// would cost ~2.4 GB at 19k sockets, while client messages are at most
    /// `max_message_bytes` (the buffer grows for a frame that needs more).
    pub read_buffer_bytes: usize,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            host: "127.0.0.1".into(),
            port: 8080,
            max_body_bytes: 16 * 1024,
        }
    }
}

impl Default for Redis {
    fn default() -> Self {
        Redis {
            url: Secret::new("redis://127.0.0.1:6379"),
            prefix: "vq".into(),
            cluster: false,
            auto_rebuild: false,
            lost_check_ms: 5000,
        }
    }
}

impl Default for Database {
    fn default() -> Self {
        Database {
            url: Secret::new("postgres://postgres@127.0.0.1:5432/vitaqueue"),
            max_connections: 16,
        }
    }
}

impl Default for Admission {
    fn default() -> Self {
        Admission {
            tick_ms: 50,
            max_batch: 5000,
        }
    }
}

impl Default for Worker {
    fn default() -> Self {
        Worker {
            consumer: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            batch_size: 500,
            block_ms: 200,
            claim_idle_ms: 5000,
            claim_every_ms: 1000,
        }
    }
}

impl Default for Ws {
    fn default() -> Self {
        Ws {
            max_message_bytes: 4096,
            resync_ms: 5000,
            position_interval_ms: 500,
            read_buffer_bytes: 8192,
        }
    }
}

impl Settings {
    /// Defaults ← `file` (if given and present) ← `VQ_*` environment variables.
    pub fn load(file: Option<&str>) -> anyhow::Result<Settings> {
        let mut b = config::Config::builder();
        if let Some(path) = file {
            b = b.add_source(config::File::with_name(path).required(true));
        }
        b = b.add_source(
            config::Environment::with_prefix("VQ")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true),
        );
        Ok(b.build()?.try_deserialize()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug() {
        let mut s = Settings::default();
        s.auth.jwt_secret = Some(Secret::new("hunter2"));
        s.auth.pii_key = Some(Secret::new("pii-hunter3"));
        s.smtp.password = Some(Secret::new("smtp-hunter4"));
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("hunter"));
        assert!(!dbg.contains("postgres://"));
    }

    #[test]
    fn a_cluster_url_lists_its_seed_nodes() {
        let mut r = Redis::default();
        assert_eq!(r.urls(), vec!["redis://127.0.0.1:6379"]);
        r.url = Secret::new("redis://a:1, redis://b:2,,redis://c:3 ");
        assert_eq!(r.urls(), vec!["redis://a:1", "redis://b:2", "redis://c:3"]);
        assert!(!r.cluster);
    }

    #[test]
    fn file_layer_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("vqcfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vq.toml");
        std::fs::write(
            &path,
            "[http]\nport = 9999\n[admission]\ntick_ms = 7\n[limits.login_ip]\nburst = 2\n[limits.join_account]\nper_minute = 0\nburst = 0\n",
        )
        .unwrap();
        let s = Settings::load(Some(path.to_str().unwrap())).unwrap();
        assert_eq!(s.http.port, 9999);
        assert_eq!(s.admission.tick_ms, 7);
        assert_eq!(s.worker.batch_size, 500);
        // One half of a limit changes alone; the other keeps its default.
        assert_eq!(s.limits.login_ip.burst, 2);
        let d = Limits::default();
        assert_eq!(s.limits.login_ip.per_minute, d.login_ip.per_minute);
        assert_eq!(
            s.limits.join_account,
            Limit {
                per_minute: 0,
                burst: 0
            }
        );
        assert_eq!(s.limits.login_account, Limits::default().login_account);
        assert!(s.auth.pii_key.is_none());
    }
}
