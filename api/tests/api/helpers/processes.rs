//! Processes a test starts itself: a private redis-server. (Role processes of the
//! `vitaqueue` binary live in `procs`, which the soak test shares.)

use std::time::Duration;

/// A private redis-server on a free loopback port, killed on drop.
pub struct PrivateRedis {
    pub url: String,
    child: std::process::Child,
}

impl PrivateRedis {
    pub async fn start() -> PrivateRedis {
        Self::start_with(&[]).await
    }

    /// With more server options (e.g. `--enable-debug-command yes`).
    pub async fn start_with(extra: &[&str]) -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        // Owned from here on, so the process is killed and reaped on every path.
        let me = PrivateRedis {
            url: format!("redis://127.0.0.1:{port}"),
            child,
        };
        for _ in 0..100 {
            if let Ok(c) = redis::Client::open(me.url.as_str()) {
                if let Ok(mut conn) = c.get_multiplexed_async_connection().await {
                    if redis::cmd("PING")
                        .query_async::<String>(&mut conn)
                        .await
                        .is_ok()
                    {
                        return me;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("private redis-server did not start");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `redis-cli monitor`, keeping the names of commands sent by clients (not by scripts).
pub struct Monitor {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Monitor {
    pub fn start(url: &str) -> Monitor {
        use std::io::BufRead;
        let mut child = std::process::Command::new("redis-cli")
            .args(["-u", url, "monitor"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("redis-cli on PATH");
        let out = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                // e.g. 1700000000.123456 [0 127.0.0.1:5555] "EVALSHA" "abc" ...
                if line.contains(" lua] ") || !line.contains('"') {
                    continue;
                }
                if let Some(cmd) = line.split('"').nth(1) {
                    sink.lock().unwrap().push(cmd.to_string());
                }
            }
        });
        Monitor { child, lines }
    }

    /// The commands seen so far, in order.
    pub fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.lines.lock().unwrap().clone()
    }
}
