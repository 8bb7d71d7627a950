//! Admission controller: every tick, for each active drop, runs `admit.lua`, which expires
//! stale tokens and admits the head of the queue within the rate and holder caps. The caps
//! live in Redis, so any number of these controllers may run side by side.
//!
//! Every `autopilot_ms` it also runs the autopilot step of each active drop that set one
//! (`vq_core::autopilot::signals::step`): the step takes the drop's lease for the interval,
//! so one process decides each drop's rate per interval, whatever the number of controllers.
//!
//! Arrows: depends on `vq-core` only; built and run by `vitaqueue` (app), the composition root.

use rand::RngCore;
use redis::AsyncCommands;
use std::sync::Arc;
use std::time::Duration;
use vq_core::domain::{AdmitStatus, DropId};
use vq_core::scripts::{AdmitOutcome, Settle};
use vq_core::{autopilot, Clock, Keys, RedisConn, Scripts, Shutdown};

#[derive(Clone)]
pub struct Admitter {
    conn: RedisConn,
    scripts: Arc<Scripts>,
    keys: Keys,
    clock: Clock,
    max_batch: u32,
    /// Autopilot interval (0: off) and the order stream's worker group (for the lag).
    autopilot_ms: u64,
    group: &'static str,
    next_autopilot: std::time::Instant,
    swept_at: Option<std::time::Instant>,
}

/// How old a staged (strict-mode) purchase must be before the controller commits it: far
/// beyond any `wait_timeout`, so it never races the node that staged it.
pub const STALE_STAGED: Duration = Duration::from_secs(5);

impl Admitter {
    pub fn new(
        conn: RedisConn,
        scripts: Arc<Scripts>,
        keys: Keys,
        clock: Clock,
        max_batch: u32,
    ) -> Self {
        Admitter {
            conn,
            scripts,
            keys,
            clock,
            max_batch,
            autopilot_ms: 0,
            group: "",
            next_autopilot: std::time::Instant::now(),
            swept_at: None,
        }
    }

    /// Runs the autopilot every `every_ms` (0: never); `group` is the workers' consumer
    /// group on each drop's order stream, whose unacknowledged entries are the order lag.
    pub fn with_autopilot(mut self, every_ms: u64, group: &'static str) -> Self {
        self.autopilot_ms = every_ms;
        self.group = group;
        self
    }

    /// One autopilot step for one drop (None: off, not active, or another process decided
    /// this interval).
    pub async fn autopilot_drop(
        &mut self,
        id: DropId,
    ) -> redis::RedisResult<Option<autopilot::signals::Step>> {
        let k = self.keys.drop(id);
        let (every, group) = (self.autopilot_ms.max(1), self.group);
        let step =
            autopilot::signals::step(&mut self.conn, &self.scripts, &k, &self.clock, group, every)
                .await?;
        if let Some(s) = &step {
            let rate = s.decision.map_or(s.inputs.rate, |d| d.rate);
            metrics::gauge!("vq_autopilot_rate", "drop" => id.get().to_string())
                .set(f64::from(rate));
            if let Some(d) = s.decision {
                tracing::info!(drop = id.get(), old = s.inputs.rate, new = d.rate,
                    reason = d.reason.as_str(), outcome = ?s.applied, "autopilot");
            }
        }
        Ok(step)
    }

    /// Whether this tick is the autopilot's (once per interval).
    fn autopilot_due(&mut self) -> bool {
        let now = std::time::Instant::now();
        if self.autopilot_ms == 0 || now < self.next_autopilot {
            return false;
        }
        self.next_autopilot = now + Duration::from_millis(self.autopilot_ms);
        true
    }

