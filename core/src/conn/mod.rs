//! The Redis connection every role uses: one cloneable handle that is a single server
//! (reconnecting `ConnectionManager`), a Redis Cluster (`ClusterConnection`, which routes
//! each command by its key's slot), or a primary found through Sentinels (a
//! `ConnectionManager` swapped for a new one when a failover moved the primary). It
//! implements `ConnectionLike`, so commands, pipelines and `Script` invocations work
//! unchanged on all three; since every key of a drop shares the hash tag `{drop:ID}`, each
//! script and each per-drop pipeline hits one slot.

mod durable;
pub use durable::Durable;
mod sentinel;

use crate::config::Redis as RedisCfg;
use durable::Durability;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use sentinel::Sentinel;
use std::sync::Arc;

#[derive(Clone)]
pub struct RedisConn {
    link: Link,
    durability: Arc<Durability>,
}

#[derive(Clone)]
enum Link {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(Arc<Sentinel>),
}

impl RedisConn {
    /// Connects as configured: `redis.sentinels` asks the Sentinels for the primary,
    /// `redis.cluster = true` treats `redis.url` as a comma-separated list of seed nodes,
    /// otherwise it is one server's URL.
    pub async fn connect(cfg: &RedisCfg) -> redis::RedisResult<RedisConn> {
        let link = if cfg.uses_sentinels() {
            Link::Sentinel(Arc::new(Sentinel::connect(cfg).await?))
        } else if cfg.cluster {
            let client = redis::cluster::ClusterClient::new(cfg.urls())?;
            Link::Cluster(client.get_async_connection().await?)
        } else {
            Link::Single(single(cfg.url.expose()).await?)
        };
        let conn = RedisConn {
            link,
            durability: Arc::new(Durability::new(cfg)),
        };
        // At start: what to wait for, and a warning when nothing survives a failover.
        conn.check_durability().await;
        Ok(conn)
    }

    /// A reconnecting connection to one server.
    pub async fn single(url: &str) -> redis::RedisResult<RedisConn> {
        Ok(RedisConn {
            link: Link::Single(single(url).await?),
            durability: Arc::new(Durability::off()),
        })
    }

    /// A second connection of the same kind, for commands that block their connection
    /// (the worker's `XREADGROUP … BLOCK`). `url` serves the single-server case; a
    /// cluster connection does not block and is shared.
    pub async fn separate(&self, url: &str) -> redis::RedisResult<RedisConn> {
        let link = match &self.link {
            Link::Single(_) => Link::Single(single(url).await?),
            Link::Cluster(_) => return Ok(self.clone()),
            Link::Sentinel(s) => Link::Sentinel(Arc::new(s.twin().await?)),
        };
        Ok(RedisConn {
            link,
            durability: self.durability.clone(),
        })
    }

    /// Behind Sentinels: checks whether the primary moved (see `Sentinel::recheck`).
    async fn recheck_primary(&self) {
        if let Link::Sentinel(s) = &self.link {
            s.recheck().await;
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self.link, Link::Cluster(_))
    }
}

async fn single(url: &str) -> redis::RedisResult<ConnectionManager> {
    ConnectionManager::new(redis::Client::open(url)?).await
}

/// Clients for pub/sub. On a cluster a classic PUBLISH reaches every node, and behind
/// Sentinels every PUBLISH is replicated, so subscribing on any one node hears every
/// drop; the others are fall-backs when that node is unreachable (the primary after a
/// failover). Behind Sentinels the nodes are the replicas and the primary they know now.
pub fn pubsub_clients(cfg: &RedisCfg) -> redis::RedisResult<Vec<redis::Client>> {
    if cfg.uses_sentinels() {
        if let Some(nodes) = sentinel::known_nodes(cfg) {
            return Ok(nodes);
        }
    }
    cfg.urls().into_iter().map(redis::Client::open).collect()
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.link {
            Link::Single(c) => c.req_packed_command(cmd),
            Link::Cluster(c) => c.req_packed_command(cmd),
            Link::Sentinel(s) => Box::pin(s.command(cmd)),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.link {
            Link::Single(c) => c.req_packed_commands(cmd, offset, count),
            Link::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Link::Sentinel(s) => Box::pin(s.pipeline(cmd, offset, count)),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.link {
            Link::Single(c) => c.get_db(),
            Link::Cluster(c) => c.get_db(),
            Link::Sentinel(s) => s.db(),
        }
    }
}
