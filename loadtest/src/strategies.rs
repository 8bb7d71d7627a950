//! `loadtest strategies`: the seed's comparison in one run, side by side, on the same stock,
//! number of attempts and concurrency: (a) PostgreSQL SELECT … FOR UPDATE, (b) a Redis
//! SET NX lock, (c) a plain Lua script, (d) VitaQueue's full HTTP purchase path.
//! Every strategy starts from fresh state and is checked for oversell from its own store.

mod pg;
mod redis_store;

use crate::harness::{oversold, Measured};
use crate::procstat::{CpuShare, Snapshot};
use crate::{inproc, vq_path};
use serde::Serialize;
use std::time::{Duration, Instant};
use vq_core::auth::JwtKeys;
use vq_core::{Keys, Settings};

/// The seed (Spring Boot MSA) figures this project replaces.
pub const SEED_TPS: f64 = 72.0;
pub const SEED_MEAN_MS: f64 = 117.0;

#[derive(Debug, Clone, clap::Args)]
pub struct StrategiesArgs {
    /// Units of stock each strategy sells.
    #[arg(long, default_value_t = 1000)]
    pub stock: i64,
    /// Purchase attempts per strategy (attempts beyond the stock are rejections).
    #[arg(long, default_value_t = 2000)]
    pub buyers: usize,
    /// Concurrent tasks making the attempts.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Base URL of a running VitaQueue api; without it the server is started in-process.
    #[arg(long)]
    pub api: Option<String>,
    /// Comma-separated subset of: pg, lock, lua, vitaqueue.
    #[arg(long, default_value = "pg,lock,lua,vitaqueue")]
    pub only: String,
    /// Largest PostgreSQL pool for strategy pg (the seed's Hikari pool was of this order).
    #[arg(long, default_value_t = 16)]
    pub pg_pool: usize,
    /// Time bound per strategy (s); attempts not started by then are reported as unstarted.
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Count only these processes under these names in the CPU shares, e.g.
    /// `vitaqueue=1234,redis-server=1200` (same-named processes of others become "other").
    #[arg(long)]
    pub cpu_pids: Option<String>,
    #[command(flatten)]
    pub sources: vq_path::SourceArgs,
}

/// What every strategy runs with.
#[derive(Debug, Clone)]
pub struct Plan {
    pub stock: i64,
    pub buyers: usize,
    pub concurrency: usize,
    pub pg_pool: usize,
    pub limit: Duration,
    pub sources: vq_path::SourceArgs,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub strategy: &'static str,
    #[serde(flatten)]
    pub measured: Measured,
    /// Units gone from the store's stock counter.
    pub sold: i64,
    /// Orders the store holds after the run.
    pub recorded_orders: i64,
    pub oversold: i64,
    /// Cores used by each process group while the attempts ran.
    pub cpu: CpuShare,
    pub note: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: String,
    pub stock: i64,
    pub buyers: usize,
    pub concurrency: usize,
    pub rows: Vec<Row>,
}

/// `nproc` and the CPU model, for the report header.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {model}")
}

pub async fn run(a: &StrategiesArgs, settings: &Settings) -> anyhow::Result<Report> {
    anyhow::ensure!(
        (1..=10_000_000).contains(&a.stock),
        "--stock must be 1..=10000000"
    );
    anyhow::ensure!(
        (1..=1_000_000).contains(&a.buyers),
        "--buyers must be 1..=1000000"
    );
    anyhow::ensure!(a.concurrency >= 1, "--concurrency must be at least 1");
    if let Some(spec) = &a.cpu_pids {
        crate::procstat::pin(spec)?;
    }
    let plan = Plan {
        stock: a.stock,
        buyers: a.buyers,
        concurrency: a.concurrency,
        pg_pool: a.pg_pool.max(1),
        limit: Duration::from_secs(a.timeout_s.max(1)),
        sources: a.sources.clone(),
    };
    let wanted: Vec<&str> = a.only.split(',').map(str::trim).collect();
    let server = match &a.api {
        Some(_) => None,
        None => Some(inproc::start(settings).await?),
    };
    let s = server.as_ref().map_or(settings, |s| &s.settings);
    let api = a.api.clone().or(server.as_ref().map(|s| s.api.clone()));
    let result = all(&plan, &wanted, s, api.as_deref().unwrap_or_default()).await;
    if let Some(server) = server {
        server.stop().await?;
    }
    Ok(Report {
        machine: machine(),
        stock: a.stock,
        buyers: a.buyers,
        concurrency: a.concurrency,
        rows: result?,
    })
}

async fn all(plan: &Plan, wanted: &[&str], s: &Settings, api: &str) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let redis = vq_core::store::redis(s).await?;
    for name in wanted {
        println!("running {name} …");
        rows.push(match *name {
            "pg" => pg::run(s.database.url.expose(), plan).await?,
            "lock" => redis_store::lock(&redis, plan).await?,
            "lua" => redis_store::lua(&redis, plan).await?,
            "vitaqueue" => vitaqueue(plan, s, api).await?,
            other => anyhow::bail!("unknown strategy {other:?}: use pg, lock, lua, vitaqueue"),
        });
    }
    Ok(rows)
}

