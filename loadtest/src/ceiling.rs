//! `loadtest ceiling`: how close VitaQueue's HTTP purchase path gets to the bare cost of its
//! own purchase script. In one run it prepares two identical drops (same N admitted buyers,
//! stock N), burns one drop's tokens with raw EVALSHA of purchase.lua through
//! `vq_core::Scripts` (no HTTP, no auth, no JSON), the other's through
//! `POST /v1/drops/{id}/purchase`, and prints both rates and their ratio.

use crate::harness::{drive, oversold, Attempt, Measured};
use crate::procstat::{CpuShare, Snapshot};
use crate::strategies::audit_error;
use crate::{inproc, vq_path};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use vq_core::auth::JwtKeys;
use vq_core::domain::Quantity;
use vq_core::scripts::PurchaseOutcome;
use vq_core::{Clock, Keys, Scripts, Settings};

/// The target (BENCHMARKS.md, section "Targets"): the HTTP path at ≥ 60% of the raw
/// script rate (the first target was 25%).
pub const TARGET_RATIO: f64 = 0.60;

#[derive(Debug, Clone, clap::Args)]
pub struct CeilingArgs {
    /// Purchases per path (each drop has this many admitted buyers and this much stock).
    #[arg(long, default_value_t = 20_000)]
    pub purchases: usize,
    /// Concurrent tasks per path.
    #[arg(long, default_value_t = 128)]
    pub concurrency: usize,
    /// Multiplexed Redis connections the raw path spreads its calls over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Base URL of a running VitaQueue api; without it the server is started in-process.
    #[arg(long)]
    pub api: Option<String>,
    /// Time bound per path (s).
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Count only these processes under these names in the CPU shares, e.g.
    /// `vitaqueue=1234,redis-server=1200` (same-named processes of others become "other").
    #[arg(long)]
    pub cpu_pids: Option<String>,
    #[command(flatten)]
    pub sources: vq_path::SourceArgs,
    /// Waits for a line on stdin before the HTTP phase (after setup and the raw phase), so
    /// a profiler of the server can be zeroed there: `callgrind_control -z`.
    #[arg(long)]
    pub pause_before_http: bool,
    /// The HTTP client of the purchase phase: `lean` (keep-alive HTTP/1.1 in the way of wrk,
    /// see lean_http.rs) or `reqwest`. Setup always uses reqwest.
    #[arg(long, value_enum, default_value_t = HttpClient::Lean)]
    pub http_client: HttpClient,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum HttpClient {
    Lean,
    Reqwest,
}

#[derive(Debug, Clone, Serialize)]
pub struct PathRow {
    pub path: &'static str,
    #[serde(flatten)]
    pub measured: Measured,
    pub oversold: i64,
    pub orders_in_db: i64,
    pub cpu: CpuShare,
}

#[derive(Debug, Serialize)]
pub struct CeilingReport {
    pub machine: String,
    pub purchases: usize,
    pub concurrency: usize,
    pub http_client: HttpClient,
    /// Loopback addresses the HTTP buyers came from (per-address limits as shipped).
    pub sources: String,
    pub raw: PathRow,
    pub http: PathRow,
    /// HTTP purchases/s divided by raw EVALSHA purchases/s.
    pub ratio: f64,
}

pub async fn run(a: &CeilingArgs, settings: &Settings) -> anyhow::Result<CeilingReport> {
    anyhow::ensure!(
        (1..=1_000_000).contains(&a.purchases),
        "--purchases must be 1..=1000000"
    );
    if let Some(spec) = &a.cpu_pids {
        crate::procstat::pin(spec)?;
    }
    let (raw, http) = inproc::against(
        &a.api,
        settings,
        |s, api| async move { both(a, &s, &api).await },
    )
    .await?;
    Ok(CeilingReport {
        machine: crate::strategies::machine(),
        purchases: a.purchases,
        concurrency: a.concurrency,
        http_client: a.http_client,
        sources: a.sources.describe(),
        ratio: http.measured.purchases_per_s / raw.measured.purchases_per_s.max(1e-9),
        raw,
        http,
    })
}

async fn both(a: &CeilingArgs, s: &Settings, api: &str) -> anyhow::Result<(PathRow, PathRow)> {
    let secret = s
        .auth
        .jwt_secret
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("VQ_AUTH__JWT_SECRET must be set to mint tokens"))?;
    let jwt = JwtKeys::new(secret);
    let (n, c) = (a.purchases, a.concurrency.max(1));
    let limit = Duration::from_secs(a.timeout_s.max(1));
    let http = vq_path::Clients::new(c, &a.sources)?;
    let stock = n as i64;
    let raw_drop = vq_path::prepare(&http, api, &jwt, n, stock, c, limit).await?;
    let http_drop = vq_path::prepare(&http, api, &jwt, n, stock, c, limit).await?;
    let keys = Keys::new(&s.redis.prefix);

