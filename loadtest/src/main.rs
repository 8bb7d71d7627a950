//! `loadtest` — the tester's tool. Reads the same VQ_* configuration as the server
//! (JWT secret, Redis, PostgreSQL) to mint buyer tokens and audit the stores.

/// The same allocator as the server (app/src/main.rs): the load generator shares the
/// machine's two cores with it, so its own allocator churn is CPU the server does not get.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use loadtest::drop_run;

#[derive(Parser)]
#[command(name = "loadtest", about = "Drive and audit a VitaQueue drop")]
struct Cli {
    #[arg(long, env = "VQ_CONFIG")]
    config: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a drop, run a crowd through it, check the invariants.
    Drop(drop_run::DropArgs),
    /// Compare PostgreSQL FOR UPDATE, Redis SET NX lock, Lua and VitaQueue side by side.
    Strategies(loadtest::strategies::StrategiesArgs),
    /// Raw EVALSHA of purchase.lua vs VitaQueue's HTTP purchase path, in one run.
    Ceiling(loadtest::ceiling::CeilingArgs),
    /// Raw EVALSHA of join.lua vs `POST /v1/drops/{id}/queue`: joins/s of N fresh accounts.
    JoinCeiling(loadtest::join_ceiling::JoinCeilingArgs),
    /// Purchase latency with and without WAIT for replicas, interleaved in one run.
    WaitCost(loadtest::wait_cost::WaitCostArgs),
    /// An honest drop under concurrent attacks: p99s quiet vs attacked, RSS, 5xx, invariants.
    Abuse(loadtest::abuse::AbuseArgs),
    /// Median time to solve a join's proof of work, per difficulty (no server needed).
    Pow(loadtest::pow_bench::PowArgs),
    /// A running server's RSS under concurrent logins (argon2 behind the password gate).
    Logins(loadtest::logins::LoginsArgs),
    /// Webhook deliveries per second per worker, to a local receiver (scratch database).
    Webhooks(loadtest::webhooks_bench::WebhooksArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = vq_core::Settings::load(cli.config.as_deref())?;
    match cli.cmd {
        Cmd::Drop(args) => {
            let json = args.json.clone();
            let summary = drop_run::run(args, &settings).await?;
            loadtest::summary::print(&summary);
            if let Some(f) = &summary.fairness {
                loadtest::fair::print(f);
            }
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&summary)?)?;
                println!("summary written to {}", path.display());
            }
            if !summary.failures.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Strategies(args) => {
            let r = loadtest::strategies::run(&args, &settings).await?;
            loadtest::strategies::print(&r);
            loadtest::harness::finish(&r, args.json, loadtest::strategies::failures(&r))
        }
        Cmd::Ceiling(args) => {
            let r = loadtest::ceiling::run(&args, &settings).await?;
            loadtest::ceiling::print(&r);
            loadtest::harness::finish(&r, args.json, loadtest::ceiling::failures(&r))
        }
        Cmd::JoinCeiling(args) => {
            let r = loadtest::join_ceiling::run(&args, &settings).await?;
            loadtest::join_ceiling::print(&r);
            let failures = loadtest::join_ceiling::failures(&r);
            loadtest::harness::finish(&r, args.json, failures)
        }
        Cmd::Abuse(args) => {
            let r = loadtest::abuse::run(&args, &settings).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            if let Some(path) = &args.json {
                std::fs::write(path, serde_json::to_string_pretty(&r)?)?;
            }
            for f in &r.failures {
                println!("FAILED: {f}");
            }
            loadtest::abuse::print_ratios(&r);
            if !r.failures.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Pow(args) => {
            let rows = loadtest::pow_bench::run(&args);
            loadtest::pow_bench::print(&rows);
            loadtest::harness::finish(&rows, args.json, Vec::new())
        }
        Cmd::Logins(args) => {
            let r = loadtest::logins::run(&args).await?;
            loadtest::logins::print(&r);
            let failures = loadtest::logins::failures(&r, &args);
            loadtest::harness::finish(&r, args.json.clone(), failures)
        }
        Cmd::Webhooks(args) => {
            let rows = loadtest::webhooks_bench::run(&args, &settings).await?;
            loadtest::webhooks_bench::print(&rows);
            let failures = loadtest::webhooks_bench::failures(&rows);
            loadtest::harness::finish(&rows, args.json, failures)
        }
        Cmd::WaitCost(args) => {
            let r = loadtest::wait_cost::run(&args, &settings).await?;
            loadtest::wait_cost::print(&r);
            loadtest::harness::finish(&r, args.json, loadtest::wait_cost::failures(&r))
        }
    }
}
