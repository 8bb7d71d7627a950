//! Order writer: reads reservations from every drop's Redis Stream through one consumer
//! group, writes them to PostgreSQL in batches (idempotent on the token id), then acks.
//! Entries a dead worker left pending are reclaimed with XAUTOCLAIM, so a crash between
//! read and ack loses nothing and, thanks to the unique token, duplicates nothing.
//!
//! Only the stream → PostgreSQL writer lives here. What happens to an order afterwards (status
//! machine, payment, restocks, the scheduler the `worker` command also runs) is `vq-orders`.
//! Arrows: `vq-core` ← `vq-orders` ← this crate ← `vitaqueue` (app). The api never imports it.

mod stream;

use futures::future::BoxFuture;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vq_core::config::Worker as WorkerCfg;
use vq_core::domain::DropId;
use vq_core::{Keys, RedisConn, Shutdown};

pub use stream::{write_orders, Reservation};
pub use vq_orders::{ensure_group, GROUP};

/// Points in a batch where a test may pause the worker (to kill it exactly there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Entries read (now pending for this consumer), nothing written yet.
    Read,
    /// Orders committed to PostgreSQL, entries not yet acknowledged.
    Written,
}

pub type Hook = Arc<dyn Fn(Stage) -> BoxFuture<'static, ()> + Send + Sync>;

pub struct Worker {
    redis: RedisConn,
    reader: RedisConn,
    db: PgPool,
    keys: Keys,
    cfg: WorkerCfg,
    hook: Option<Hook>,
    streams: HashMap<String, DropId>,
    streams_at: Option<Instant>,
    claimed_at: Option<Instant>,
}

impl Worker {
    /// On one server the reader is a dedicated (reconnecting) connection to `redis_url`
    /// (behind Sentinels: to the current primary): blocking reads must not stall other
    /// commands. On a cluster the reads do not block (see `stream::read_new`), so the
    /// shared cluster connection serves them.
    pub async fn new(
        redis_url: &str,
        redis: RedisConn,
        db: PgPool,
        keys: Keys,
        cfg: WorkerCfg,
    ) -> anyhow::Result<Self> {
        let reader = redis.separate(redis_url).await?;
        Ok(Worker {
            redis,
            reader,
            db,
            keys,
            cfg,
            hook: None,
            streams: HashMap::new(),
            streams_at: None,
            claimed_at: None,
        })
    }

    pub fn with_hook(mut self, hook: Hook) -> Self {
        self.hook = Some(hook);
        self
    }

    async fn hook(&self, stage: Stage) {
        if let Some(h) = &self.hook {
            h(stage).await;
        }
    }

    /// Runs until shutdown. Shutdown is only looked at between steps, so the batch in hand
    /// is always finished (written and acked); a step blocks for at most `block_ms`.
    pub async fn run(mut self, shutdown: Shutdown) {
        while !shutdown.is_fired() {
            if let Err(e) = self.step().await {
                tracing::warn!(error = %e, "worker step failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        tracing::info!(consumer = %self.cfg.consumer, "worker stopped");
    }

    /// One pass: refresh the stream list, reclaim idle pending entries when due, then read
    /// and write one batch of new entries. Returns how many orders it handled.
    pub async fn step(&mut self) -> anyhow::Result<usize> {
        self.refresh_streams().await?;
        if self.streams.is_empty() {
            tokio::time::sleep(Duration::from_millis(self.cfg.block_ms)).await;
            return Ok(0);
        }
        let mut handled = 0;
        let claim_due = self
            .claimed_at
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(self.cfg.claim_every_ms));
        if claim_due {
            self.claimed_at = Some(Instant::now());
            let keys: Vec<String> = self.streams.keys().cloned().collect();
            for key in keys {
                let batch = stream::autoclaim(&mut self.redis, &key, &self.cfg).await?;
                handled += self.handle(batch).await?;
            }
        }
        let batch = stream::read_new(&mut self.reader, &self.streams, &self.cfg).await?;
        handled += self.handle(batch).await?;
        Ok(handled)
    }

    async fn refresh_streams(&mut self) -> anyhow::Result<()> {
        if self
            .streams_at
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return Ok(());
        }
        self.streams_at = Some(Instant::now());
        let ids: Vec<i64> =
            redis::AsyncCommands::smembers(&mut self.redis, self.keys.stream_drops()).await?;
        for raw in ids {
            let Ok(id) = DropId::new(raw) else { continue };
            let key = self.keys.drop(id).orders();
            if !self.streams.contains_key(&key) {
                ensure_group(&mut self.redis, &key).await?;
                self.streams.insert(key, id);
            }
        }
        Ok(())
    }

    async fn handle(&mut self, batch: Vec<(String, Vec<stream::Entry>)>) -> anyhow::Result<usize> {
        if batch.iter().all(|(_, e)| e.is_empty()) {
            return Ok(0);
        }
        self.hook(Stage::Read).await;
        let mut rows = Vec::new();
        for (key, entries) in &batch {
            let Some(&drop) = self.streams.get(key) else {
                continue;
            };
            for e in entries {
                match &e.reservation {
                    Some(r) => rows.push((drop, r.clone())),
                    None => {
                        tracing::error!(stream = %key, id = %e.id, "malformed reservation entry")
                    }
                }
            }
        }
        let started = Instant::now();
        let written = stream::write_orders(&self.db, &rows).await?;
        metrics::histogram!("vq_worker_batch_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("vq_orders_written_total").increment(written);
        self.hook(Stage::Written).await;
        for (key, entries) in &batch {
            stream::ack(&mut self.redis, key, entries).await?;
        }
        tracing::debug!(rows = rows.len(), written, "batch stored");
        Ok(rows.len())
    }
}
