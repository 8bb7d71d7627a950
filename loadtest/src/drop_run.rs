//! `loadtest drop`: create a drop, run a crowd of virtual buyers through it, audit, report.

use crate::audit;
use crate::buyer::{self, BuyerResult, Outcome, Shared};
use crate::stats::percentile;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vq_core::auth::{JwtKeys, Role};
use vq_core::domain::{DropId, UserId};
use vq_core::{Keys, Settings};

#[derive(Debug, Clone, clap::Args)]
pub struct DropArgs {
    /// Base URL of an api node.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub api: String,
    #[arg(long, default_value_t = 1000)]
    pub buyers: usize,
    #[arg(long, default_value_t = 100)]
    pub stock: i64,
    /// Admission rate (tokens/s).
    #[arg(long, default_value_t = 500)]
    pub rate: i64,
    /// Purchase token lifetime (s).
    #[arg(long, default_value_t = 30)]
    pub token_ttl: i64,
    #[arg(long, default_value_t = 1000)]
    pub max_holders: i64,
    /// Share of admitted buyers that walk away without buying (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub abandon: f64,
    /// Loopback source addresses to spread connections over (127.0.0.1, .2, …).
    #[arg(long, default_value_t = 4)]
    pub sources: u8,
    /// Seconds over which buyers connect.
    #[arg(long, default_value_t = 1.0)]
    pub ramp_s: f64,
    /// Seconds from now until the sale starts; buyers connecting before wait in the
    /// pre-queue and are shuffled at the start. Default: the ramp plus 2 s.
    #[arg(long)]
    pub start_in: Option<f64>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
    /// Server process id, to report its resident memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Write the summary as JSON here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub drop_id: i64,
    pub buyers: usize,
    pub stock: i64,
    pub sold: i64,
    pub bought_by_clients: usize,
    pub oversold: i64,
    pub orders_in_db: i64,
    pub duplicates: i64,
    pub lost_orders: usize,
    /// Admission-log batches out of queue order plus buyers whose admission number differs
    /// from their place when they joined.
    pub fifo_violations: usize,
    pub fifo_batches_checked: usize,
    pub fifo_buyers_checked: usize,
    pub max_admissions_per_s: u64,
    pub rate: i64,
    pub admitted_total: u64,
    pub purchases_per_s: f64,
    pub purchase_p50_ms: f64,
    pub purchase_p99_ms: f64,
    pub join_p99_ms: f64,
    pub position_push_p99_ms: f64,
    pub sell_out_s: f64,
    pub peak_ws_connections: usize,
    pub server_rss_mb: Option<f64>,
    pub outcomes: BTreeMap<String, usize>,
    pub failures: Vec<String>,
}

fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

async fn create_drop(
    http: &reqwest::Client,
    a: &DropArgs,
    manager: &str,
) -> anyhow::Result<DropId> {
    let start_in = a.start_in.unwrap_or(a.ramp_s + 2.0).max(0.0);
    let start_in = chrono::Duration::milliseconds((start_in * 1000.0) as i64);
    let body = json!({
        "product_name": "Load test drop",
        "price_cents": 9900,
        "stock": a.stock,
        "starts_at": (chrono::Utc::now() + start_in).to_rfc3339(),
        "prequeue_s": start_in.num_seconds() + 60,
        "per_user_limit": 1,
        "admission_rate": a.rate,
        "max_holders": a.max_holders,
        "token_ttl_s": a.token_ttl,
    });
    let res = http
        .post(format!("{}/v1/admin/drops", a.api))
        .bearer_auth(manager)
        .json(&body)
        .send()
        .await?;
    let status = res.status();
    let v: serde_json::Value = res.json().await?;
    anyhow::ensure!(
        status.as_u16() == 201,
        "creating the drop failed: {status} {v}"
    );
    Ok(DropId::new(v["id"].as_i64().unwrap_or(0))?)
}

