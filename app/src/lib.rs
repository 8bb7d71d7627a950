//! The composition root: builds every role of a process from `Settings` once and runs them.
//!
//! `App::build` connects the stores once (one Redis connection set, one PostgreSQL pool,
//! one migration run), then builds the roles asked for: api, admission, worker (stream →
//! PostgreSQL) and scheduler (order life). `run_until_stopped` spawns each role, reports
//! every role's exit (which role, and whether it ended cleanly, with an error or by a
//! panic), stops the others when one fails, and returns once every role task has let go
//! of its exit sender: the drain is the channel closing, not a poll.
//!
//! The `vitaqueue` binary, the api tests and the load generator all build roles here.
//!
//! Arrows: `vq-core` ← `vq-orders` ← `vq-admission`, `vq-worker`, `vq-api` ← `vitaqueue`
//! (this crate) ← `loadtest`. Nothing depends on this crate except tests and `loadtest`.

mod roles;
mod run;
pub mod simulate;
pub mod verify;

pub use roles::{build_admitter, build_deliverer, build_scheduler, build_worker, Stores};
pub use vq_admission as admission;
pub use vq_api as api;
pub use vq_core as core;
pub use vq_orders as orders;
pub use vq_webhooks as webhooks;
pub use vq_worker as worker;

use std::sync::Arc;
use vq_core::shutdown::{self, Trigger};
use vq_core::{Clock, Keys, Settings, Shutdown};

/// Which roles a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles {
    pub api: bool,
    pub admission: bool,
    /// The stream → PostgreSQL writer, and webhook delivery.
    pub worker: bool,
    /// The order scheduler (runs beside the writer in the `worker` command).
    pub scheduler: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        api: true,
        admission: true,
        worker: true,
        scheduler: true,
    };
    pub const API: Roles = Roles {
        api: true,
        admission: false,
        worker: false,
        scheduler: false,
    };
    pub const ADMISSION: Roles = Roles {
        api: false,
        admission: true,
        worker: false,
        scheduler: false,
    };
    pub const WORKER: Roles = Roles {
        api: false,
        admission: false,
        worker: true,
        scheduler: true,
    };
}

pub struct Opts {
    pub roles: Roles,
    pub clock: Clock,
    /// Fired by the caller (signal handler, test) to stop every role.
    pub shutdown: Shutdown,
}

/// The built roles of one process, ready to run.
pub struct App {
    stores: Stores,
    keys: Keys,
    /// The roles' own shutdown: fired by the caller's, or by the root when a role fails.
    trigger: Arc<Trigger>,
    outer: Shutdown,
    settings: Settings,
    api: Option<vq_api::Application>,
    admission: Option<vq_admission::Admitter>,
    worker: Option<vq_worker::Worker>,
    scheduler: Option<vq_orders::scheduler::Scheduler>,
    webhooks: Option<vq_webhooks::Deliverer>,
}

impl App {
    pub async fn build(settings: Settings, opts: Opts) -> anyhow::Result<App> {
        let stores = Stores::connect(&settings).await?;
        let keys = Keys::new(&settings.redis.prefix);
        let (trigger, stop) = shutdown::channel();
        let r = opts.roles;
        let api = match r.api {
            true => Some(
                vq_api::Application::build(
                    &settings,
                    stores.redis.clone(),
                    stores.db.clone(),
                    opts.clock.clone(),
                    stop.clone(),
                )
                .await?,
            ),
            false => None,
        };
        if let (false, Some(addr)) = (r.api, &settings.metrics.listen) {
            vq_api::observe::listen(addr.parse()?)?;
            stores.redis.publish_durability();
        }
        let admission = r.admission.then(|| {
            let m = settings.admission.max_batch;
            build_admitter(stores.redis.clone(), keys.clone(), opts.clock.clone(), m)
                .with_autopilot(settings.admission.autopilot_ms, vq_orders::GROUP)
        });
        let worker = match r.worker {
            true => {
                Some(build_worker(&settings, &stores, keys.clone(), settings.worker.clone()).await?)
            }
            false => None,
        };
        let scheduler = match r.scheduler {
            true => Some(scheduler_role(
                &settings,
                &stores,
                &keys,
                &opts.clock,
                api.as_ref(),
            )?),
            false => None,
        };
        let webhooks = match r.worker {
            true => Some(build_deliverer(
                &settings,
                &stores,
                accounts_of(&settings, api.as_ref())?,
            )?),
            false => None,
        };
        Ok(App {
            stores,
            keys,
            trigger: Arc::new(trigger),
            outer: opts.shutdown,
            settings,
            api,
            admission,
            worker,
            scheduler,
            webhooks,
        })
    }

    /// The api's port (0 asked for a free one), when this process serves the api.
    pub fn port(&self) -> Option<u16> {
        self.api.as_ref().map(|a| a.port())
    }

    /// The api's state, for callers outside the server (tests); it does not delay the stop.
    pub fn api_state(&self) -> Option<vq_api::AppState> {
        self.api.as_ref().map(|a| a.state())
    }

    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// The scheduler emails notifications through the api's accounts when this process serves
/// the api, or through its own when it does not.
fn scheduler_role(
    settings: &Settings,
    stores: &Stores,
    keys: &Keys,
    clock: &Clock,
    api: Option<&vq_api::Application>,
) -> anyhow::Result<vq_orders::scheduler::Scheduler> {
    let accounts = accounts_of(settings, api)?;
    Ok(build_scheduler(
        settings,
        stores,
        keys.clone(),
        clock.clone(),
        settings.payment.clone(),
        accounts,
    ))
}

/// The api's accounts when this process serves the api, or its own when it does not.
fn accounts_of(
    settings: &Settings,
    api: Option<&vq_api::Application>,
) -> anyhow::Result<Option<Arc<vq_api::accounts::Accounts>>> {
    Ok(match api {
        Some(a) => a.state().accounts.clone(),
        None => vq_api::accounts::Accounts::from_settings(settings)?.map(Arc::new),
    })
}
