//! `loadtest drop`: create a drop, run a crowd of virtual buyers through it, audit, report.

use crate::buyer::{self, Shared};
pub use crate::drop_args::{BuyOver, DropArgs};
use crate::{audit, report, summary};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vq_core::auth::{JwtKeys, Role};
use vq_core::domain::{DropId, UserId};
use vq_core::{Keys, Settings};

/// Seconds from the drop's creation to its start.
fn start_in(a: &DropArgs) -> f64 {
    a.start_in.unwrap_or(a.ramp_s + 2.0).max(0.0)
}

async fn create_drop(
    http: &reqwest::Client,
    a: &DropArgs,
    manager: &str,
) -> anyhow::Result<DropId> {
    let start_in = chrono::Duration::milliseconds((start_in(a) * 1000.0) as i64);
    let mut body = json!({
        "product_name": "Load test drop",
        "price_cents": 9900,
        "stock": a.stock,
        "starts_at": (chrono::Utc::now() + start_in).to_rfc3339(),
        "prequeue_s": start_in.num_seconds() + 60,
        "per_user_limit": 1,
        "admission_rate": a.rate,
        "max_holders": a.max_holders,
        "token_ttl_s": a.token_ttl,
        "pow_difficulty": a.pow,
        "overbook": a.overbook,
    });
    if let Some(e) = a.expected_abandon {
        body["expected_abandon"] = json!(e);
    }
    if let Some((min_rate, max_rate)) = a.autopilot {
        body["autopilot"] = json!({ "min_rate": min_rate, "max_rate": max_rate });
    }
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

pub async fn run(a: DropArgs, settings: &Settings) -> anyhow::Result<summary::Summary> {
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
    let http = clients(a.sources)?;
    let sale_start = Instant::now() + Duration::from_secs_f64(start_in(&a));
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
        seed: a.seed,
        fail: (!a.no_pay).then_some(a.fail),
        buy_on_socket: a.buy_over == BuyOver::Socket,
        connected: 0.into(),
        peak: 0.into(),
        admitted: 0.into(),
        finished: 0.into(),
    });
    if let Some(spec) = &a.cpu_pids {
        crate::procstat::pin(spec)?;
    }
    let cpu_before = crate::procstat::Snapshot::take();
    let start = Instant::now();
    // Sample from the first connection on, so the charts show the crowd arriving.
    let manager = jwt.issue(UserId(uuid::Uuid::new_v4()), Role::Manager, 3600);
    let sampler = report::sample(shared.http[0].clone(), a.api.clone(), drop, manager, start);
    let results = crowd(&a, &jwt, &shared, start).await?;
    let cpu =
        crate::procstat::RunCpu::between(&cpu_before, &crate::procstat::Snapshot::take(), a.buyers);
    println!("{}", cpu.describe());
    let mut summary = finish(&a, settings, drop, &results, sampler, start, &shared).await?;
    let fair = crate::fair::collect(&shared.http[0], &a.api, drop.get(), &results, sale_start);
    let fair = fair.await;
    summary
        .failures
        .extend(crate::fair::failures(&fair, a.min_eta_coverage));
    summary.cpu = Some(cpu);
    summary.fairness = Some(fair);
    Ok(summary)
}

/// One HTTP client per source address (127.0.0.1 + i), so per-IP limits see a crowd.
fn clients(sources: u8) -> anyhow::Result<Vec<reqwest::Client>> {
    (0..sources.clamp(1, 250))
        .map(|i| {
            reqwest::Client::builder()
                .local_address(std::net::IpAddr::from([127, 0, 0, 1 + i]))
                .build()
                .map_err(Into::into)
        })
        .collect()
}

/// Starts every buyer (spread over the ramp) and waits for all of them.
async fn crowd(
    a: &DropArgs,
    jwt: &JwtKeys,
    shared: &Arc<Shared>,
    start: Instant,
) -> anyhow::Result<Vec<buyer::BuyerResult>> {
    let deadline = start + Duration::from_secs(a.timeout_s);
    let gap = Duration::from_secs_f64(a.ramp_s / a.buyers.max(1) as f64);
    let mut tasks = Vec::with_capacity(a.buyers);
    for n in 0..a.buyers {
        let user = UserId(uuid::Uuid::new_v4());
        let token = jwt.issue(user, Role::Shopper, 3600);
        tasks.push(tokio::spawn(buyer::run(
            shared.clone(),
            n,
            (token, user),
            deadline,
        )));
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
    Ok(results)
}

/// Audits both stores once the workers caught up (sampling until then), then summarises
/// and writes the report.
async fn finish(
    a: &DropArgs,
    settings: &Settings,
    drop: DropId,
    results: &[buyer::BuyerResult],
    sampler: report::Sampler,
    start: Instant,
    shared: &Shared,
) -> anyhow::Result<summary::Summary> {
    let mut redis = vq_core::store::redis(settings).await?;
    let db = vq_core::store::postgres(settings).await?;
    let keys = Keys::new(&settings.redis.prefix);
    let view = audit::read(&mut redis, &db, &keys, drop, Duration::from_secs(20)).await?;
    let samples = report::stop(sampler).await;
    let summary = summary::summarize(a, drop, results, view, start, shared);
    if let Some(path) = &a.html {
        std::fs::write(path, report::html(&summary, &samples, results, start))?;
        println!("report written to {}", path.display());
    }
    Ok(summary)
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