pub async fn run(a: DropArgs, settings: &Settings) -> anyhow::Result<Summary> {
    let secret = settings
        .auth
        .jwt_secret
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("VQ_AUTH__JWT_SECRET must be set"))?;
    let jwt = JwtKeys::new(secret);
    let api: SocketAddr = a
        .api
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()?;
    let sources = a.sources.clamp(1, 250);
    let http: Vec<reqwest::Client> = (0..sources)
        .map(|i| {
            reqwest::Client::builder()
                .local_address(std::net::IpAddr::from([127, 0, 0, 1 + i]))
                .build()
        })
        .collect::<Result<_, _>>()?;
    let drop = create_drop(
        &http[0],
        &a,
        &jwt.issue(UserId(uuid::Uuid::new_v4()), Role::Manager, 600),
    )
    .await?;
    println!(
        "drop {} created: stock {}, rate {}/s, {} buyers",
        drop.get(),
        a.stock,
        a.rate,
        a.buyers
    );

    let shared = Arc::new(Shared {
        http,
        api,
        drop_id: drop.get(),
        abandon: a.abandon,
        connected: 0.into(),
        peak: 0.into(),
        admitted: 0.into(),
        finished: 0.into(),
    });
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.timeout_s);
    let gap = Duration::from_secs_f64(a.ramp_s / a.buyers.max(1) as f64);
    let mut tasks = Vec::with_capacity(a.buyers);
    for n in 0..a.buyers {
        let token = jwt.issue(UserId(uuid::Uuid::new_v4()), Role::Shopper, 3600);
        tasks.push(tokio::spawn(buyer::run(shared.clone(), n, token, deadline)));
        if !gap.is_zero() && n % 100 == 99 {
            tokio::time::sleep(gap * 100).await;
        }
    }
    let progress = tokio::spawn(progress(shared.clone(), a.buyers, start));
    let mut results = Vec::with_capacity(a.buyers);
    for t in tasks {
        results.push(t.await?);
    }
    progress.abort();
    eprintln!();

    let mut redis = vq_core::store::redis(settings).await?;
    let db = vq_core::store::postgres(settings).await?;
    let keys = Keys::new(&settings.redis.prefix);
    let view = audit::read(
        &mut redis,
        &db,
        &keys,
        drop,
        a.stock,
        Duration::from_secs(20),
    )
    .await?;
    Ok(summarize(&a, drop, results, view, start, &shared))
}

async fn progress(sh: Arc<Shared>, total: usize, start: Instant) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let done = sh.finished.load(Ordering::Relaxed);
        let width = 30;
        let filled = done * width / total.max(1);
        eprint!(
            "\r[{}{}] {done}/{total} done | {} connected | {} admitted | {:.1}s   ",
            "#".repeat(filled),
            ".".repeat(width - filled),
            sh.connected.load(Ordering::Relaxed),
            sh.admitted.load(Ordering::Relaxed),
            start.elapsed().as_secs_f64()
        );
    }
}

fn summarize(
    a: &DropArgs,
    drop: DropId,
    results: Vec<BuyerResult>,
    v: audit::StoreView,
    start: Instant,
    sh: &Shared,
) -> Summary {
    let mut outcomes = BTreeMap::new();
    for r in &results {
        let key = match &r.outcome {
            Outcome::Bought => "bought".to_string(),
            Outcome::Abandoned => "abandoned".to_string(),
            Outcome::Rejected(c) => c.clone(),
            Outcome::Error(_) => "error".to_string(),
            Outcome::TimedOut => "timed_out".to_string(),
        };
        *outcomes.entry(key).or_insert(0) += 1;
    }
    let bought: HashSet<String> = results.iter().filter_map(|r| r.token.clone()).collect();
    let sold = a.stock - v.remaining;
    let lost_orders = bought.difference(&v.db_tokens).count();
    let fifo: Vec<(u64, u64)> = results
        .iter()
        .filter_map(|r| Some((r.index?, r.seq?)))
        .collect();
    let fifo_violations = fifo.iter().filter(|(index, seq)| *seq != index + 1).count();
    let mut purchase: Vec<f64> = results.iter().filter_map(|r| r.purchase_ms).collect();
    let mut join: Vec<f64> = results.iter().filter_map(|r| r.join_ms).collect();
    let mut push: Vec<f64> = results
        .iter()
        .flat_map(|r| r.push_ms.iter().copied())
        .collect();
    let bought_at: Vec<Instant> = results
        .iter()
        .filter(|r| r.outcome == Outcome::Bought)
        .filter_map(|r| r.done_at)
        .collect();
    let first_admit = results.iter().filter_map(|r| r.admitted_at).min();
    let (first_buy, last_buy) = (bought_at.iter().min(), bought_at.iter().max());
    let purchases_per_s = match (first_buy, last_buy) {
        (Some(f), Some(l)) if l > f => bought_at.len() as f64 / (*l - *f).as_secs_f64(),
        _ => 0.0,
    };
    let sell_out_s = match (first_admit, last_buy) {
        (Some(f), Some(l)) if v.remaining <= 0 => (*l - f).as_secs_f64(),
        _ => (Instant::now() - start).as_secs_f64(),
    };
    let mut s = Summary {
        drop_id: drop.get(),
        buyers: a.buyers,
        stock: a.stock,
        sold,
        bought_by_clients: bought.len(),
        oversold: (sold - a.stock).max(0) + (-v.remaining).max(0),
        orders_in_db: v.orders_in_db,
        duplicates: v.orders_in_db - v.distinct_tokens_in_db,
        lost_orders,
        fifo_violations: fifo_violations + v.fifo_log_violations,
        fifo_batches_checked: v.fifo_log_batches,
        fifo_buyers_checked: fifo.len(),
        max_admissions_per_s: v.max_admissions_per_s,
        rate: a.rate,
        admitted_total: v.admitted_total,
        purchases_per_s,
        purchase_p50_ms: percentile(&mut purchase, 0.5),
        purchase_p99_ms: percentile(&mut purchase, 0.99),
        join_p99_ms: percentile(&mut join, 0.99),
        position_push_p99_ms: percentile(&mut push, 0.99),
        sell_out_s,
        peak_ws_connections: sh.peak.load(Ordering::Relaxed),
        server_rss_mb: a.server_pid.and_then(rss_mb),
        outcomes,
        failures: Vec::new(),
    };
    s.failures = check(&s);
    s
}

