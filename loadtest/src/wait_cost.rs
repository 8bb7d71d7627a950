//! `loadtest wait-cost`: what `WAIT` (redis.wait_replicas) adds to a purchase. In one run,
//! against one Redis primary that has a replica, it alternates rounds with
//! `wait_replicas = 0` and `= N`: each round starts the server in-process with that
//! setting, prepares a drop of admitted buyers and fires their purchases over HTTP.

use crate::harness::Measured;
use crate::{inproc, vq_path};
use serde::Serialize;
use std::time::Duration;
use vq_core::auth::JwtKeys;
use vq_core::Settings;

#[derive(Debug, Clone, clap::Args)]
pub struct WaitCostArgs {
    /// Purchases per round.
    #[arg(long, default_value_t = 5_000)]
    pub purchases: usize,
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Replicas to wait for in the rounds with WAIT.
    #[arg(long, default_value_t = 1)]
    pub replicas: u32,
    /// Rounds per setting, interleaved (0, N, 0, N, …) so drift hits both alike.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub sources: vq_path::SourceArgs,
}

#[derive(Debug, Serialize)]
pub struct Round {
    pub wait_replicas: u32,
    #[serde(flatten)]
    pub measured: Measured,
}

#[derive(Debug, Serialize)]
pub struct WaitCostReport {
    pub machine: String,
    pub connected_replicas: u32,
    pub rounds: Vec<Round>,
    /// Median over rounds of (p50, p99) without and with WAIT.
    pub without: (f64, f64),
    pub with: (f64, f64),
}

async fn connected_replicas(s: &Settings) -> anyhow::Result<u32> {
    let mut c = vq_core::store::redis(s).await?;
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut c)
        .await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("connected_slaves:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0))
}

async fn round(a: &WaitCostArgs, base: &Settings, wait: u32) -> anyhow::Result<Round> {
    let mut s = base.clone();
    s.redis.wait_replicas = vq_core::config::WaitReplicas::Exactly(wait);
    let server = inproc::start(&s).await?;
    let secret = server
        .settings
        .auth
        .jwt_secret
        .clone()
        .expect("set by inproc");
    let jwt = JwtKeys::new(&secret);
    let (n, c) = (a.purchases, a.concurrency.max(1));
    let limit = Duration::from_secs(120);
    let http = vq_path::Clients::new(c, &a.sources)?;
    let measured = async {
        let p = vq_path::prepare(&http, &server.api, &jwt, n, n as i64, c, limit).await?;
        anyhow::Ok(vq_path::fire(&http, &server.api, &p, c, limit).await)
    }
    .await;
    server.stop().await?;
    Ok(Round {
        wait_replicas: wait,
        measured: measured?,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub async fn run(a: &WaitCostArgs, settings: &Settings) -> anyhow::Result<WaitCostReport> {
    anyhow::ensure!(a.replicas > 0, "--replicas must be at least 1");
    anyhow::ensure!(a.rounds > 0, "--rounds must be at least 1");
    let connected = connected_replicas(settings).await?;
    anyhow::ensure!(
        connected >= a.replicas,
        "the Redis primary has {connected} connected replicas, --replicas asks for {}",
        a.replicas
    );
    let mut rounds = Vec::new();
    for _ in 0..a.rounds {
        for wait in [0, a.replicas] {
            rounds.push(round(a, settings, wait).await?);
        }
    }
    let pick = |w: bool| {
        let rs: Vec<&Round> = rounds
            .iter()
            .filter(|r| (r.wait_replicas > 0) == w)
            .collect();
        (
            median(rs.iter().map(|r| r.measured.p50_ms).collect()),
            median(rs.iter().map(|r| r.measured.p99_ms).collect()),
        )
    };
    Ok(WaitCostReport {
        machine: crate::strategies::machine(),
        connected_replicas: connected,
        without: pick(false),
        with: pick(true),
        rounds,
    })
}

pub fn print(r: &WaitCostReport) {
    println!(
        "machine: {} | replicas connected: {}",
        r.machine, r.connected_replicas
    );
    println!(
        "{:<14} {:>11} {:>8} {:>8} {:>8} {:>6}",
        "wait_replicas", "purchases/s", "p50_ms", "p99_ms", "max_ms", "errors"
    );
    for row in &r.rounds {
        let m = &row.measured;
        println!(
            "{:<14} {:>11.0} {:>8.2} {:>8.2} {:>8.2} {:>6}",
            row.wait_replicas, m.purchases_per_s, m.p50_ms, m.p99_ms, m.max_ms, m.errors
        );
    }
    println!(
        "median p50 {:.2} → {:.2} ms (×{:.2}), p99 {:.2} → {:.2} ms (×{:.2})",
        r.without.0,
        r.with.0,
        r.with.0 / r.without.0,
        r.without.1,
        r.with.1,
        r.with.1 / r.without.1
    );
}

/// Errors in any round fail the command.
pub fn failures(r: &WaitCostReport) -> Vec<String> {
    r.rounds
        .iter()
        .filter(|x| x.measured.errors > 0)
        .map(|x| {
            format!(
                "wait_replicas={}: {} purchases failed",
                x.wait_replicas, x.measured.errors
            )
        })
        .collect()
}
