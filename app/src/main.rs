//! `vitaqueue` — one binary, several roles: api, admission, worker, or all of them, plus
//! the operator commands. Only command-line parsing lives here; the roles are built by the
//! `vitaqueue` library (`App::build`), the operator commands call into `vq-api`.

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: a crowded node allocates and frees small buffers for
/// every push and frame, and glibc's malloc spent about 30 % of the server's CPU on them
/// (benchmarks/NOTES-2026-11.md, section "10.3 Push path and memory: what changed");
/// mimalloc's per-thread free lists make that a few percent.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use vitaqueue::{App, Opts, Roles, Stores};
use vq_core::auth::{JwtKeys, Role};
use vq_core::domain::{DropId, UserId};
use vq_core::{shutdown, Clock, Keys, Settings};

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
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    /// Refused (exit 2, printing what is at stake) when seqs issued before the loss have no
    /// order: their purchases may have been acknowledged (docs/durability.md).
    Rebuild {
        #[arg(long)]
        drop: i64,
        /// Rebuild anyway, keeping the units at risk off sale.
        #[arg(long)]
        confirm: bool,
        /// With --confirm: sell the units at risk again instead.
        #[arg(long, requires = "confirm")]
        release: bool,
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
    /// Re-check a drop's pre-queue draw from the public fairness endpoint alone (exit 1 on
    /// any mismatch, or when the seed is not revealed yet).
    VerifyShuffle {
        /// Base URL of the api, e.g. http://127.0.0.1:8080
        #[arg(long)]
        api: String,
        #[arg(long)]
        drop: i64,
        /// Your own pseudonym (from GET /v1/drops/{id}/queue), to check you are listed.
        #[arg(long)]
        pseudonym: Option<String>,
    },
    /// Predict a drop before running it: sell-out time, waits, tokens per unit, buyers
    /// served (a seeded model of admission and buyers; see vq_core::simulate).
    Simulate {
        #[arg(long)]
        buyers: u64,
        #[arg(long)]
        stock: u64,
        /// Admissions per second.
        #[arg(long)]
        rate: u64,
        /// Purchase token lifetime (s).
        #[arg(long, default_value_t = 30)]
        token_ttl: u64,
        /// Share of admitted buyers who never buy.
        #[arg(long, default_value_t = 0.0)]
        abandon: f64,
        /// Share of payments declined.
        #[arg(long, default_value_t = 0.0)]
        fail: f64,
        /// Live tokens per unreserved unit.
        #[arg(long, default_value_t = 1.5)]
        overbook: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Webhook tools for integrators.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
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

#[derive(Subcommand)]
enum WebhookCommand {
    /// Check a delivery's `VQ-Signature` header against its body (exit 0 valid, 1 not).
    Verify {
        /// The endpoint's signing secret (`whsec_…`); prefer VQ_WEBHOOK_SECRET.
        #[arg(long, env = "VQ_WEBHOOK_SECRET", hide_env_values = true)]
        secret: String,
        /// The header's value: `t=…,v1=…`.
        #[arg(long)]
        header: String,
        /// A file holding the raw request body, byte for byte.
        #[arg(long)]
        body: std::path::PathBuf,
        /// Refuse a timestamp further than this from now (s); 0 skips the check.
        #[arg(long, default_value_t = 300)]
        tolerance_s: i64,
    },
}

/// `vitaqueue webhook verify`: prints the verdict, exits 0 when the signature holds.
fn verify_webhook(command: &WebhookCommand) -> ! {
    let WebhookCommand::Verify {
        secret,
        header,
        body,
        tolerance_s,
    } = command;
    let body = match std::fs::read(body) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {}: {e}", body.display());
            std::process::exit(1);
        }
    };
    let now = chrono::Utc::now().timestamp();
    match vitaqueue::webhooks::signature::verify(secret, header, &body, now, *tolerance_s) {
        Ok(t) => {
            println!("valid: signed at {t}");
            std::process::exit(0)
        }
        Err(e) => {
            println!("invalid: {e}");
            std::process::exit(1)
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Webhook { command } = &cli.command {
        verify_webhook(command);
    }
    // A pure HTTP client: needs no configuration, keys or stores.
    if let Command::VerifyShuffle {
        api,
        drop,
        pseudonym,
    } = &cli.command
    {
        let ok = vitaqueue::verify::run(api, *drop, pseudonym.as_deref()).await?;
        std::process::exit(if ok { 0 } else { 1 });
    }
    if let Command::Simulate {
        buyers,
        stock,
        rate,
        token_ttl,
        abandon,
        fail,
        overbook,
        seed,
        json,
    } = cli.command
    {
        let p = vq_core::simulate::Params {
            buyers,
            stock,
            rate,
            token_ttl_s: token_ttl,
            abandon,
            fail,
            overbook,
            seed,
        };
        std::process::exit(if vitaqueue::simulate::run(&p, json) {
            0
        } else {
            2
        });
    }
    let settings = Settings::load(cli.config.as_deref())?;
    vq_core::telemetry::init(settings.log_json);
    let (trigger, stop) = shutdown::channel();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        trigger.fire();
    });
    let keys = Keys::new(&settings.redis.prefix);
    let roles = match cli.command {
        Command::Api => Roles::API,
        Command::Admission => Roles::ADMISSION,
        Command::Worker => Roles::WORKER,
        Command::All => Roles::ALL,
        other => return operate(other, &settings, keys).await,
    };
    let opts = Opts {
        roles,
        clock: Clock::Redis,
        shutdown: stop,
    };
    App::build(settings, opts).await?.run_until_stopped().await
}