/// The invariants; any failure makes the run exit non-zero.
pub fn check(s: &Summary) -> Vec<String> {
    let mut f = Vec::new();
    if s.oversold > 0 {
        f.push(format!("oversold by {}", s.oversold));
    }
    if s.orders_in_db != s.sold {
        f.push(format!(
            "{} orders in PostgreSQL for {} units sold",
            s.orders_in_db, s.sold
        ));
    }
    if s.duplicates > 0 {
        f.push(format!("{} duplicate orders", s.duplicates));
    }
    if s.lost_orders > 0 {
        f.push(format!(
            "{} confirmed purchases have no order",
            s.lost_orders
        ));
    }
    if s.fifo_violations > 0 {
        f.push(format!(
            "{} buyers admitted out of queue order",
            s.fifo_violations
        ));
    }
    if s.max_admissions_per_s as i64 > s.rate {
        f.push(format!(
            "{} admissions in one second at rate {}",
            s.max_admissions_per_s, s.rate
        ));
    }
    f
}

pub fn print(s: &Summary) {
    let rows: Vec<(&str, String)> = vec![
        ("drop", s.drop_id.to_string()),
        ("buyers", s.buyers.to_string()),
        ("stock", s.stock.to_string()),
        ("sold", s.sold.to_string()),
        ("oversold", s.oversold.to_string()),
        ("orders_in_db", s.orders_in_db.to_string()),
        ("duplicates", s.duplicates.to_string()),
        ("lost_orders", s.lost_orders.to_string()),
        (
            "fifo_violations",
            format!(
                "{} ({} batches, {} buyers checked)",
                s.fifo_violations, s.fifo_batches_checked, s.fifo_buyers_checked
            ),
        ),
        (
            "max_admissions_per_s",
            format!("{} (rate {})", s.max_admissions_per_s, s.rate),
        ),
        ("purchases_per_s", format!("{:.0}", s.purchases_per_s)),
        ("purchase_p50_ms", format!("{:.1}", s.purchase_p50_ms)),
        ("purchase_p99_ms", format!("{:.1}", s.purchase_p99_ms)),
        ("join_p99_ms", format!("{:.1}", s.join_p99_ms)),
        (
            "position_push_p99_ms",
            format!("{:.1}", s.position_push_p99_ms),
        ),
        ("sell_out_s", format!("{:.2}", s.sell_out_s)),
        ("peak_ws_connections", s.peak_ws_connections.to_string()),
        (
            "server_rss_mb",
            s.server_rss_mb.map_or("n/a".into(), |m| format!("{m:.1}")),
        ),
        ("outcomes", format!("{:?}", s.outcomes)),
    ];
    println!("{:-<52}", "");
    for (k, v) in rows {
        println!("{k:<22} {v}");
    }
    println!("{:-<52}", "");
    if s.failures.is_empty() {
        println!("invariants: all hold");
    } else {
        for f in &s.failures {
            println!("INVARIANT FAILED: {f}");
        }
    }
}
