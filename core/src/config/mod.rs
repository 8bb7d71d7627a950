//! One layered configuration: built-in defaults, then an optional TOML file, then
//! `VQ_`-prefixed environment variables (`VQ_HTTP__PORT=8080`, `VQ_AUTH__JWT_SECRET=…`).

use serde::Deserialize;
use std::fmt;

mod auth;
mod duration;
mod limits;
mod orders;
mod pow;
mod proxies;
mod roles;
pub mod secrets;
mod stores;
mod webhooks;

pub use auth::{Auth, Smtp};
pub use limits::{Limit, Limits};
pub use orders::{Orders, Payment};
pub use pow::Pow;
pub use proxies::{Cidr, TrustedProxies};
pub use roles::{Admission, Http, Metrics, Worker, Ws};
pub use stores::{Database, DurabilityMode, Redis, WaitReplicas};
pub use webhooks::Webhooks;

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
    pub pow: Pow,
    pub webhooks: Webhooks,
    pub log_json: bool,
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

    #[test]
    fn wait_replicas_reads_auto_numbers_and_text_and_refuses_the_rest() {
        let parse = |v: &str| -> Result<Redis, String> {
            let text = format!("[redis]\n{v}\n");
            let c = config::Config::builder()
                .add_source(config::File::from_str(&text, config::FileFormat::Toml))
                .build()
                .map_err(|e| e.to_string())?;
            c.get::<Redis>("redis").map_err(|e| e.to_string())
        };
        let auto = parse("wait_replicas = \"auto\"").unwrap();
        assert_eq!(auto.wait_replicas, WaitReplicas::Auto);
        assert_eq!(
            parse("wait_replicas = 2").unwrap().wait_replicas,
            WaitReplicas::Exactly(2)
        );
        assert_eq!(
            parse("wait_replicas = \"0\"").unwrap().wait_replicas,
            WaitReplicas::Exactly(0)
        );
        assert!(parse("wait_replicas = \"some\"")
            .unwrap_err()
            .contains("auto"));
        let strict = parse("durability = \"strict\"").unwrap();
        assert_eq!(strict.durability, DurabilityMode::Strict);
        assert!(parse("durability = \"maybe\"").is_err());
    }

    #[test]
    fn sentinel_and_wait_settings_read_from_a_file() {
        let dir = std::env::temp_dir().join(format!("vqcfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vq.toml");
        std::fs::write(
            &path,
            "[redis]\nsentinels = \"redis://a:26379, redis://b:26379\"\nmaster_name = \"m\"\nwait_replicas = 1\nwait_timeout = \"2s\"\n",
        )
        .unwrap();
        let s = Settings::load(Some(path.to_str().unwrap())).unwrap();
        assert_eq!(
            s.redis.sentinels,
            vec!["redis://a:26379", "redis://b:26379"]
        );
        assert_eq!(s.redis.master_name.as_deref(), Some("m"));
        assert_eq!(s.redis.wait_replicas, WaitReplicas::Exactly(1));
        assert_eq!(s.redis.wait_timeout, std::time::Duration::from_secs(2));
        let d = Settings::default().redis;
        assert!(!d.uses_sentinels());
        assert_eq!(d.wait_replicas, WaitReplicas::Auto, "safe by default");
        assert_eq!(d.durability, DurabilityMode::Acknowledge);
    }
}
