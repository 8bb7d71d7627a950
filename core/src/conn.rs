//! The Redis connection every role uses: one cloneable handle that is either a single
//! server (reconnecting `ConnectionManager`) or a Redis Cluster (`ClusterConnection`, which
//! routes each command by its key's slot). It implements `ConnectionLike`, so commands,
//! pipelines and `Script` invocations work unchanged on both; since every key of a drop
//! shares the hash tag `{drop:ID}`, each script and each per-drop pipeline hits one slot.

use crate::config::Redis as RedisCfg;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConn {
    /// Connects as configured: `redis.cluster = true` treats `redis.url` as a
    /// comma-separated list of seed nodes, otherwise it is one server's URL.
    pub async fn connect(cfg: &RedisCfg) -> redis::RedisResult<RedisConn> {
        if cfg.cluster {
            let client = redis::cluster::ClusterClient::new(cfg.urls())?;
            Ok(RedisConn::Cluster(client.get_async_connection().await?))
        } else {
            Self::single(cfg.url.expose()).await
        }
    }

    /// A reconnecting connection to one server.
    pub async fn single(url: &str) -> redis::RedisResult<RedisConn> {
        let client = redis::Client::open(url)?;
        Ok(RedisConn::Single(ConnectionManager::new(client).await?))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisConn::Cluster(_))
    }
}

/// Clients for pub/sub, one per configured node. On a cluster a classic PUBLISH reaches
/// every node, so subscribing on any one of them hears every drop; the others are
/// fall-backs when that node is unreachable.
pub fn pubsub_clients(cfg: &RedisCfg) -> redis::RedisResult<Vec<redis::Client>> {
    cfg.urls().into_iter().map(redis::Client::open).collect()
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(cmd, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}
