//! One constructor per role, each from the shared stores: the composition root uses them,
//! and so do tests that run a role on its own (to pause or abort it).

use std::sync::Arc;
use vq_admission::Admitter;
use vq_api::accounts::{Accounts, NotifyByMail, WebhookPii};
use vq_core::config::{Payment, Worker as WorkerCfg};
use vq_core::{Clock, Keys, RedisConn, Scripts, Settings};
use vq_orders::notify::NotifyMailer;
use vq_orders::payment::SimulatedProvider;
use vq_orders::scheduler::Scheduler;
use vq_worker::Worker;

/// What every role of one process shares: one Redis connection and one PostgreSQL pool.
#[derive(Clone)]
pub struct Stores {
    pub redis: RedisConn,
    pub db: sqlx::PgPool,
}

impl Stores {
    /// Connects both stores and runs the migrations: once per process.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Stores> {
        Ok(Stores {
            redis: vq_core::store::redis(settings).await?,
            db: vq_core::store::postgres(settings).await?,
        })
    }
}

/// An admission controller on `redis` (the shared connection, or a test's own one).
/// Its autopilot decides every `admission.autopilot_ms` of the defaults; see [`App::build`]
/// for the configured interval.
pub fn build_admitter(redis: RedisConn, keys: Keys, clock: Clock, max_batch: u32) -> Admitter {
    let every = vq_core::config::Admission::default().autopilot_ms;
    Admitter::new(redis, Arc::new(Scripts::default()), keys, clock, max_batch)
        .with_autopilot(every, vq_orders::GROUP)
}

/// The stream → PostgreSQL writer. On one Redis server it opens its own reader connection
/// (blocking reads must not stall the shared one); see `Worker::new`.
pub async fn build_worker(
    settings: &Settings,
    stores: &Stores,
    keys: Keys,
    cfg: WorkerCfg,
) -> anyhow::Result<Worker> {
    Worker::new(
        settings.redis.url.expose(),
        stores.redis.clone(),
        stores.db.clone(),
        keys,
        cfg,
    )
    .await
}

/// The order scheduler with the given payment simulation; it emails notifications when
/// accounts (and so addresses) are set up.
pub fn build_scheduler(
    settings: &Settings,
    stores: &Stores,
    keys: Keys,
    clock: Clock,
    payment: Payment,
    accounts: Option<Arc<Accounts>>,
) -> Scheduler {
    Scheduler {
        db: stores.db.clone(),
        redis: stores.redis.clone(),
        scripts: Arc::new(Scripts::default()),
        keys,
        clock,
        orders: settings.orders.clone(),
        provider: Arc::new(SimulatedProvider::from_config(
            &payment,
            stores.redis.clone(),
            &settings.redis.prefix,
        )),
        payment,
        mailer: accounts.map(|accounts| {
            Arc::new(NotifyByMail {
                accounts,
                db: stores.db.clone(),
            }) as Arc<dyn NotifyMailer>
        }),
    }
}

/// Webhook delivery (it runs beside the stream writer in the worker role); endpoints that
/// ask for personal data get it decrypted through the accounts, when they are set up.
pub fn build_deliverer(
    settings: &Settings,
    stores: &Stores,
    accounts: Option<Arc<Accounts>>,
) -> anyhow::Result<vq_webhooks::Deliverer> {
    let pii = accounts.map(|accounts| {
        Arc::new(WebhookPii {
            accounts,
            db: stores.db.clone(),
        }) as Arc<dyn vq_webhooks::Pii>
    });
    vq_webhooks::Deliverer::new(stores.db.clone(), settings.webhooks.clone(), pii)
}
