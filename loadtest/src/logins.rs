//! `loadtest logins`: the server's resident memory under a flood of concurrent logins.
//! Each login runs argon2 (19 MiB per hash, a dummy hash for unknown e-mails), so an
//! unbounded server grows with the flood; the password gate runs one hash per core and
//! answers the rest 503 `busy`. This sends `--concurrency` logins at once from
//! `--sources` loopback addresses (each inside its per-address login budget, so they reach
//! the gate), samples the server process's RSS every 10 ms and exits non-zero when the
//! peak grew past `--max-growth-mb` or a response was a 5xx other than `busy`.

use crate::procstat::rss_mb;
use crate::vq_path::{Clients, SourceArgs};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct LoginsArgs {
    /// Base URL of a running server (`vitaqueue all` or `api`).
    #[arg(long)]
    pub api: String,
    /// Process id of that server, whose RSS is sampled.
    #[arg(long)]
    pub server_pid: u32,
    #[arg(long, default_value_t = 300)]
    pub concurrency: usize,
    /// Rounds of `concurrency` logins, one after another.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// The bound: peak RSS minus RSS before the first round.
    #[arg(long, default_value_t = 200.0)]
    pub max_growth_mb: f64,
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub sources: SourceArgs,
}

#[derive(Debug, Serialize, Default)]
pub struct LoginsReport {
    pub allocator: &'static str,
    pub concurrency: usize,
    pub rounds: usize,
    pub sources: String,
    pub rss_before_mb: f64,
    pub rss_peak_mb: f64,
    /// RSS 2 s after the last round ended (freed hash blocks given back or not).
    pub rss_after_mb: f64,
    pub statuses: BTreeMap<u16, usize>,
    /// The error code of every 5xx: `busy` is the gate's designed answer.
    pub codes_5xx: BTreeMap<String, usize>,
    pub transport_errors: usize,
    pub seconds: f64,
}

pub async fn run(a: &LoginsArgs) -> anyhow::Result<LoginsReport> {
    let http = Clients::new(a.concurrency, &a.sources)?;
    let mut r = LoginsReport {
        allocator: "mimalloc (as the vitaqueue binary ships)",
        concurrency: a.concurrency,
        rounds: a.rounds,
        sources: http.describe(),
        rss_before_mb: rss_mb(a.server_pid).unwrap_or(0.0),
        ..Default::default()
    };
    let peak = Arc::new(Mutex::new(r.rss_before_mb));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(sample(a.server_pid, peak.clone(), stop.clone()));
    let t0 = Instant::now();
    for round in 0..a.rounds {
        let tasks = (0..a.concurrency).map(|i| {
            let req = http
                .pick(i)
                .post(format!("{}/v1/auth/login", a.api))
                .json(&json!({ "email": format!("flood{round}-{i}@example.com"),
                               "password": "not-the-password-1" }));
            async move {
                let res = req.send().await.ok()?;
                let status = res.status().as_u16();
                let body: serde_json::Value = res.json().await.unwrap_or_default();
                Some((status, body["code"].as_str().unwrap_or("").to_owned()))
            }
        });
        for out in futures::future::join_all(tasks).await {
            match out {
                Some((status, code)) => {
                    *r.statuses.entry(status).or_default() += 1;
                    if status >= 500 {
                        *r.codes_5xx.entry(code).or_default() += 1;
                    }
                }
                None => r.transport_errors += 1,
            }
        }
    }
    r.seconds = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    sampler.await?;
    r.rss_peak_mb = *peak.lock().expect("sampler");
    r.rss_after_mb = rss_mb(a.server_pid).unwrap_or(0.0);
    Ok(r)
}

async fn sample(pid: u32, peak: Arc<Mutex<f64>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        if let Some(mb) = rss_mb(pid) {
            let mut p = peak.lock().expect("sampler");
            *p = p.max(mb);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn failures(r: &LoginsReport, a: &LoginsArgs) -> Vec<String> {
    let mut out = Vec::new();
    let growth = r.rss_peak_mb - r.rss_before_mb;
    if growth > a.max_growth_mb {
        out.push(format!(
            "peak RSS grew {growth:.1} MB (bound {:.0} MB)",
            a.max_growth_mb
        ));
    }
    let faults: usize = r
        .codes_5xx
        .iter()
        .filter(|(c, _)| c.as_str() != "busy")
        .map(|(_, n)| n)
        .sum();
    if faults > 0 {
        out.push(format!("{faults} 5xx answers other than 503 busy"));
    }
    if r.transport_errors > 0 {
        out.push(format!("{} logins got no HTTP answer", r.transport_errors));
    }
    if r.statuses.get(&401).copied().unwrap_or(0) == 0 {
        out.push("no login reached the password check (no 401): nothing was measured".into());
    }
    out
}

pub fn print(r: &LoginsReport) {
    println!(
        "logins: {} × {} concurrent from {} ({:.1} s), allocator {}",
        r.rounds, r.concurrency, r.sources, r.seconds, r.allocator
    );
    println!("  statuses {:?}  5xx codes {:?}", r.statuses, r.codes_5xx);
    println!(
        "  server RSS: before {:.1} MB, peak {:.1} MB (+{:.1}), 2 s after {:.1} MB",
        r.rss_before_mb,
        r.rss_peak_mb,
        r.rss_peak_mb - r.rss_before_mb,
        r.rss_after_mb
    );
}