    let (raw, raw_cpu) = fire_raw(a, s, &keys, &raw_drop, limit).await?;
    let mut redis = vq_core::store::redis(s).await?;
    let db = vq_core::store::postgres(s).await?;
    let wait = Duration::from_secs(60);
    // The HTTP phase starts once the worker has written the raw phase's orders, so it does
    // not pay for the raw phase's PostgreSQL writes (the raw phase never pays for its own:
    // they trail it).
    let raw_view = crate::audit::read(&mut redis, &db, &keys, raw_drop.drop, wait)
        .await
        .map_err(|e| audit_error(raw_drop.drop, e))?;
    if a.pause_before_http {
        println!("paused before the HTTP phase; press Enter to go on");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
    }
    let lean = crate::lean_http::Pool::new(api, a.sources.addrs())?;
    let cpu = Snapshot::take();
    let over_http = match a.http_client {
        HttpClient::Lean => crate::lean_http::fire(&lean, &http_drop, c, limit).await,
        HttpClient::Reqwest => vq_path::fire(&http, api, &http_drop, c, limit).await,
    };
    let http_cpu = cpu.share_until(&Snapshot::take());
    if a.pause_before_http {
        println!("http phase done");
    }
    let http_view = crate::audit::read(&mut redis, &db, &keys, http_drop.drop, wait)
        .await
        .map_err(|e| audit_error(http_drop.drop, e))?;
    let row = |path, p: &vq_path::Prepared, measured, v: crate::audit::StoreView, cpu| PathRow {
        path,
        measured,
        oversold: oversold(p.stock, v.orders_in_db, v.reconciliation.redis_remaining),
        orders_in_db: v.orders_in_db,
        cpu,
    };
    let rows = (
        row("raw_evalsha", &raw_drop, raw, raw_view, raw_cpu),
        row("vitaqueue_http", &http_drop, over_http, http_view, http_cpu),
    );
    db.close().await;
    Ok(rows)
}

/// The raw path: EVALSHA of purchase.lua straight on Redis connections, no HTTP.
async fn fire_raw(
    a: &CeilingArgs,
    s: &Settings,
    keys: &Keys,
    raw_drop: &vq_path::Prepared,
    limit: Duration,
) -> anyhow::Result<(Measured, CpuShare)> {
    let (n, c) = (a.purchases, a.concurrency.max(1));
    let mut conns = Vec::new();
    for _ in 0..a.connections.max(1) {
        conns.push(vq_core::store::redis(s).await?);
    }
    let conns = Arc::new(conns);
    let scripts = Arc::new(Scripts::default());
    let buyers = Arc::new(raw_drop.buyers.clone());
    let k = Arc::new(keys.drop(raw_drop.drop));
    let one = Quantity::new(1)?;
    let cpu = Snapshot::take();
    let raw = drive(n, c, limit, move |i| {
        let (conns, scripts, buyers, k) =
            (conns.clone(), scripts.clone(), buyers.clone(), k.clone());
        async move {
            let mut conn = conns[i % conns.len()].clone();
            let b = &buyers[i];
            let out = scripts
                .purchase(&mut conn, &k, &b.token, b.user, one, &Clock::Redis)
                .await?;
            match out {
                PurchaseOutcome::Reserved { .. } => Ok(Attempt::Bought),
                PurchaseOutcome::Rejected(r) => {
                    anyhow::bail!("raw purchase rejected: {}", r.code())
                }
            }
        }
    })
    .await;
    Ok((raw, cpu.share_until(&Snapshot::take())))
}

pub fn print(r: &CeilingReport) {
    println!(
        "machine: {} | {} purchases per path | concurrency {} | HTTP from {} ({:?} client)",
        r.machine, r.purchases, r.concurrency, r.sources, r.http_client
    );
    println!(
        "{:<16} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "path", "purchases/s", "mean_ms", "p50_ms", "p99_ms", "max_ms", "oversold", "errors"
    );
    for row in [&r.raw, &r.http] {
        let m = &row.measured;
        println!(
            "{:<16} {:>11.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>6}",
            row.path,
            m.purchases_per_s,
            m.mean_ms,
            m.p50_ms,
            m.p99_ms,
            m.max_ms,
            row.oversold,
            m.errors
        );
    }
    for row in [&r.raw, &r.http] {
        let e = row.measured.first_error.as_deref().unwrap_or("-");
        println!(
            "  {}: cpu cores [{}]; orders in PostgreSQL {}; first error: {e}",
            row.path,
            row.cpu.describe(),
            row.orders_in_db
        );
    }
    println!(
        "  vitaqueue_http / raw_evalsha = {:.1}% (target ≥ {:.0}%)",
        r.ratio * 100.0,
        TARGET_RATIO * 100.0
    );
}

/// Oversell, errors, or lost orders fail the command; the ratio target is reported only.
pub fn failures(r: &CeilingReport) -> Vec<String> {
    let mut f = Vec::new();
    for row in [&r.raw, &r.http] {
        if row.oversold > 0 {
            f.push(format!("{} oversold by {}", row.path, row.oversold));
        }
        if row.measured.errors > 0 {
            f.push(format!(
                "{}: {} purchases failed",
                row.path, row.measured.errors
            ));
        }
        if row.orders_in_db != row.measured.bought as i64 {
            f.push(format!(
                "{}: {} orders in PostgreSQL for {} purchases",
                row.path, row.orders_in_db, row.measured.bought
            ));
        }
    }
    f
}
