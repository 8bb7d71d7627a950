//! Redis servers of their own for the scale-out and fault tests: a local Redis Cluster,
//! and a private redis-server with an append-only file that can be killed and restarted
//! on the same port and directory. Loopback only, own temp dirs, SIGKILLed on drop.

use crate::procs::{free_port, temp_dir, wait_redis, Proc};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

pub fn redis_server(port: u16, dir: &PathBuf, extra: &[&str]) -> Command {
    let mut c = Command::new("redis-server");
    c.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
        .arg(dir)
        .args(["--save", ""])
        .args(extra)
        .stdout(Stdio::null());
    c
}

/// A private redis-server persisting every write to its AOF before answering
/// (`appendfsync always`), restartable on the same port and directory.
pub struct AofRedis {
    pub port: u16,
    pub url: String,
    dir: PathBuf,
    proc: Proc,
}

impl AofRedis {
    pub async fn start() -> AofRedis {
        let port = free_port();
        let dir = temp_dir("aof");
        let proc = Self::launch(port, &dir);
        let url = format!("redis://127.0.0.1:{port}");
        wait_redis(&url, Duration::from_secs(10)).await;
        AofRedis {
            port,
            url,
            dir,
            proc,
        }
    }

    fn launch(port: u16, dir: &PathBuf) -> Proc {
        let args = ["--appendonly", "yes", "--appendfsync", "always"];
        Proc::spawn("redis-aof", &mut redis_server(port, dir, &args))
    }

    pub fn kill9(&mut self) {
        self.proc.kill9();
    }

    /// Starts again on the same port and directory (replaying the AOF); returns the time
    /// until it answered PING.
    pub async fn restart(&mut self) -> Duration {
        self.proc = Self::launch(self.port, &self.dir);
        wait_redis(&self.url, Duration::from_secs(30)).await
    }
}

impl Drop for AofRedis {
    fn drop(&mut self) {
        self.proc.kill9();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A local Redis Cluster of `n` masters (no replicas) on loopback ports.
pub struct RedisCluster {
    pub urls: Vec<String>,
    nodes: Vec<Proc>,
    dirs: Vec<PathBuf>,
}

impl RedisCluster {
    pub async fn start(n: usize) -> RedisCluster {
        let mut urls = Vec::new();
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        let mut addrs = Vec::new();
        for i in 0..n {
            let (port, bus) = (free_port(), free_port());
            let dir = temp_dir("cluster");
            let args = [
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus.to_string(),
                "--cluster-config-file",
                "nodes.conf",
                "--appendonly",
                "no",
            ];
            let cmd = &mut redis_server(port, &dir, &args);
            nodes.push(Proc::spawn(&format!("cluster-node-{i}"), cmd));
            dirs.push(dir);
            let url = format!("redis://127.0.0.1:{port}");
            wait_redis(&url, Duration::from_secs(10)).await;
            urls.push(url);
            addrs.push(format!("127.0.0.1:{port}"));
        }
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli on PATH");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let me = RedisCluster { urls, nodes, dirs };
        me.wait_ok().await;
        me
    }

    /// Waits until every node reports `cluster_state:ok`.
    async fn wait_ok(&self) {
        for _ in 0..300 {
            let mut ok = true;
            for url in &self.urls {
                let c = redis::Client::open(url.as_str()).unwrap();
                let mut conn = c.get_multiplexed_async_connection().await.unwrap();
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                ok &= info.contains("cluster_state:ok");
            }
            if ok {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("cluster never reached cluster_state:ok");
    }

    /// The seed list as `redis.url` takes it with `redis.cluster = true`.
    pub fn seed_url(&self) -> String {
        self.urls.join(",")
    }

    /// The address (`127.0.0.1:PORT`) of the master serving `key`, from CLUSTER KEYSLOT
    /// and CLUSTER SLOTS as the servers report them.
    pub async fn master_of(&self, key: &str) -> (u16, String) {
        let c = redis::Client::open(self.urls[0].as_str()).unwrap();
        let mut conn = c.get_multiplexed_async_connection().await.unwrap();
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let slots: Vec<(u16, u16, (String, u16))> = {
            let raw: Vec<redis::Value> = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async(&mut conn)
                .await
                .unwrap();
            raw.iter()
                .map(|r| {
                    let v: Vec<redis::Value> = redis::from_redis_value(r).unwrap();
                    let lo: u16 = redis::from_redis_value(&v[0]).unwrap();
                    let hi: u16 = redis::from_redis_value(&v[1]).unwrap();
                    let m: Vec<redis::Value> = redis::from_redis_value(&v[2]).unwrap();
                    let host: String = redis::from_redis_value(&m[0]).unwrap();
                    let port: u16 = redis::from_redis_value(&m[1]).unwrap();
                    (lo, hi, (host, port))
                })
                .collect()
        };
        let (_, _, (host, port)) = slots
            .into_iter()
            .find(|(lo, hi, _)| (*lo..=*hi).contains(&slot))
            .expect("every slot is served");
        (slot, format!("{host}:{port}"))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill9();
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
