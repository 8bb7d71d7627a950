//! The delivery loop of the worker role. Due deliveries are claimed with a lease
//! (`FOR UPDATE SKIP LOCKED`, so workers share the work and never send one delivery twice
//! at once), sent concurrently, and finished in one transaction each: delivered, or retried
//! after an exponential, jittered delay, or given up after `webhooks.max_age`.
//!
//! - Order: a delivery is due only when no earlier event of its ordering key (its order or
//!   drop) is still pending for that endpoint, so one order's events arrive in order.
//! - Slots: each endpoint has at most `webhooks.per_endpoint` deliveries leased at a time,
//!   and every endpoint's due work is looked at on each claim, so a slow or hostile
//!   receiver holds only its own slots and never holds back another endpoint.
//! - Crashes: a worker killed mid-delivery leaves its lease to expire; the delivery is then
//!   claimed again (at least once; receivers deduplicate on the event id).

use crate::send::{self, Job, Outcome, Pii, Sender};
use rand::Rng;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use vq_core::config::Webhooks as Cfg;
use vq_core::Shutdown;

pub struct Deliverer {
    pub(crate) db: PgPool,
    pub(crate) cfg: Cfg,
    sender: Sender,
}

impl Deliverer {
    pub fn new(db: PgPool, cfg: Cfg, pii: Option<Arc<dyn Pii>>) -> anyhow::Result<Deliverer> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .pool_max_idle_per_host(cfg.per_endpoint.max(1))
            .user_agent("VitaQueue-Webhooks/1")
            .dns_resolver(Arc::new(crate::target::PublicOnly {
                allow_private: cfg.allow_private,
            }))
            .build()?;
        Ok(Deliverer {
            db,
            cfg: cfg.clone(),
            sender: Sender { client, cfg, pii },
        })
    }

    /// Runs until shutdown, then lets the deliveries in flight finish (each is bounded by
    /// the timeout) so none is left half-recorded.
    pub async fn run(self, shutdown: Shutdown) {
        let me = Arc::new(self);
        let mut flying: JoinSet<()> = JoinSet::new();
        let cap = me.cfg.max_in_flight.max(1);
        while !shutdown.is_fired() {
            while flying.try_join_next().is_some() {}
            let free = cap.saturating_sub(flying.len());
            let mut claimed = 0;
            if free > 0 {
                match me.claim(free).await {
                    Ok(jobs) => {
                        claimed = jobs.len();
                        for job in jobs {
                            let me = me.clone();
                            flying.spawn(async move { me.deliver(job).await });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries failed"),
                }
            }
            if claimed > 0 && claimed == free {
                tokio::task::yield_now().await;
                continue;
            }
            let mut stop = shutdown.clone();
            tokio::select! {
                _ = stop.wait() => break,
                _ = tokio::time::sleep(me.cfg.poll) => {}
                Some(_) = flying.join_next(), if !flying.is_empty() => {}
            }
        }
        while flying.join_next().await.is_some() {}
        tracing::info!("webhook delivery stopped");
    }

    /// Claims and sends what is due now, all at once; returns how many were sent. For
    /// tests and the benchmark; `run` is the long-lived form.
    pub async fn deliver_due(&self) -> anyhow::Result<usize> {
        let jobs = self.claim(self.cfg.max_in_flight.max(1)).await?;
        let n = jobs.len();
        futures::future::join_all(jobs.into_iter().map(|j| self.deliver(j))).await;
        Ok(n)
    }

    async fn deliver(&self, job: Job) {
        let outcome = send::attempt(&self.sender, &job).await;
        if let Err(e) = self.finish(&job, &outcome).await {
            // The lease expires and the delivery is tried again: at least once.
            tracing::warn!(error = %e, endpoint = %job.endpoint_id, "recording a webhook attempt failed");
        }
    }

    /// Leases up to `n` due deliveries, at most the free slots of each enabled endpoint,
    /// healthy endpoints first.
    async fn claim(&self, n: usize) -> sqlx::Result<Vec<Job>> {
        let lease = self.cfg.lease().as_secs_f64();
        sqlx::query_as::<_, Job>(CLAIM)
            .bind(self.cfg.per_endpoint.max(1) as i64)
            .bind(n as i64)
            .bind(lease)
            .fetch_all(&self.db)
            .await
    }

    /// Records the attempt and its consequence, in one transaction.
    async fn finish(&self, job: &Job, o: &Outcome) -> sqlx::Result<()> {
        let mut tx = self.db.begin().await?;
        let outcome = if o.delivered {
            crate::record::delivered(&mut tx, job, o).await?
        } else {
            let delay = backoff(&self.cfg, job.attempt);
            crate::record::failed(&mut tx, job, o, delay, &self.cfg).await?
        };
        crate::record::attempt(&mut tx, job, o, outcome).await?;
        tx.commit().await?;
        metrics::counter!("vq_webhook_attempts_total", "outcome" => outcome).increment(1);
        metrics::histogram!("vq_webhook_attempt_seconds").record(o.latency.as_secs_f64());
        Ok(())
    }
}

/// The wait before try `attempt + 1`: `retry_base_ms × 2^(attempt-1)`, capped at
/// `retry_max`, plus up to half again at random (so retries of many deliveries spread out).
pub fn backoff(cfg: &Cfg, attempt: i32) -> Duration {
    let doublings = attempt.saturating_sub(1).clamp(0, 30) as u32;
    let d = cfg
        .retry_base_ms
        .saturating_mul(1u32 << doublings)
        .min(cfg.retry_max);
    let jitter = rand::thread_rng().gen_range(0.0..0.5);
    d + d.mul_f64(jitter)
}

const CLAIM: &str = "
WITH busy AS (
  SELECT endpoint_id, count(*) AS n FROM webhook_deliveries
  WHERE state = 'pending' AND lease_until > now() GROUP BY endpoint_id),
pick AS (
  SELECT d.endpoint_id, d.event_seq FROM webhook_endpoints e
  LEFT JOIN busy b ON b.endpoint_id = e.id
  CROSS JOIN LATERAL (
    SELECT d.endpoint_id, d.event_seq FROM webhook_deliveries d
    WHERE d.endpoint_id = e.id AND d.state = 'pending' AND d.next_attempt_at <= now()
      AND (d.lease_until IS NULL OR d.lease_until <= now())
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id
        AND p.ordering_key = d.ordering_key AND p.event_seq < d.event_seq AND p.state = 'pending')
    ORDER BY d.event_seq LIMIT GREATEST($1 - COALESCE(b.n, 0), 0)
    FOR UPDATE SKIP LOCKED) d
  WHERE e.enabled
  ORDER BY e.failing_since IS NOT NULL, random() LIMIT $2)
UPDATE webhook_deliveries w
SET lease_until = now() + make_interval(secs => $3), attempts = w.attempts + 1
FROM pick, webhook_endpoints e, webhook_events v
WHERE w.endpoint_id = pick.endpoint_id AND w.event_seq = pick.event_seq
  AND e.id = w.endpoint_id AND v.seq = w.event_seq
RETURNING w.endpoint_id, w.event_seq, w.attempts AS attempt, e.url, e.secret,
  CASE WHEN e.previous_expires_at > now() THEN e.previous_secret END AS previous_secret,
  e.include_pii, v.id AS event_id, v.type AS event_type, v.created_at, v.data, v.user_id";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_with_bounded_jitter() {
        let cfg = Cfg {
            retry_base_ms: Duration::from_millis(250),
            retry_max: Duration::from_secs(10),
            ..Cfg::default()
        };
        for (attempt, base) in [(1, 250), (2, 500), (3, 1000), (4, 2000), (9, 10_000)] {
            for _ in 0..50 {
                let d = backoff(&cfg, attempt).as_millis() as u64;
                assert!(
                    (base..base + base / 2).contains(&d),
                    "try {attempt}: {d} ms"
                );
            }
        }
    }
}
