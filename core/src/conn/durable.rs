//! `WAIT` after a purchase or an admission: the write is acknowledged only once the
//! replicas `redis.wait_replicas` asks for have it, so a failover to one of them keeps it.
//!
//! `wait_replicas = "auto"` (the default) asks for one replica whenever the primary has
//! one: the count comes from `INFO replication` (`connected_slaves`), read when the
//! connection is made and then at most once per `RECHECK` in the background, never on a
//! purchase's own path. The same read says whether the setup can keep an acknowledged
//! purchase through a failover at all; when it cannot, a warning is logged and
//! `vq_durability_at_risk{reason}` is 1 (docs/durability.md, "Told at start").
//!
//! WAIT blocks the whole (shared, multiplexed) connection until the replicas answer, so
//! while the replicas are missing or lagging each WAIT would stall every command of the
//! process for `wait_timeout`. After one WAIT comes back short the connection is
//! "degraded" for `DEGRADED_FOR`: it only probes with `WAIT 0 0`, which never blocks and
//! still reports how many replicas hold the write, then tries a real WAIT again.

use super::RedisConn;
use crate::config::{DurabilityMode, Redis as RedisCfg, WaitReplicas};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const DEGRADED_FOR: Duration = Duration::from_secs(1);
/// How often the primary's replica count (and AOF) is read again.
pub const RECHECK: Duration = Duration::from_secs(1);
/// `connected` before the first successful read.
const UNKNOWN: u32 = u32::MAX;

/// Why acknowledged writes may not survive losing the primary (the gauge's `reason`).
pub const RISKS: [&str; 3] = ["wait_off", "no_replica", "no_aof"];

pub(super) struct Durability {
    setting: WaitReplicas,
    mode: DurabilityMode,
    timeout: Duration,
    /// Replicas the primary reported connected at the last read (`UNKNOWN` before).
    connected: AtomicU32,
    aof: AtomicBool,
    next_check: Mutex<Instant>,
    degraded_until: Mutex<Option<Instant>>,
    /// The reasons of the last read, to log only changes.
    risks: Mutex<Option<Vec<&'static str>>>,
}

impl Durability {
    pub fn new(cfg: &RedisCfg) -> Durability {
        Durability {
            setting: cfg.wait_replicas,
            mode: cfg.durability,
            timeout: cfg.wait_timeout,
            connected: AtomicU32::new(UNKNOWN),
            aof: AtomicBool::new(false),
            next_check: Mutex::new(Instant::now()),
            degraded_until: Mutex::new(None),
            risks: Mutex::new(None),
        }
    }

    pub fn off() -> Durability {
        let mut d = Durability::new(&RedisCfg::default());
        d.setting = WaitReplicas::Exactly(0);
        d.timeout = Duration::ZERO;
        d
    }

    /// Replicas a write waits for now. Auto: one if the primary has one (and while the
    /// count is unknown, so a missing read never silently turns the wait off). Strict
    /// mode always waits for at least one: that is what it promises.
    fn wanted(&self) -> u32 {
        let connected = self.connected.load(Ordering::Acquire);
        let n = match self.setting {
            WaitReplicas::Exactly(n) => n,
            WaitReplicas::Auto => connected.min(1),
        };
        match self.mode {
            DurabilityMode::Strict => n.max(1),
            DurabilityMode::Acknowledge => n,
        }
    }

    fn degraded(&self) -> bool {
        let until = *self.degraded_until.lock().expect("lock");
        until.is_some_and(|t| Instant::now() < t)
    }

    fn set_degraded(&self, on: bool) {
        *self.degraded_until.lock().expect("lock") = on.then(|| Instant::now() + DEGRADED_FOR);
    }

    /// True (once per `RECHECK`) when the replica count should be read again.
    fn due(&self) -> bool {
        let Ok(mut next) = self.next_check.try_lock() else {
            return false;
        };
        let now = Instant::now();
        if now < *next {
            return false;
        }
        *next = now + RECHECK;
        true
    }

