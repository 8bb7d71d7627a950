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
