//! The order scheduler: time-driven status moves, the restock outbox, the Redis → PostgreSQL
//! stock sync, simulated buyers' payments and pre-queue notifications. Time comes from an
//! injectable clock, so tests run days of order life in milliseconds. Several schedulers may
//! run at once: sweeps skip rows others hold, and restocks are idempotent.

use crate::payment::PaymentProvider;
use crate::{OrderId, Status};
use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use redis::AsyncCommands;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use vq_core::config::{Orders as OrdersCfg, Payment as PaymentCfg};
use vq_core::domain::DropId;
use vq_core::{Clock, Keys, RedisConn, Scripts, Shutdown};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub autopaid: u64,
    pub abandoned: u64,
    /// Orders a crash left in CHARGING, finalised after asking the provider again.
    pub recovered: u64,
    pub refunded: u64,
    pub expired: u64,
    pub shipped: u64,
    pub delivered: u64,
    pub returned: u64,
    pub restocked: usize,
    /// Restocks left pending because their drop needs a rebuild.
    pub restocks_deferred: usize,
    pub synced: usize,
    pub notified: u64,
    pub emailed: u64,
    /// Drop phases announced to webhooks (pre-queue opened, live, sold out).
    pub announced: u64,
}

pub struct Scheduler {
    pub db: PgPool,
    pub redis: RedisConn,
    pub scripts: Arc<Scripts>,
    pub keys: Keys,
    pub clock: Clock,
    pub orders: OrdersCfg,
    pub payment: PaymentCfg,
    pub provider: Arc<dyn PaymentProvider>,
    /// Sends notification emails; None when accounts (and so addresses) are not set up.
    pub mailer: Option<Arc<dyn crate::notify::NotifyMailer>>,
}

fn secs(s: u64) -> Span {
    Span::seconds(s as i64)
}

