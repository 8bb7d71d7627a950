//! The checkout lane: a runtime on a thread of its own, with its own Redis connection, where
//! a room socket goes on living once its buyer is admitted.
//!
//! Why: at a drop's start every socket of the node reads its drawn place and pushes it, and
//! from then on each one pushes twice a second. That work fills the api's run queue, and a
//! buyer's purchase frame waited behind it twice: for its socket's task to be polled
//! (p99 86–156 ms at 19,000 sockets) and for the shared Redis connection's replies, queued
//! behind the room's batched reads (buy p50 10–12 ms, p99 34–44 ms; benchmarks/NOTES-2026-11.md,
//! section "10.7 The checkout lane").
//! The sockets whose buyer holds a token (a thousand and a half a second at most at the
//! shipped admission rate, and no more in all than the buyers admitted) move here, so the
//! OS schedules their purchase beside the room's pushes instead of behind them, and their
//! script call has a connection no room read waits on.
//!
//! Arrows: sessions → `Checkout` (spawn, `redis()`); the lane holds no `AppState`. The
//! thread stops when the state holding the lane is dropped, once its last socket is done.

use std::future::Future;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use vq_core::RedisConn;

pub struct Checkout {
    handle: Handle,
    redis: RedisConn,
    /// Dropped with the lane: the thread then ends its runtime.
    _stop: oneshot::Sender<()>,
}

impl Checkout {
    /// Starts the lane's thread and opens its connection there (so the connection's driver
    /// runs on the lane). `url` is the single server's; behind Sentinels the lane asks them
    /// for the primary; on a cluster `separate` hands back the shared cluster connection,
    /// so there the lane moves the socket's task but not its Redis traffic. The connection
    /// is named `vq-checkout-<prefix>` in `CLIENT LIST` (until a reconnect), for operators.
    pub async fn start(shared: &RedisConn, url: &str, prefix: &str) -> anyhow::Result<Checkout> {
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, handle) = oneshot::channel();
        std::thread::Builder::new()
            .name("vq-checkout".into())
            .spawn(move || lane(ready, stopped))?;
        let handle: Handle = handle.await??;
        let (shared, url) = (shared.clone(), url.to_string());
        let name = client_name(prefix);
        let redis = handle
            .spawn(async move {
                let mut conn = shared.separate(&url).await?;
                if !conn.is_cluster() {
                    let named: redis::RedisResult<()> = redis::cmd("CLIENT")
                        .arg("SETNAME")
                        .arg(&name)
                        .query_async(&mut conn)
                        .await;
                    named?;
                }
                redis::RedisResult::Ok(conn)
            })
            .await??;
        Ok(Checkout {
            handle,
            redis,
            _stop: stop,
        })
    }

    /// Runs `f` on the lane.
    pub fn spawn<F>(&self, f: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        metrics::counter!("vq_checkout_sockets_total").increment(1);
        self.handle.spawn(f);
    }

    /// The lane's connection (its driver runs on the lane).
    pub fn redis(&self) -> RedisConn {
        self.redis.clone()
    }
}

/// `vq-checkout-` and the key prefix, with what `CLIENT SETNAME` refuses (spaces) replaced.
pub fn client_name(prefix: &str) -> String {
    let safe: String = prefix
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    format!("vq-checkout-{safe}")
}

/// The lane's thread: a current-thread runtime that runs the spawned sockets until the
/// lane is dropped, then gives them a second to finish their close.
fn lane(ready: oneshot::Sender<std::io::Result<Handle>>, stopped: oneshot::Receiver<()>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if ready.send(Ok(rt.handle().clone())).is_err() {
        return;
    }
    rt.block_on(async {
        let _ = stopped.await;
    });
    rt.shutdown_timeout(Duration::from_secs(1));
}
