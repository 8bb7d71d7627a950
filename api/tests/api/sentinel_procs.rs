//! A Redis primary, one replica and three Sentinels on free loopback ports, each with its
//! own temp directory, all SIGKILLed on drop: the smallest setup in which a primary can
//! die and be replaced without anyone restarting anything.

use crate::procs::{free_port, temp_dir, wait_redis, Proc};
use crate::redis_procs::redis_server;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const MASTER: &str = "vqmaster";

pub struct RedisHa {
    pub primary_url: String,
    pub replica_port: u16,
    pub sentinel_urls: Vec<String>,
    primary: Proc,
    replica: Proc,
    sentinels: Vec<Proc>,
    dirs: Vec<PathBuf>,
}

async fn query<T: redis::FromRedisValue>(url: &str, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let c = redis::Client::open(url)?;
    let mut conn = c.get_multiplexed_async_connection().await?;
    cmd.query_async(&mut conn).await
}

async fn info_has(url: &str, section: &str, needle: &str) -> bool {
    let mut cmd = redis::cmd("INFO");
    cmd.arg(section);
    query::<String>(url, &cmd)
        .await
        .is_ok_and(|s| s.contains(needle))
}

async fn until(what: &str, within: Duration, mut ok: impl AsyncFnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if ok().await {
            return t0.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within {within:?}");
}

impl RedisHa {
    /// Starts the primary and the replica (waiting for the replica's link to be up) and
    /// the Sentinels (waiting until they know each other, so they can vote a failover).
    pub async fn start() -> RedisHa {
        let mut dirs = Vec::new();
        let (pport, rport) = (free_port(), free_port());
        let node = |port: u16, extra: &[&str], dirs: &mut Vec<PathBuf>| {
            let dir = temp_dir("ha-node");
            let mut args = vec![
                "--repl-diskless-sync",
                "yes",
                "--repl-diskless-sync-delay",
                "0",
            ];
            args.extend_from_slice(extra);
            let p = Proc::spawn("redis-ha", &mut redis_server(port, &dir, &args));
            dirs.push(dir);
            p
        };
        let primary = node(pport, &[], &mut dirs);
        let of = pport.to_string();
        let replica = node(rport, &["--replicaof", "127.0.0.1", &of], &mut dirs);
        let primary_url = format!("redis://127.0.0.1:{pport}");
        let replica_url = format!("redis://127.0.0.1:{rport}");
        wait_redis(&primary_url, Duration::from_secs(10)).await;
        wait_redis(&replica_url, Duration::from_secs(10)).await;
        until("replica sync", Duration::from_secs(10), async || {
            info_has(&replica_url, "replication", "master_link_status:up").await
        })
        .await;
        let mut sentinels = Vec::new();
        let mut sentinel_urls = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let dir = temp_dir("sentinel");
            let conf = dir.join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\n\
                     sentinel monitor {MASTER} 127.0.0.1 {pport} 2\n\
                     sentinel down-after-milliseconds {MASTER} 500\n\
                     sentinel failover-timeout {MASTER} 3000\n\
                     sentinel parallel-syncs {MASTER} 1\n",
                    dir.display()
                ),
            )
            .unwrap();
            // `redis-server --sentinel` is redis-sentinel (Debian ships the latter in a
            // package of its own, which a machine with redis-server may lack).
            let mut cmd = Command::new("redis-server");
            cmd.arg(&conf).arg("--sentinel").stdout(Stdio::null());
            sentinels.push(Proc::spawn("redis-sentinel", &mut cmd));
            dirs.push(dir);
            let url = format!("redis://127.0.0.1:{port}");
            wait_redis(&url, Duration::from_secs(10)).await;
            sentinel_urls.push(url);
        }
        for url in &sentinel_urls {
            until("sentinels meeting", Duration::from_secs(15), async || {
                let mut cmd = redis::cmd("SENTINEL");
                cmd.arg("sentinels").arg(MASTER);
                query::<Vec<redis::Value>>(url, &cmd)
                    .await
                    .is_ok_and(|v| v.len() == 2)
            })
            .await;
        }
        RedisHa {
            primary_url,
            replica_port: rport,
            sentinel_urls,
            primary,
            replica,
            sentinels,
            dirs,
        }
    }

    /// The app's settings for this setup: the primary through the Sentinels, and
    /// otherwise the defaults as shipped (`wait_replicas = "auto"`: one replica behind
    /// every acknowledged purchase and admission, since the primary has one).
    pub fn configure(&self) -> impl FnOnce(&mut vq_core::Settings) + Send {
        let sentinels = self.sentinel_urls.clone();
        move |s| {
            s.redis.sentinels = sentinels;
            s.redis.master_name = Some(MASTER.into());
        }
    }

    /// The same settings as `VQ_*` variables for role processes.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("VQ_REDIS__SENTINELS", self.sentinel_urls.join(",")),
            ("VQ_REDIS__MASTER_NAME", MASTER.into()),
        ]
    }

    /// `SENTINEL FAILOVER`: the replica is promoted and the old primary demoted to its
    /// replica, while both keep running.
    pub async fn manual_failover(&self) {
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("failover").arg(MASTER);
        query::<String>(&self.sentinel_urls[0], &cmd)
            .await
            .expect("SENTINEL FAILOVER accepted");
    }

    pub fn kill_primary(&mut self) {
        self.primary.kill9();
    }

    /// Waits until every Sentinel names the replica as primary and it says so itself;
    /// returns how long that took.
    pub async fn wait_promoted(&self, within: Duration) -> Duration {
        let replica_url = format!("redis://127.0.0.1:{}", self.replica_port);
        until("failover", within, async || {
            let mut named = 0;
            for url in &self.sentinel_urls {
                let mut cmd = redis::cmd("SENTINEL");
                cmd.arg("get-master-addr-by-name").arg(MASTER);
                if let Ok((_, port)) = query::<(String, u16)>(url, &cmd).await {
                    named += usize::from(port == self.replica_port);
                }
            }
            named == self.sentinel_urls.len()
                && info_has(&replica_url, "replication", "role:master").await
        })
        .await
    }
}

impl Drop for RedisHa {
    fn drop(&mut self) {
        self.primary.kill9();
        self.replica.kill9();
        for s in &mut self.sentinels {
            s.kill9();
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
