//! Separate OS processes for the scale-out and fault tests: `vitaqueue` role processes
//! configured like the test app (see `redis_procs` for Redis servers). Everything listens
//! on loopback only and is killed (SIGKILL) and reaped on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
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

/// The path of an up-to-date `vitaqueue` binary in this build's target directory, built on
/// first use: it belongs to the `vitaqueue` package, so cargo does not build it for the api's
/// tests (and `CARGO_BIN_EXE_vitaqueue` is not set for them).
pub fn vitaqueue_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // target/<profile>/deps/api-<hash> → target/<profile>
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(|d| d.parent())
            .expect("target/<profile>");
        let target = profile_dir.parent().expect("target dir");
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "-p",
            "vitaqueue",
            "--bin",
            "vitaqueue",
            "--target-dir",
        ])
        .arg(target)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build for vitaqueue");
        assert!(status.success(), "cargo build -p vitaqueue failed");
        profile_dir.join("vitaqueue")
    })
    .clone()
}

/// `vitaqueue <role>` as its own process, configured through `VQ_*` variables from the
/// test's settings (same database, Redis, key prefix and JWT secret), logging to a file
/// under the build directory (`target/tmp/vq-logs/<prefix>-<name>.log`) for post-mortems.
pub fn vitaqueue(role: &str, s: &vq_core::Settings, name: &str, extra: &[(&str, String)]) -> Proc {
    let logs = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("vq-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log = logs.join(format!("{}-{name}.log", s.redis.prefix));
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(vitaqueue_bin());
    cmd.arg(role)
        .env("RUST_LOG", "info")
        .env("VQ_REDIS__URL", s.redis.url.expose())
        .env("VQ_REDIS__CLUSTER", s.redis.cluster.to_string())
        .env("VQ_REDIS__PREFIX", &s.redis.prefix)
        .env("VQ_DATABASE__URL", s.database.url.expose())
        .env("VQ_DATABASE__MAX_CONNECTIONS", "4")
        // Every test client is on loopback: no per-address connection cap.
        .env("VQ_HTTP__MAX_CONNECTIONS_PER_IP", "0")
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
    api_node_role("api", s, name, extra).await
}

/// A process of a role that serves HTTP (`api` or `all`), once it answers /healthz.
pub async fn api_node_role(
    role: &str,
    s: &vq_core::Settings,
    name: &str,
    extra: &[(&str, String)],
) -> (Proc, u16) {
    let port = free_port();
    let mut env = vec![("VQ_HTTP__PORT", port.to_string())];
    env.extend(extra.iter().cloned());
    let mut p = vitaqueue(role, s, name, &env);
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