    /// The reasons this setup may lose an acknowledged write with its primary.
    fn reasons(&self) -> Vec<&'static str> {
        let connected = self.connected.load(Ordering::Acquire);
        let mut r = Vec::new();
        if self.wanted() == 0 && self.setting == WaitReplicas::Exactly(0) {
            r.push("wait_off");
        }
        if connected == 0 {
            r.push("no_replica");
            if !self.aof.load(Ordering::Acquire) {
                r.push("no_aof");
            }
        }
        r
    }

    fn publish(&self) {
        let now = self.reasons();
        for reason in RISKS {
            metrics::gauge!("vq_durability_at_risk", "reason" => reason)
                .set(f64::from(u8::from(now.contains(&reason))));
        }
        metrics::gauge!("vq_redis_replicas_waited").set(f64::from(self.wanted()));
        let mut last = self.risks.lock().expect("lock");
        if last.as_ref() != Some(&now) {
            if !now.is_empty() {
                tracing::warn!(
                    reasons = ?now,
                    connected_replicas = self.connected.load(Ordering::Acquire),
                    "an acknowledged purchase may not survive losing the Redis primary \
                     (docs/durability.md)"
                );
            } else if last.is_some() {
                tracing::info!(wait_for = self.wanted(), "Redis durability restored");
            }
            *last = Some(now);
        }
    }
}

/// What `wait_durable` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durable {
    /// No replica to wait for (`wait_replicas = 0`, or auto with none connected).
    Off,
    /// The required replicas hold every write of this connection so far.
    Replicated,
    /// Fewer replicas confirmed in time (counted in `vq_redis_wait_short_total`).
    Short { acked: u32 },
}

/// `connected_slaves` and `aof_enabled` from `INFO replication` + `INFO persistence`.
fn parse_info(text: &str) -> (Option<u32>, bool) {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let connected = field("connected_slaves").and_then(|v| v.parse().ok());
    (connected, field("aof_enabled") == Some("1"))
}

impl RedisConn {
    /// Reads the primary's replica count and AOF setting, updates what `wait_durable`
    /// waits for and the `vq_durability_at_risk` gauges, and warns when the setup cannot
    /// keep an acknowledged write through losing the primary. A failed read keeps the
    /// last known values.
    pub async fn check_durability(&self) {
        let d = self.durability.clone();
        let mut c = self.clone();
        let mut p = redis::pipe();
        p.cmd("INFO")
            .arg("replication")
            .cmd("INFO")
            .arg("persistence");
        match p.query_async::<(String, String)>(&mut c).await {
            Ok((repl, pers)) => {
                let (connected, _) = parse_info(&repl);
                let (_, aof) = parse_info(&pers);
                if let Some(n) = connected {
                    d.connected.store(n, Ordering::Release);
                }
                d.aof.store(aof, Ordering::Release);
            }
            Err(e) => tracing::debug!(error = %e, "INFO replication failed"),
        }
        d.publish();
    }

    /// Re-sets the durability gauges from the last read (for a freshly installed metrics
    /// recorder, or `/metrics`), and reads again in the background if due.
    pub fn publish_durability(&self) {
        self.durability.publish();
        self.recheck_durability_if_due();
    }

    fn recheck_durability_if_due(&self) {
        if self.durability.due() && tokio::runtime::Handle::try_current().is_ok() {
            let c = self.clone();
            tokio::spawn(async move { c.check_durability().await });
        }
    }

    /// `redis.durability = "strict"`.
    pub fn strict(&self) -> bool {
        self.durability.mode == DurabilityMode::Strict
    }

    /// Strict mode, before a write: whether the last read already shows too few replicas
    /// for the write to be confirmed (refuse up front then: nothing is reserved).
    pub fn too_few_replicas(&self) -> bool {
        let d = &self.durability;
        let connected = d.connected.load(Ordering::Acquire);
        self.strict() && connected != UNKNOWN && connected < d.wanted()
    }

