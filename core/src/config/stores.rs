//! Where the data lives: Redis (one server, a cluster, or a primary found through
//! Sentinels) and PostgreSQL.

use super::{duration, Secret};
use serde::Deserialize;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Redis {
    /// One server's URL, or with `cluster` a comma-separated list of seed nodes.
    pub url: Secret,
    /// Namespace of every key; tests use a unique one.
    pub prefix: String,
    /// Talk to a Redis Cluster (keys routed by slot) instead of one server.
    pub cluster: bool,
    /// Sentinel URLs (`redis://host:26379`). When set, with `master_name`, the primary is
    /// found through them and found again after a connection error or a READONLY reply,
    /// so every role follows a failover; `url` then only supplies credentials and the
    /// database number.
    #[serde(deserialize_with = "duration::list_or_commas")]
    pub sentinels: Vec<String>,
    /// The name the Sentinels monitor the primary under.
    pub master_name: Option<String>,
    /// Replicas that must have a purchase or an admission before it is acknowledged
    /// (`WAIT`): `"auto"` (the default) waits for one whenever the primary has one
    /// (`INFO replication`, re-read every second), a number waits for that many, 0 turns
    /// the wait off. See
    /// docs/durability.md, section "Waiting for a replica (the default)".
    #[serde(deserialize_with = "wait_replicas")]
    pub wait_replicas: WaitReplicas,
    /// What a purchase answers when the replicas did not confirm it: `acknowledge` (the
    /// default) answers 201 from the primary alone and counts it, `strict` answers 503
    /// and reserves nothing. See docs/durability.md.
    pub durability: DurabilityMode,
    /// Longest wait for those replicas; a bare number is milliseconds.
    #[serde(deserialize_with = "duration::millis_or_unit")]
    pub wait_timeout: Duration,
    /// Rebuild a drop whose Redis state is lost from PostgreSQL without an operator (one api
    /// node at a time, under a Redis lock). Off by default: a rebuild drops waiting-room places.
    pub auto_rebuild: bool,
    /// How often each api node compares the open drops in PostgreSQL with Redis.
    pub lost_check_ms: u64,
    /// How often the manager console's history samples each open drop (one node per
    /// interval fleet-wide, under a `SET NX` gate); 0 turns sampling off.
    pub history_ms: u64,
}

impl Redis {
    /// Whether the primary is found through Sentinels.
    pub fn uses_sentinels(&self) -> bool {
        !self.sentinels.is_empty()
    }

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

/// `redis.wait_replicas`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitReplicas {
    /// One replica whenever the primary reports at least one connected, else none.
    Auto,
    /// Exactly this many (0: no wait).
    Exactly(u32),
}

/// `redis.durability`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityMode {
    /// A short WAIT still answers 201 (the unit is reserved on the primary), counted.
    Acknowledge,
    /// Nothing is acknowledged that no replica confirmed: 503 and nothing reserved.
    Strict,
}

/// `"auto"`, a number, or a number as text (`VQ_REDIS__WAIT_REPLICAS=1`).
fn wait_replicas<'de, D: serde::Deserializer<'de>>(d: D) -> Result<WaitReplicas, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Count(u32),
        Text(String),
    }
    let bad = |t: &str| {
        serde::de::Error::custom(format!(
            "redis.wait_replicas `{t}`: use \"auto\" or a number of replicas (0 = off)"
        ))
    };
    match Raw::deserialize(d)? {
        Raw::Count(n) => Ok(WaitReplicas::Exactly(n)),
        Raw::Text(t) if t.trim().eq_ignore_ascii_case("auto") => Ok(WaitReplicas::Auto),
        Raw::Text(t) => t
            .trim()
            .parse()
            .map(WaitReplicas::Exactly)
            .map_err(|_| bad(&t)),
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Database {
    pub url: Secret,
    pub max_connections: u32,
}

impl Default for Redis {
    fn default() -> Self {
        Redis {
            url: Secret::new("redis://127.0.0.1:6379"),
            prefix: "vq".into(),
            cluster: false,
            sentinels: Vec::new(),
            master_name: None,
            wait_replicas: WaitReplicas::Auto,
            durability: DurabilityMode::Acknowledge,
            wait_timeout: Duration::from_millis(100),
            auto_rebuild: false,
            lost_check_ms: 5000,
            history_ms: 1000,
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