/// (d) The real thing over HTTP; the order reaches PostgreSQL through the stream worker, so
/// the audit waits for it and reports how long PostgreSQL lagged behind the last purchase.
pub async fn vitaqueue(plan: &Plan, s: &Settings, api: &str) -> anyhow::Result<Row> {
    let secret = s
        .auth
        .jwt_secret
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("VQ_AUTH__JWT_SECRET must be set to mint tokens"))?;
    let jwt = JwtKeys::new(secret);
    let http = vq_path::Clients::new(plan.concurrency, &plan.sources)?;
    let (n, c) = (plan.buyers, plan.concurrency);
    let p = vq_path::prepare(&http, api, &jwt, n, plan.stock, c, plan.limit).await?;
    let cpu = Snapshot::take();
    let m = vq_path::fire(&http, api, &p, c, plan.limit).await;
    let cpu = cpu.share_until(&Snapshot::take());
    let ended = Instant::now();
    let mut redis = vq_core::store::redis(s).await?;
    let db = vq_core::store::postgres(s).await?;
    let keys = Keys::new(&s.redis.prefix);
    let wait = Duration::from_secs(60);
    let v = crate::audit::read(&mut redis, &db, &keys, p.drop, wait)
        .await
        .map_err(|e| audit_error(p.drop, e))?;
    db.close().await;
    Ok(Row {
        strategy: "vitaqueue_http",
        sold: p.stock - v.reconciliation.redis_remaining,
        recorded_orders: v.orders_in_db,
        oversold: oversold(p.stock, v.orders_in_db, v.reconciliation.redis_remaining),
        note: format!(
            "drop {}; from {}; orders in PostgreSQL {:.2}s after the last response",
            p.drop.get(),
            http.describe(),
            ended.elapsed().as_secs_f64()
        ),
        measured: m,
        cpu,
    })
}

/// The audit reads the server's stores through this process's VQ_* settings; when they
/// point elsewhere the drop's keys are missing, so say which settings must match.
pub fn audit_error(drop: vq_core::domain::DropId, e: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "auditing drop {}: {e:#} (with --api, VQ_REDIS__URL, VQ_REDIS__PREFIX and \
         VQ_DATABASE__URL must be the server's)",
        drop.get()
    )
}

pub fn print(r: &Report) {
    println!(
        "machine: {} | stock {} | attempts {} | concurrency {}",
        r.machine, r.stock, r.buyers, r.concurrency
    );
    println!(
        "{:<20} {:>9} {:>11} {:>8} {:>8} {:>8} {:>6} {:>6} {:>8} {:>6}",
        "strategy",
        "TPS",
        "purchases/s",
        "mean_ms",
        "p50_ms",
        "p99_ms",
        "sold",
        "orders",
        "oversold",
        "errors"
    );
    for row in &r.rows {
        let m = &row.measured;
        println!(
            "{:<20} {:>9.0} {:>11.0} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>6} {:>8} {:>6}",
            row.strategy,
            m.attempts_per_s,
            m.purchases_per_s,
            m.mean_ms,
            m.p50_ms,
            m.p99_ms,
            row.sold,
            row.recorded_orders,
            row.oversold,
            m.errors
        );
    }
    for row in &r.rows {
        let e = row.measured.first_error.as_deref().unwrap_or("-");
        println!(
            "  {}: cpu cores [{}]; {}; first error: {e}",
            row.strategy,
            row.cpu.describe(),
            row.note
        );
    }
    if let Some(vq) = r.rows.iter().find(|x| x.strategy == "vitaqueue_http") {
        for other in r.rows.iter().filter(|x| x.strategy != vq.strategy) {
            println!(
                "  vitaqueue / {}: {:.1}x TPS, {:.1}x purchases/s",
                other.strategy,
                vq.measured.attempts_per_s / other.measured.attempts_per_s.max(1e-9),
                vq.measured.purchases_per_s / other.measured.purchases_per_s.max(1e-9)
            );
        }
        println!(
            "  vitaqueue / seed (72 TPS, 117 ms mean): {:.0}x TPS, mean {:.1}x lower",
            vq.measured.attempts_per_s / SEED_TPS,
            SEED_MEAN_MS / vq.measured.mean_ms.max(1e-9)
        );
    }
}

/// Failures that make the command exit non-zero: oversell, or attempts that errored.
pub fn failures(r: &Report) -> Vec<String> {
    let mut f = Vec::new();
    for row in &r.rows {
        if row.oversold > 0 {
            f.push(format!("{} oversold by {}", row.strategy, row.oversold));
        }
        if row.measured.errors > 0 {
            f.push(format!(
                "{}: {} attempts failed",
                row.strategy, row.measured.errors
            ));
        }
    }
    f
}