    /// Waits until the wanted replicas hold every write this connection sent so far
    /// (call it right after the script whose effect is about to be acknowledged, on the
    /// same connection). A shortfall is not an error: the caller decides (acknowledge
    /// mode answers from the primary alone, counted; strict mode undoes and answers
    /// 503). A Redis error is returned: the primary may be gone and whether the write
    /// survives is unknown.
    pub async fn wait_durable(&mut self, op: &'static str) -> redis::RedisResult<Durable> {
        self.recheck_durability_if_due();
        let d = self.durability.clone();
        let wanted = d.wanted();
        if wanted == 0 {
            return Ok(Durable::Off);
        }
        let probe = d.degraded();
        let (want, ms) = if probe {
            (0, 0)
        } else {
            (wanted, d.timeout.as_millis().max(1) as u64)
        };
        let started = Instant::now();
        let acked: u32 = redis::cmd("WAIT")
            .arg(want)
            .arg(ms)
            .query_async(self)
            .await?;
        metrics::histogram!("vq_redis_wait_seconds", "op" => op)
            .record(started.elapsed().as_secs_f64());
        if acked >= wanted {
            d.set_degraded(false);
            return Ok(Durable::Replicated);
        }
        metrics::counter!("vq_redis_wait_short_total", "op" => op).increment(1);
        self.recheck_primary().await;
        if !probe {
            d.set_degraded(true);
            tracing::warn!(op, acked, wanted, "replicas did not confirm in time");
        }
        Ok(Durable::Short { acked })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(setting: WaitReplicas, mode: DurabilityMode, connected: u32, aof: bool) -> Durability {
        let cfg = RedisCfg {
            wait_replicas: setting,
            durability: mode,
            ..RedisCfg::default()
        };
        let d = Durability::new(&cfg);
        d.connected.store(connected, Ordering::Release);
        d.aof.store(aof, Ordering::Release);
        d
    }

    #[test]
    fn auto_waits_for_one_replica_when_there_is_one() {
        use DurabilityMode::*;
        use WaitReplicas::*;
        assert_eq!(with(Auto, Acknowledge, 0, true).wanted(), 0);
        assert_eq!(with(Auto, Acknowledge, 1, true).wanted(), 1);
        assert_eq!(with(Auto, Acknowledge, 3, true).wanted(), 1);
        assert_eq!(with(Auto, Acknowledge, UNKNOWN, true).wanted(), 1);
        assert_eq!(with(Exactly(2), Acknowledge, 1, true).wanted(), 2);
        assert_eq!(with(Exactly(0), Acknowledge, 1, true).wanted(), 0);
        assert_eq!(with(Exactly(0), Strict, 1, true).wanted(), 1);
        assert_eq!(with(Auto, Strict, 0, true).wanted(), 1);
    }

    #[test]
    fn the_reasons_name_what_cannot_survive_a_failover() {
        use DurabilityMode::*;
        use WaitReplicas::*;
        assert!(with(Auto, Acknowledge, 1, false).reasons().is_empty());
        assert_eq!(with(Auto, Acknowledge, 0, true).reasons(), ["no_replica"]);
        assert_eq!(
            with(Auto, Acknowledge, 0, false).reasons(),
            ["no_replica", "no_aof"]
        );
        assert_eq!(
            with(Exactly(0), Acknowledge, 1, true).reasons(),
            ["wait_off"]
        );
        assert!(with(Exactly(0), Strict, 1, true).reasons().is_empty());
    }

    #[test]
    fn info_fields_are_read_from_the_reply() {
        let repl = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\nslave0:ip=..\r\n";
        assert_eq!(parse_info(repl), (Some(2), false));
        let pers = "# Persistence\r\nloading:0\r\naof_enabled:1\r\n";
        assert_eq!(parse_info(pers), (None, true));
        assert_eq!(parse_info("garbage"), (None, false));
    }
}
