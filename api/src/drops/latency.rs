//! The purchase latency signal of the autopilot, fleet-wide: every api node adds what its
//! purchases took (per drop, in the buckets of `vq_core::autopilot::sketch`) to the drop's
//! histogram of the current second in Redis, once a second. One pipeline per second and
//! node, one HINCRBY per non-empty bucket; each key expires after `sketch::KEEP_S`.
//!
//! Seconds are the Redis server's (`TIME`), the clock the autopilot reads them by.

use crate::AppState;
use std::time::Duration;
use vq_core::autopilot::sketch;

/// Writes what was recorded since the last call; how many drops it wrote.
pub async fn flush(st: &AppState) -> redis::RedisResult<usize> {
    let taken = st.latency.take();
    if taken.is_empty() {
        return Ok(0);
    }
    let mut conn = st.redis.clone();
    let (secs, _): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await?;
    let mut p = redis::pipe();
    for (drop, buckets) in &taken {
        let key = st.keys.drop(*drop).aplat(secs);
        for (b, n) in buckets {
            p.hincr(&key, *b, *n).ignore();
        }
        p.expire(&key, sketch::KEEP_S).ignore();
    }
    let () = p.query_async(&mut conn).await?;
    Ok(taken.len())
}

/// Flushes once a second for as long as the api runs (aborted with the api's other tasks).
pub async fn run(st: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = st.shutdown.clone();
    loop {
        tokio::select! {
            _ = stop.wait() => break,
            _ = tick.tick() => if let Err(e) = flush(&st).await {
                tracing::debug!(error = %e, "purchase latencies not flushed");
            },
        }
    }
}
