//! `WAIT` after a purchase or an admission: the write is acknowledged only once
//! `redis.wait_replicas` replicas have it, so a failover to one of them keeps it.
//!
//! WAIT blocks the whole (shared, multiplexed) connection until the replicas answer, so
//! while the replicas are missing or lagging each WAIT would stall every command of the
//! process for `wait_timeout`. After one WAIT comes back short the connection is
//! "degraded" for `DEGRADED_FOR`: it only probes with `WAIT 0 0`, which never blocks and
//! still reports how many replicas hold the write, then tries a real WAIT again.

use super::RedisConn;
use crate::config::Redis as RedisCfg;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const DEGRADED_FOR: Duration = Duration::from_secs(1);

pub(super) struct Durability {
    replicas: u32,
    timeout: Duration,
    degraded_until: Mutex<Option<Instant>>,
}

impl Durability {
    pub fn new(cfg: &RedisCfg) -> Durability {
        Durability {
            replicas: cfg.wait_replicas,
            timeout: cfg.wait_timeout,
            degraded_until: Mutex::new(None),
        }
    }

    pub fn off() -> Durability {
        Durability {
            replicas: 0,
            timeout: Duration::ZERO,
            degraded_until: Mutex::new(None),
        }
    }

    fn degraded(&self) -> bool {
        let until = *self.degraded_until.lock().expect("lock");
        until.is_some_and(|t| Instant::now() < t)
    }

    fn set_degraded(&self, on: bool) {
        *self.degraded_until.lock().expect("lock") = on.then(|| Instant::now() + DEGRADED_FOR);
    }
}

/// What `wait_durable` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durable {
    /// `redis.wait_replicas = 0`: nothing was waited for.
    Off,
    /// The required replicas hold every write of this connection so far.
    Replicated,
    /// Fewer replicas confirmed in time (counted in `vq_redis_wait_short_total`).
    Short { acked: u32 },
}

impl RedisConn {
    /// Waits until `redis.wait_replicas` replicas hold every write this connection sent
    /// so far (call it right after the script whose effect is about to be acknowledged,
    /// on the same connection). A shortfall is not an error: the write is on the primary
    /// and answering otherwise would hide a reservation that exists; it is counted and
    /// logged (docs/durability.md, section "Replica
    /// acknowledgement (WAIT)"). A Redis error is returned: the primary may be gone
    /// and whether the write survives is unknown.
    pub async fn wait_durable(&mut self, op: &'static str) -> redis::RedisResult<Durable> {
        let d = self.durability.clone();
        if d.replicas == 0 {
            return Ok(Durable::Off);
        }
        let probe = d.degraded();
        let (want, ms) = if probe {
            (0, 0)
        } else {
            (d.replicas, d.timeout.as_millis().max(1) as u64)
        };
        let started = Instant::now();
        let acked: u32 = redis::cmd("WAIT")
            .arg(want)
            .arg(ms)
            .query_async(self)
            .await?;
        metrics::histogram!("vq_redis_wait_seconds", "op" => op)
            .record(started.elapsed().as_secs_f64());
        if acked >= d.replicas {
            d.set_degraded(false);
            return Ok(Durable::Replicated);
        }
        metrics::counter!("vq_redis_wait_short_total", "op" => op).increment(1);
        self.recheck_primary().await;
        if !probe {
            d.set_degraded(true);
            tracing::warn!(
                op,
                acked,
                wanted = d.replicas,
                "replicas did not confirm in time; acknowledging from the primary alone"
            );
        }
        Ok(Durable::Short { acked })
    }
}