    /// One tick for one drop. Tokens are a fresh 128-bit random prefix plus an index, so they
    /// cannot be guessed, and one script argument carries a whole batch of them.
    pub async fn tick_drop(&mut self, id: DropId) -> redis::RedisResult<AdmitOutcome> {
        let mut raw = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut raw);
        let prefix = hex::encode(raw);
        let k = self.keys.drop(id);
        let out = self
            .scripts
            .admit(&mut self.conn, &k, &self.clock, self.max_batch, &prefix)
            .await?;
        if !out.admitted.is_empty() {
            self.conn.wait_durable("admission").await?;
        }
        Ok(out)
    }

    /// One tick for every active drop; closed or deleted drops leave the active set.
    ///
    /// `redis.durability = "strict"`: no tick while the primary has fewer replicas than
    /// the wait needs (a token no replica holds could vanish in a failover after its buyer
    /// saw it), and purchases an api node staged and never settled (it died between its
    /// script and its WAIT) are committed once they are `STALE_STAGED` old.
    pub async fn tick_all(&mut self) -> redis::RedisResult<u64> {
        if self.conn.too_few_replicas() {
            metrics::counter!("vq_admission_ticks_skipped_total", "reason" => "not_replicated")
                .increment(1);
            return Ok(0);
        }
        let ids: Vec<i64> = self.conn.smembers(self.keys.active_drops()).await?;
        if self.conn.strict() {
            self.commit_stale(&ids).await?;
        }
        let mut admitted = 0;
        let autopilot = self.autopilot_due();
        for raw in ids {
            let Ok(id) = DropId::new(raw) else { continue };
            if autopilot {
                if let Err(e) = self.autopilot_drop(id).await {
                    tracing::warn!(drop = raw, error = %e, "autopilot step failed");
                }
            }
            let started = std::time::Instant::now();
            let out = self.tick_drop(id).await?;
            metrics::histogram!("vq_admission_tick_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            metrics::counter!("vq_admission_ticks_total").increment(1);
            admitted += out.admitted.len() as u64;
            if out.status.is_final() {
                let _: () = self.conn.srem(self.keys.active_drops(), raw).await?;
            }
            // Lost state: the drop stays active so admission resumes once it is rebuilt.
            // No cfg at all says nothing here: the api's lost-state check owns that case
            // (it knows from PostgreSQL whether the drop still exists).
            let lost = out.status == AdmitStatus::NeedsRebuild;
            if out.status != AdmitStatus::NoDrop {
                metrics::gauge!("vq_drop_needs_rebuild", "drop" => raw.to_string())
                    .set(f64::from(u8::from(lost)));
            }
            if lost {
                tracing::warn!(drop = raw, "drop's Redis state is missing: needs rebuild");
            }
        }
        Ok(admitted)
    }

    /// Strict mode: commits the drops' purchases staged before `now - STALE_STAGED` (at
    /// most once per `STALE_STAGED / 5` per controller). A staged record that old was
    /// confirmed by a replica or its node is gone; its buyer may hold a 201, so it is
    /// committed, never undone.
    async fn commit_stale(&mut self, ids: &[i64]) -> redis::RedisResult<()> {
        let now = std::time::Instant::now();
        if self.swept_at.is_some_and(|t| now - t < STALE_STAGED / 5) {
            return Ok(());
        }
        self.swept_at = Some(now);
        let cutoff = self.clock.now_ms() - STALE_STAGED.as_millis() as i64;
        for raw in ids {
            let Ok(id) = DropId::new(*raw) else { continue };
            let k = self.keys.drop(id);
            let how = Settle::StagedBefore(cutoff);
            let n = self
                .scripts
                .settle(&mut self.conn, &k, how, &self.clock)
                .await?;
            if n > 0 {
                tracing::warn!(
                    drop = raw,
                    n,
                    "committed purchases staged by a node that never settled them"
                );
                metrics::counter!("vq_staged_committed_late_total").increment(n as u64);
            }
        }
        Ok(())
    }

    /// Ticks until shutdown. Errors are logged and retried on the next tick: a Redis
    /// failover must not stop admission for good.
    pub async fn run(mut self, tick: Duration, mut shutdown: Shutdown) {
        let mut every = tokio::time::interval(tick);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stop = shutdown.clone();
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = every.tick() => {
                    // A tick may wait on a Redis that is gone; shutdown must not. Dropping
                    // the tick is safe: each script call is atomic in Redis.
                    tokio::select! {
                        _ = stop.wait() => break,
                        r = self.tick_all() => if let Err(e) = r {
                            tracing::warn!(error = %e, "admission tick failed");
                        },
                    }
                }
            }
        }
        tracing::info!("admission controller stopped");
    }
}
