//! `vitaqueue` — one binary, several roles: api, admission, worker, or all of them.

use clap::{Parser, Subcommand};
use std::sync::Arc;
use std::time::Duration;
use vq_core::auth::{JwtKeys, Role};
use vq_core::domain::{DropId, UserId};
use vq_core::{shutdown, Clock, Keys, Scripts, Settings};

#[derive(Parser)]
#[command(
    name = "vitaqueue",
    about = "Fair waiting room and purchase path for product drops"
)]
struct Cli {
    /// TOML configuration file (layered under VQ_* environment variables).
    #[arg(long, env = "VQ_CONFIG")]
    config: Option<String>,
    #[command(subcommand)]
    role: Role_,
}

#[derive(Subcommand)]
enum Role_ {
    /// HTTP + WebSocket server.
    Api,
    /// Admission controller.
    Admission,
    /// Order writer (Redis Stream → PostgreSQL).
    Worker,
    /// Every role in one process.
    All,
    /// Apply database migrations and exit.
    Migrate,
    /// Compare a drop's stock in Redis and PostgreSQL and report drift (exit 1 on drift).
    Reconcile {
        #[arg(long)]
        drop: i64,
    },
    /// Restore a drop's Redis state (stock, per-buyer counts, config) from PostgreSQL.
    Rebuild {
        #[arg(long)]
        drop: i64,
    },
    /// Create a manager account (the first one, or more); needs the auth keys.
    CreateManager {
        #[arg(long)]
        email: String,
        /// Prefer VQ_MANAGER_PASSWORD: command lines show up in `ps` and shell history.
        #[arg(long, env = "VQ_MANAGER_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        address: String,
        #[arg(long)]
        phone: String,
    },
    /// Print a signed access token (development and load testing).
    Token {
        #[arg(long, default_value = "manager")]
        role: String,
        #[arg(long)]
        sub: Option<uuid::Uuid>,
        #[arg(long, default_value_t = 3600)]
        ttl_s: i64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    vq_core::telemetry::init(settings.log_json);
    let (trigger, stop) = shutdown::channel();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        trigger.fire();
    });
    let keys = Keys::new(&settings.redis.prefix);
    if let (Role_::Admission | Role_::Worker, Some(addr)) = (&cli.role, &settings.metrics.listen) {
        vq_api::observe::listen(addr.parse()?)?;
    }
    match cli.role {
        Role_::Api => {
            vq_api::Application::build(&settings, Clock::Redis, stop)
                .await?
                .run_until_stopped()
                .await
        }
        Role_::Admission => {
            admission(&settings, keys)
                .await?
                .run(Duration::from_millis(settings.admission.tick_ms), stop)
                .await;
            Ok(())
        }
        Role_::Worker => {
            let s = tokio::spawn(scheduler(&settings, keys.clone()).await?.run(stop.clone()));
            worker(&settings, keys).await?.run(stop).await;
            let _ = s.await;
            Ok(())
        }
        Role_::All => {
            let a = admission(&settings, keys.clone()).await?;
            let keys_for_scheduler = keys.clone();
            let w = worker(&settings, keys).await?;
            let tick = Duration::from_millis(settings.admission.tick_ms);
            let ah = tokio::spawn(a.run(tick, stop.clone()));
            let wh = tokio::spawn(w.run(stop.clone()));
            let sh = tokio::spawn(
                scheduler(&settings, keys_for_scheduler)
                    .await?
                    .run(stop.clone()),
            );
            let api = vq_api::Application::build(&settings, Clock::Redis, stop).await?;
            api.run_until_stopped().await?;
            let _ = tokio::join!(ah, wh, sh);
            Ok(())
        }
        Role_::Migrate => {
            vq_core::store::postgres(&settings).await?;
            println!("migrations applied");
            Ok(())
        }
        Role_::Reconcile { drop } => {
            let (db, mut redis) = stores(&settings).await?;
            let r = vq_api::stock::reconcile(&db, &mut redis, &keys, DropId::new(drop)?).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            if !r.ok {
                eprintln!("drift detected");
                std::process::exit(1);
            }
            Ok(())
        }
        Role_::Rebuild { drop } => {
            let (db, mut redis) = stores(&settings).await?;
            let stock = vq_api::stock::rebuild(&db, &mut redis, &keys, DropId::new(drop)?).await?;
            println!("drop {drop}: Redis rebuilt from PostgreSQL, stock {stock}");
            Ok(())
        }
        Role_::CreateManager {
            email,
            password,
            name,
            address,
            phone,
        } => {
            let input = vq_api::accounts::ProfileInput {
                email: Some(email),
                password: Some(password),
                name: Some(name),
                address: Some(address),
                phone: Some(phone),
            };
            let id = vq_api::accounts::create_manager(&settings, &input).await?;
            println!("manager {id} created");
            Ok(())
        }
        Role_::Token { role, sub, ttl_s } => {
            let secret = settings
                .auth
                .jwt_secret
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("VQ_AUTH__JWT_SECRET must be set"))?;
            let role = match role.as_str() {
                "manager" => Role::Manager,
                "shopper" => Role::Shopper,
                other => anyhow::bail!("unknown role {other:?}: use manager or shopper"),
            };
            let user = UserId(sub.unwrap_or_else(uuid::Uuid::new_v4));
            println!("{}", JwtKeys::new(secret).issue(user, role, ttl_s));
            Ok(())
        }
    }
}

async fn admission(settings: &Settings, keys: Keys) -> anyhow::Result<vq_admission::Admitter> {
    let conn = vq_core::store::redis(settings).await?;
    Ok(vq_admission::Admitter::new(
        conn,
        Arc::new(Scripts::default()),
        keys,
        Clock::Redis,
        settings.admission.max_batch,
    ))
}

async fn worker(settings: &Settings, keys: Keys) -> anyhow::Result<vq_worker::Worker> {
    let redis = vq_core::store::redis(settings).await?;
    let db = vq_core::store::postgres(settings).await?;
    vq_worker::Worker::new(
        settings.redis.url.expose(),
        redis,
        db,
        keys,
        settings.worker.clone(),
    )
    .await
}

async fn stores(settings: &Settings) -> anyhow::Result<(sqlx::PgPool, vq_core::RedisConn)> {
    Ok((
        vq_core::store::postgres(settings).await?,
        vq_core::store::redis(settings).await?,
    ))
}

async fn scheduler(
    settings: &Settings,
    keys: Keys,
) -> anyhow::Result<vq_worker::scheduler::Scheduler> {
    let db = vq_core::store::postgres(settings).await?;
    Ok(vq_worker::scheduler::Scheduler {
        db: db.clone(),
        redis: vq_core::store::redis(settings).await?,
        scripts: Arc::new(Scripts::default()),
        keys,
        clock: Clock::Redis,
        orders: settings.orders.clone(),
        payment: settings.payment.clone(),
        provider: Arc::new(vq_worker::payment::SimulatedProvider::from_config(
            &settings.payment,
        )),
        mailer: match vq_api::accounts::Accounts::from_settings(settings)? {
            Some(accounts) => Some(Arc::new(vq_api::accounts::NotifyByMail {
                accounts: Arc::new(accounts),
                db,
            })),
            None => None,
        },
    })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