/// The one-shot operator commands (not roles).
async fn operate(command: Command, settings: &Settings, keys: Keys) -> anyhow::Result<()> {
    match command {
        Command::Api
        | Command::Admission
        | Command::Worker
        | Command::All
        | Command::VerifyShuffle { .. }
        | Command::Webhook { .. }
        | Command::Simulate { .. } => {
            unreachable!(
                "roles are run by App, verify-shuffle and simulate before the settings load"
            )
        }
        Command::Migrate => {
            vq_core::store::postgres(settings).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Reconcile { drop } => {
            let Stores { db, mut redis } = Stores::connect(settings).await?;
            let r = vq_api::stock::reconcile(&db, &mut redis, &keys, DropId::new(drop)?).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            if !r.ok {
                eprintln!("drift detected");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Rebuild {
            drop,
            confirm,
            release,
        } => rebuild(settings, &keys, drop, confirm, release).await,
        Command::CreateManager {
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
            let id = vq_api::accounts::create_manager(settings, &input).await?;
            println!("manager {id} created");
            Ok(())
        }
        Command::Token { role, sub, ttl_s } => token(settings, &role, sub, ttl_s),
    }
}

fn token(
    settings: &Settings,
    role: &str,
    sub: Option<uuid::Uuid>,
    ttl_s: i64,
) -> anyhow::Result<()> {
    let secret = settings
        .auth
        .jwt_secret
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("VQ_AUTH__JWT_SECRET must be set"))?;
    let role = match role {
        "manager" => Role::Manager,
        "shopper" => Role::Shopper,
        other => anyhow::bail!("unknown role {other:?}: use manager or shopper"),
    };
    let user = UserId(sub.unwrap_or_else(uuid::Uuid::new_v4));
    println!("{}", JwtKeys::new(secret).issue(user, role, ttl_s));
    Ok(())
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

async fn rebuild(
    settings: &Settings,
    keys: &Keys,
    drop: i64,
    confirm: bool,
    release: bool,
) -> anyhow::Result<()> {
    use vq_api::drops::recover::{rebuild_checked, Decision, Refused};
    let Stores { db, mut redis } = Stores::connect(settings).await?;
    let decision = match (confirm, release) {
        (false, _) => Decision::Unconfirmed,
        (true, false) => Decision::HoldBack,
        (true, true) => Decision::Release,
    };
    let id = DropId::new(drop)?;
    match rebuild_checked(&db, &mut redis, keys, id, decision, "cli").await? {
        Ok(r) => {
            println!("{}", serde_json::to_string_pretty(&r)?);
            println!(
                "drop {drop}: Redis rebuilt from PostgreSQL, stock {}, held back {}",
                r.stock, r.held_back
            );
            Ok(())
        }
        Err(Refused::NotLost) => {
            eprintln!("drop {drop}: Redis still has its state; nothing rebuilt");
            std::process::exit(1);
        }
        Err(Refused::NeedsConfirm(s)) => {
            println!("{}", serde_json::to_string_pretty(&s)?);
            eprintln!(
                "drop {drop}: NOT rebuilt: {} seqs were issued without an order; up to {} units \
                 may belong to acknowledged purchases lost with Redis. Re-run with --confirm to \
                 rebuild keeping them off sale (or --confirm --release to sell them again).",
                s.unwritten_seqs, s.units_at_risk
            );
            std::process::exit(2);
        }
    }
}
