//! Roles run as tasks beside a test's app (so a test can pause or abort one mid-batch),
//! built by the same `vitaqueue` constructors the composition root uses.

use super::TestApp;
use std::time::Duration;
use tokio::task::JoinHandle;
use vitaqueue::worker::Worker;
use vitaqueue::{build_admitter, build_scheduler, build_worker, Stores};

impl TestApp {
    fn stores(&self) -> Stores {
        Stores {
            redis: self.redis.clone(),
            db: self.db.clone(),
        }
    }

    pub fn admitter(&self) -> vq_admission::Admitter {
        build_admitter(
            self.redis.clone(),
            self.keys.clone(),
            self.clock.clone(),
            self.settings.admission.max_batch,
        )
    }

    /// An admission controller with its own Redis connection, as a separate process has.
    pub async fn own_admitter(&self) -> vq_admission::Admitter {
        let conn = vq_core::store::redis(&self.settings).await.expect("redis");
        build_admitter(
            conn,
            self.keys.clone(),
            self.clock.clone(),
            self.settings.admission.max_batch,
        )
    }

    /// Runs an admission controller as a task until shutdown (or abort).
    pub fn start_admission(&self, tick_ms: u64) -> JoinHandle<()> {
        let a = self.admitter();
        tokio::spawn(a.run(Duration::from_millis(tick_ms), self.trigger.subscribe()))
    }

    pub async fn worker(&self, consumer: &str, claim_idle_ms: u64, batch: usize) -> Worker {
        let mut cfg = self.settings.worker.clone();
        cfg.consumer = consumer.into();
        cfg.claim_idle_ms = claim_idle_ms;
        cfg.batch_size = batch;
        build_worker(&self.settings, &self.stores(), self.keys.clone(), cfg)
            .await
            .expect("worker")
    }

    pub fn run_worker(&self, w: Worker) -> JoinHandle<()> {
        tokio::spawn(w.run(self.trigger.subscribe()))
    }

    /// An order scheduler on the app's clock with the given payment simulation.
    pub fn scheduler(
        &self,
        payment: vq_core::config::Payment,
    ) -> vitaqueue::orders::scheduler::Scheduler {
        build_scheduler(
            &self.settings,
            &self.stores(),
            self.keys.clone(),
            self.clock.clone(),
            payment,
            self.state.accounts.clone(),
        )
    }

    /// Writes every pending reservation to PostgreSQL (worker passes until none is left).
    pub async fn flush_orders(&self) {
        let mut w = self.worker("flush", 60_000, 1000).await;
        while w.step().await.unwrap() > 0 {}
    }
}

impl TestApp {
    /// Webhook delivery as a task until shutdown, as the worker role runs it.
    pub fn start_webhooks(&self) -> JoinHandle<()> {
        let d =
            vitaqueue::build_deliverer(&self.settings, &self.stores(), self.state.accounts.clone())
                .expect("deliverer");
        tokio::spawn(d.run(self.trigger.subscribe()))
    }
}
