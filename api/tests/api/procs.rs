//! Separate OS processes for the scale-out and fault tests: a local Redis Cluster, a
//! private redis-server with an append-only file that can be killed and restarted on the
//! same port and directory, and `vitaqueue` role processes. Everything listens on loopback
//! only, lives in its own temp dir, and is killed (SIGKILL) and reaped on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback TCP port (bound once, then released for the child to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh temp directory for one child's files.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vq-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A child process killed with SIGKILL (no clean-up of its own) when dropped or asked.
pub struct Proc {
    child: Option<Child>,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Proc { child: Some(child) }
    }

    #[allow(dead_code)] // read by the soak test, which shares this file
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// `kill -9`: the process gets no chance to finish anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

async fn ping(url: &str) -> bool {
    let Ok(c) = redis::Client::open(url) else {
        return false;
    };
    let Ok(Ok(mut conn)) = tokio::time::timeout(
        Duration::from_millis(500),
        c.get_multiplexed_async_connection(),
    )
    .await
    else {
        return false;
    };
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .is_ok()
}

/// Waits until `url` answers PING; returns how long that took.
pub async fn wait_redis(url: &str, within: Duration) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if ping(url).await {
            return t0.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("redis at {url} did not answer within {within:?}");
}

fn redis_server(port: u16, dir: &PathBuf, extra: &[&str]) -> Command {
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

/// `vitaqueue <role>` as its own process, configured through `VQ_*` variables from the
/// test's settings (same database, Redis, key prefix and JWT secret), logging to a file.
pub fn vitaqueue(role: &str, s: &vq_core::Settings, name: &str, extra: &[(&str, String)]) -> Proc {
    let logs = std::env::temp_dir().join("vq-test-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log = logs.join(format!("{}-{name}.log", s.redis.prefix));
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vitaqueue"));
    cmd.arg(role)
        .env("RUST_LOG", "info")
        .env("VQ_REDIS__URL", s.redis.url.expose())
        .env("VQ_REDIS__CLUSTER", s.redis.cluster.to_string())
        .env("VQ_REDIS__PREFIX", &s.redis.prefix)
        .env("VQ_DATABASE__URL", s.database.url.expose())
        .env("VQ_DATABASE__MAX_CONNECTIONS", "4")
        .env(
            "VQ_AUTH__JWT_SECRET",
            s.auth.jwt_secret.as_ref().expect("secret").expose(),
        )
        .env("VQ_WORKER__CONSUMER", name)
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    Proc::spawn(name, &mut cmd)
}

/// An api process on a free port, once it answers /healthz.
pub async fn api_node(s: &vq_core::Settings, name: &str, extra: &[(&str, String)]) -> (Proc, u16) {
    let port = free_port();
    let mut env = vec![("VQ_HTTP__PORT", port.to_string())];
    env.extend(extra.iter().cloned());
    let mut p = vitaqueue("api", s, name, &env);
    let http = reqwest::Client::new();
    for _ in 0..400 {
        assert!(p.is_running(), "{name} exited; see its log");
        let url = format!("http://127.0.0.1:{port}/healthz");
        if http.get(url).send().await.is_ok_and(|r| r.status() == 200) {
            return (p, port);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} did not become healthy");
}
