//! The primary as the Sentinels see it. One `ConnectionManager` to the current primary
//! serves every command; a connection error or a READONLY reply (the node was demoted)
//! makes the next caller ask the Sentinels again and swap in a connection to the new
//! primary, so a failover needs no restart. Commands that never ran (READONLY, connection
//! refused) are sent again once to the new primary; any other failure is returned, since
//! a script may have run before the connection broke.

use crate::config::Redis as RedisCfg;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{
    Client, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, Pipeline,
    RedisError, RedisResult, Value,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Bounds every Sentinel query and every connect, so a dead node costs little.
const STEP: Duration = Duration::from_millis(500);
/// Callers failing together trigger one lookup, not one each.
const MIN_GAP: Duration = Duration::from_millis(100);

type Addr = (String, u16);

pub struct Sentinel {
    sentinels: Vec<Client>,
    master: String,
    /// Credentials and database number for the data nodes (from `redis.url`).
    node: ConnectionInfo,
    current: RwLock<(ConnectionManager, Addr)>,
    generation: AtomicU64,
    last_lookup: tokio::sync::Mutex<Instant>,
}

impl Sentinel {
    pub async fn connect(cfg: &RedisCfg) -> RedisResult<Sentinel> {
        let master = cfg.master_name.clone().ok_or_else(|| {
            RedisError::from((
                ErrorKind::InvalidClientConfig,
                "redis.sentinels is set but redis.master_name is not",
            ))
        })?;
        let sentinels = cfg
            .sentinels
            .iter()
            .map(|u| Client::open(u.as_str()))
            .collect::<RedisResult<Vec<_>>>()?;
        let node = cfg.urls().first().copied().unwrap_or("redis://127.0.0.1");
        Self::start(sentinels, master, node.into_connection_info()?).await
    }

    async fn start(
        sentinels: Vec<Client>,
        master: String,
        node: ConnectionInfo,
    ) -> RedisResult<Self> {
        let current = primary(&sentinels, &master, &node).await?;
        Ok(Sentinel {
            sentinels,
            master,
            node,
            current: RwLock::new(current),
            generation: AtomicU64::new(0),
            last_lookup: tokio::sync::Mutex::new(Instant::now()),
        })
    }

    /// Another connection to the same primary, following failovers on its own.
    pub async fn twin(&self) -> RedisResult<Sentinel> {
        Self::start(
            self.sentinels.clone(),
            self.master.clone(),
            self.node.clone(),
        )
        .await
    }

    pub fn db(&self) -> i64 {
        self.node.redis.db
    }

    fn current(&self) -> (u64, ConnectionManager) {
        let c = self.current.read().expect("lock").0.clone();
        (self.generation.load(Ordering::Acquire), c)
    }

    pub async fn command(&self, cmd: &Cmd) -> RedisResult<Value> {
        let (seen, mut c) = self.current();
        match c.req_packed_command(cmd).await {
            Err(e) if self.moved_on(&e, seen).await => {
                self.current().1.req_packed_command(cmd).await
            }
            r => r,
        }
    }

    pub async fn pipeline(
        &self,
        p: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let (seen, mut c) = self.current();
        match c.req_packed_commands(p, offset, count).await {
            Err(e) if self.moved_on(&e, seen).await => {
                self.current().1.req_packed_commands(p, offset, count).await
            }
            r => r,
        }
    }

    /// After a failure that may mean a failover, looks the primary up again. True when
    /// the command never ran and a new primary is in place, so sending it again is safe.
    async fn moved_on(&self, e: &RedisError, seen: u64) -> bool {
        let never_ran = e.kind() == ErrorKind::ReadOnly || e.is_connection_refusal();
        if !never_ran && !e.is_io_error() && !e.is_connection_dropped() && !e.is_timeout() {
            return false;
        }
        let mut last = self.last_lookup.lock().await;
        if self.generation.load(Ordering::Acquire) != seen {
            return never_ran;
        }
        if last.elapsed() < MIN_GAP {
            return false;
        }
        *last = Instant::now();
        match primary(&self.sentinels, &self.master, &self.node).await {
            Ok((conn, addr)) => {
                self.swap(conn, addr);
                never_ran
            }
            Err(err) => {
                tracing::warn!(error = %err, "no primary reachable through the Sentinels yet");
                false
            }
        }
    }
}

impl Sentinel {
    /// Asks the Sentinels whether the primary moved although nothing failed: a WAIT came
    /// back short, and the node may have been replaced while it still takes writes (a
    /// running old primary keeps doing so for seconds after its replica was promoted,
    /// until Sentinel demotes it). Swaps only when they name another node.
    pub async fn recheck(&self) {
        let mut last = self.last_lookup.lock().await;
        if last.elapsed() < MIN_GAP {
            return;
        }
        *last = Instant::now();
        let here = self.current.read().expect("lock").1.clone();
        for s in &self.sentinels {
            let Some(named) = master_addr(s, &self.master).await else {
                continue;
            };
            if named != here {
                match connect_primary(&self.node, named.0.clone(), named.1).await {
                    Ok(conn) => self.swap(conn, named),
                    Err(e) => {
                        tracing::warn!(error = %e, "the primary the Sentinels name is not reachable yet")
                    }
                }
            }
            return;
        }
    }

    fn swap(&self, conn: ConnectionManager, addr: Addr) {
        tracing::info!(master = %self.master, host = %addr.0, port = addr.1, "Redis primary looked up again through the Sentinels");
        *self.current.write().expect("lock") = (conn, addr);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// The first address a Sentinel names whose server says it is the primary (during a
/// failover a Sentinel may still name the old one, or the new one may not be promoted yet).
async fn primary(
    sentinels: &[Client],
    master: &str,
    node: &ConnectionInfo,
) -> RedisResult<(ConnectionManager, Addr)> {
    let mut last: RedisError = (ErrorKind::IoError, "no Sentinel answered").into();
    for s in sentinels {
        let Some((host, port)) = master_addr(s, master).await else {
            continue;
        };
        match connect_primary(node, host.clone(), port).await {
            Ok(c) => return Ok((c, (host, port))),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn master_addr(s: &Client, master: &str) -> Option<(String, u16)> {
    let mut c = tokio::time::timeout(STEP, s.get_multiplexed_async_connection())
        .await
        .ok()?
        .ok()?;
    let mut cmd = redis::cmd("SENTINEL");
    cmd.arg("get-master-addr-by-name").arg(master);
    let q = cmd.query_async::<Option<(String, u16)>>(&mut c);
    tokio::time::timeout(STEP, q).await.ok()?.ok()?
}

async fn connect_primary(
    node: &ConnectionInfo,
    host: String,
    port: u16,
) -> RedisResult<ConnectionManager> {
    let cfg = ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_factor(50)
        .set_max_delay(500)
        .set_connection_timeout(STEP);
    let client = Client::open(at(node, host, port))?;
    let mut c = ConnectionManager::new_with_config(client, cfg).await?;
    let role: Vec<Value> = tokio::time::timeout(STEP, redis::cmd("ROLE").query_async(&mut c))
        .await
        .map_err(|_| RedisError::from((ErrorKind::IoError, "ROLE timed out")))??;
    match role.first() {
        Some(Value::BulkString(r)) if r == b"master" => Ok(c),
        _ => Err((
            ErrorKind::ReadOnly,
            "the node the Sentinels name is not primary yet",
        )
            .into()),
    }
}

fn at(node: &ConnectionInfo, host: String, port: u16) -> ConnectionInfo {
    ConnectionInfo {
        addr: ConnectionAddr::Tcp(host, port),
        redis: node.redis.clone(),
    }
}

/// The replicas and then the primary the first answering Sentinel knows, as clients for
/// pub/sub, where any node hears every PUBLISH. Replicas come first: a room hears of an
/// admission only once a replica has it, so a buyer is never shown a token that a
/// failover right after could lose. `None` when no Sentinel answers.
pub fn known_nodes(cfg: &RedisCfg) -> Option<Vec<Client>> {
    let node = cfg.urls().first()?.into_connection_info().ok()?;
    let master = cfg.master_name.as_deref()?;
    for url in &cfg.sentinels {
        let Ok(client) = Client::open(url.as_str()) else {
            continue;
        };
        let Ok(mut c) = client.get_connection_with_timeout(STEP) else {
            continue;
        };
        let _ = c.set_read_timeout(Some(STEP));
        let head: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(master)
            .query(&mut c)
            .ok()
            .flatten();
        let Some(head) = head else { continue };
        let replicas: Vec<HashMap<String, String>> = redis::cmd("SENTINEL")
            .arg("replicas")
            .arg(master)
            .query(&mut c)
            .unwrap_or_default();
        let rest = replicas
            .into_iter()
            .filter_map(|r| Some((r.get("ip")?.clone(), r.get("port")?.parse().ok()?)));
        let nodes = rest
            .chain(std::iter::once(head))
            .filter_map(|(h, p)| Client::open(at(&node, h, p)).ok())
            .collect();
        return Some(nodes);
    }
    None
}