impl Scheduler {
    pub fn now(&self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.clock.now_ms())
            .single()
            .unwrap_or_else(Utc::now)
    }

    pub async fn tick(&mut self) -> anyhow::Result<TickReport> {
        let at = self.now();
        let mut r = TickReport::default();
        if self.payment.autopay {
            (r.autopaid, r.abandoned) = self.autopay(at).await?;
        }
        r.recovered = self.recover_charging(at).await?;
        [r.expired, r.shipped, r.delivered, r.returned] = self.sweeps(at).await?;
        let db = &self.db.clone();
        r.refunded = crate::refund::refund_all_due(db, self.provider.as_ref(), at).await?;
        let pass = crate::restock::apply_pending_pass(
            db,
            &mut self.redis,
            &self.scripts,
            &self.keys,
            None,
            at,
        )
        .await?;
        (r.restocked, r.restocks_deferred) = (pass.applied, pass.deferred);
        r.announced = crate::events::announce_phases(db, at).await?;
        r.synced = self.sync_stock(at, &mut r.announced).await?;
        r.notified = crate::notify::prequeue_opened(db, &mut self.redis, &self.keys, at).await?;
        if let Some(m) = &self.mailer {
            r.emailed = crate::notify::email_pending(db, m.as_ref(), at).await?;
        }
        for (to, n) in [
            ("EXPIRED", r.expired),
            ("RECOVERED", r.recovered),
            ("SHIPPING", r.shipped),
            ("DELIVERED", r.delivered),
            ("RETURNED", r.returned),
        ] {
            metrics::counter!("vq_order_transitions_total", "to" => to).increment(n);
        }
        metrics::counter!("vq_restocks_applied_total").increment(r.restocked as u64);
        Ok(r)
    }

    /// The time-driven moves: unpaid orders expire, paid ones ship, shipped ones arrive,
    /// requested returns complete. Returns how many moved, in that order.
    async fn sweeps(&self, at: DateTime<Utc>) -> sqlx::Result<[u64; 4]> {
        let c = &self.orders;
        let moves = [
            (
                Status::PendingPayment,
                "reserved_at",
                c.payment_ttl_s,
                Status::Expired,
            ),
            (Status::Paid, "paid_at", c.ship_after_s, Status::Shipping),
            (
                Status::Shipping,
                "shipped_at",
                c.deliver_after_s,
                Status::Delivered,
            ),
            (
                Status::ReturnRequested,
                "return_requested_at",
                c.return_process_s,
                Status::Returned,
            ),
        ];
        let mut moved = [0; 4];
        for (n, (from, since, after, to)) in moved.iter_mut().zip(moves) {
            *n = crate::sweep(&self.db, from, since, at - secs(after), to, at).await?;
        }
        Ok(moved)
    }

    /// Simulated buyers: each new order is either abandoned (it will expire) or paid.
    async fn autopay(&self, at: DateTime<Utc>) -> anyhow::Result<(u64, u64)> {
        let ids: Vec<OrderId> = sqlx::query_scalar(
            "SELECT id FROM orders WHERE status = 'PENDING_PAYMENT' AND payment_attempted_at IS NULL \
             ORDER BY id LIMIT 500",
        )
        .fetch_all(&self.db)
        .await?;
        let (mut paid, mut abandoned) = (0, 0);
        for id in ids {
            if rand::random::<f64>() < self.payment.abandon_rate {
                sqlx::query("UPDATE orders SET payment_attempted_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(at)
                    .execute(&self.db)
                    .await?;
                abandoned += 1;
            } else {
                match crate::pay(&self.db, self.provider.as_ref(), id, None, "pm_card_ok", at).await
                {
                    Ok(o) => {
                        paid += 1;
                        self.settle(&o).await;
                    }
                    Err(crate::TransitionError::Db(e)) => return Err(e.into()),
                    Err(_) => {} // cancelled or expired meanwhile
                }
            }
        }
        Ok((paid, abandoned))
    }

    /// Orders left in CHARGING longer than `charge_recover_after_s` (the api crashed or lost
    /// its connection mid-charge): asks the provider again with the same idempotency key,
    /// which answers from memory (or charges now if the first call never arrived), and
    /// finalises. Returns how many were finalised.
    async fn recover_charging(&self, at: DateTime<Utc>) -> anyhow::Result<u64> {
        let due = at - secs(self.orders.charge_recover_after_s);
        let stuck = sqlx::query_as::<_, crate::Order>(&format!(
            "SELECT {} FROM orders WHERE status = 'CHARGING' AND payment_attempted_at <= $1 \
             ORDER BY id LIMIT 100",
            crate::COLUMNS
        ))
        .bind(due)
        .fetch_all(&self.db)
        .await?;
        let mut n = 0;
        for order in stuck {
            let done = crate::pay::resolve(&self.db, self.provider.as_ref(), &order, at).await?;
            tracing::info!(order = order.id.get(), status = %done.status, "charge recovered");
            self.settle(&done).await;
            n += 1;
        }
        Ok(n)
    }

    async fn settle(&self, order: &crate::Order) {
        let mut conn = self.redis.clone();
        crate::pay::settle(&mut conn, &self.scripts, &self.keys, order).await;
    }

    /// Copies each drop's live Redis stock into PostgreSQL (for reports and reconcile); a drop
    /// found at 0 is announced sold out (once).
    async fn sync_stock(&mut self, at: DateTime<Utc>, sold_out: &mut u64) -> anyhow::Result<usize> {
        let ids: Vec<i64> = self.redis.smembers(self.keys.stream_drops()).await?;
        let mut n = 0;
        for id in ids {
            let Ok(drop) = DropId::new(id) else { continue };
            let left: Option<i32> = self.redis.get(self.keys.drop(drop).stock()).await?;
            if let Some(left) = left {
                sqlx::query("UPDATE drops SET remaining_synced = $2, synced_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(left)
                    .bind(at)
                    .execute(&self.db)
                    .await?;
                if left <= 0 {
                    *sold_out +=
                        u64::from(crate::events::announce_sold_out(&self.db, id, at).await?);
                }
                n += 1;
            }
        }
        Ok(n)
    }

    pub async fn run(mut self, shutdown: Shutdown) {
        let every = Duration::from_millis(self.orders.scheduler_tick_ms.max(10));
        while !shutdown.is_fired() {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "scheduler tick failed");
            }
            let mut stop = shutdown.clone();
            tokio::select! {
                _ = stop.wait() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
        tracing::info!("scheduler stopped");
    }
}
