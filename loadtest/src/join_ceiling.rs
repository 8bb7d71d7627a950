//! `loadtest join-ceiling`: the bare cost of joining, to read a join herd against. In one
//! run it creates two identical live drops; N distinct accounts join the first with raw
//! EVALSHA of join.lua through `vq_core::Scripts` (no HTTP, no auth, no rate limits), and
//! N other accounts join the second through `POST /v1/drops/{id}/queue` (the whole HTTP
//! path, limits as shipped, from `--sources` loopback addresses). It prints both rates,
//! their latencies and the ratio. Admission is held to 1 buyer/s in both drops, so the
//! queues grow to N and the admission ticks cost next to nothing.

use crate::harness::{drive, Attempt, Measured};
use crate::procstat::{CpuShare, Snapshot};
use crate::{inproc, vq_path};
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use vq_core::auth::{JwtKeys, Role};
use vq_core::domain::{DropId, UserId};
use vq_core::fairness::Draw;
use vq_core::scripts::JoinOutcome;
use vq_core::{Clock, Keys, Scripts, Settings};

mod print;
pub use print::{failures, print};

#[derive(Debug, Clone, clap::Args)]
pub struct JoinCeilingArgs {
    /// Joins per path (distinct accounts, one drop per path).
    #[arg(long, default_value_t = 20_000)]
    pub joins: usize,
    /// Concurrent tasks per path.
    #[arg(long, default_value_t = 128)]
    pub concurrency: usize,
    /// Multiplexed Redis connections the raw path spreads its calls over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Only the raw EVALSHA path (no HTTP joins).
    #[arg(long)]
    pub raw_only: bool,
    /// Base URL of a running VitaQueue api; without it the server is started in-process.
    #[arg(long)]
    pub api: Option<String>,
    /// Time bound per path (s).
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// As in `ceiling`: count only these processes under these names in the CPU shares.
    #[arg(long)]
    pub cpu_pids: Option<String>,
    #[command(flatten)]
    pub sources: vq_path::SourceArgs,
}

#[derive(Debug, Clone, Serialize)]
pub struct JoinRow {
    pub path: &'static str,
    pub drop: i64,
    /// `bought` counts joins that answered "queued"; anything else is an error.
    #[serde(flatten)]
    pub measured: Measured,
    /// Buyers in the drop's queue afterwards plus those admission took out of it since
    /// (every join must have placed one).
    pub queued_after: u64,
    pub cpu: CpuShare,
}

#[derive(Debug, Serialize)]
pub struct JoinCeilingReport {
    pub machine: String,
    pub joins: usize,
    pub concurrency: usize,
    pub sources: String,
    pub raw: JoinRow,
    pub http: Option<JoinRow>,
    /// HTTP joins/s divided by raw EVALSHA joins/s (when both ran).
    pub ratio: Option<f64>,
}

pub async fn run(a: &JoinCeilingArgs, settings: &Settings) -> anyhow::Result<JoinCeilingReport> {
    anyhow::ensure!(
        (1..=1_000_000).contains(&a.joins),
        "--joins must be 1..=1000000"
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
    Ok(JoinCeilingReport {
        machine: crate::strategies::machine(),
        joins: a.joins,
        concurrency: a.concurrency,
        sources: a.sources.describe(),
        ratio: http
            .as_ref()
            .map(|h| h.measured.purchases_per_s / raw.measured.purchases_per_s.max(1e-9)),
        raw,
        http,
    })
}

async fn both(
    a: &JoinCeilingArgs,
    s: &Settings,
    api: &str,
) -> anyhow::Result<(JoinRow, Option<JoinRow>)> {
    let secret = s
        .auth
        .jwt_secret
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("VQ_AUTH__JWT_SECRET must be set to mint tokens"))?;
    let jwt = JwtKeys::new(secret);
    let http = vq_path::Clients::new(a.concurrency.max(1), &a.sources)?;
    let manager = jwt.issue(UserId(uuid::Uuid::new_v4()), Role::Manager, 3600);
    let keys = Keys::new(&s.redis.prefix);
    let mut redis = vq_core::store::redis(s).await?;

    let raw_drop = create(&http, api, &manager, a.joins).await?;
    let (m, cpu) = fire_raw(a, s, &keys, raw_drop).await?;
    let raw = row("raw_evalsha", raw_drop, m, cpu, &mut redis, &keys).await?;
    if a.raw_only {
        return Ok((raw, None));
    }
    let http_drop = create(&http, api, &manager, a.joins).await?;
    let (m, cpu) = fire_http(a, &http, api, &jwt, http_drop).await;
    let over_http = row("vitaqueue_http", http_drop, m, cpu, &mut redis, &keys).await?;
    Ok((raw, Some(over_http)))
}

async fn row(
    path: &'static str,
    drop: DropId,
    measured: Measured,
    cpu: CpuShare,
    redis: &mut vq_core::RedisConn,
    keys: &Keys,
) -> anyhow::Result<JoinRow> {
    let k = keys.drop(drop);
    let (queued, admitted): (u64, Option<u64>) = redis::pipe()
        .zcard(k.queue())
        .get(k.admitted())
        .query_async(redis)
        .await?;
    let queued_after = queued + admitted.unwrap_or(0);
    Ok(JoinRow {
        path,
        drop: drop.get(),
        measured,
        queued_after,
        cpu,
    })
}

/// A live drop (started now, stock N so nobody meets sold out) whose admission lets one
/// buyer a second through: the queue holds the joiners, admission stays out of the way.
async fn create(
    http: &vq_path::Clients,
    api: &str,
    manager: &str,
    n: usize,
) -> anyhow::Result<DropId> {
    let body = json!({
        "product_name": "join ceiling",
        "price_cents": 100,
        "stock": n.max(1),
        "starts_at": chrono::Utc::now().to_rfc3339(),
        "per_user_limit": 1,
        "admission_rate": 1,
        "max_holders": 1,
        "token_ttl_s": 3600,
    });
    let req = http
        .pick(0)
        .post(format!("{api}/v1/admin/drops"))
        .bearer_auth(manager);
    let created = vq_path::call(req.json(&body), 201, "creating the drop").await?;
    Ok(DropId::new(created["id"].as_i64().unwrap_or(0))?)
}

/// The raw path: EVALSHA of join.lua for N fresh accounts, straight on Redis connections.
async fn fire_raw(
    a: &JoinCeilingArgs,
    s: &Settings,
    keys: &Keys,
    drop: DropId,
) -> anyhow::Result<(Measured, CpuShare)> {
    let mut conns = Vec::new();
    for _ in 0..a.connections.max(1) {
        conns.push(vq_core::store::redis(s).await?);
    }
    let conns = Arc::new(conns);
    let scripts = Arc::new(Scripts::default());
    let users: Arc<Vec<UserId>> =
        Arc::new((0..a.joins).map(|_| UserId(uuid::Uuid::new_v4())).collect());
    let k = Arc::new(keys.drop(drop));
    let limit = Duration::from_secs(a.timeout_s.max(1));
    let cpu = Snapshot::take();
    let m = drive(a.joins, a.concurrency.max(1), limit, move |i| {
        let (conns, scripts, users, k) = (conns.clone(), scripts.clone(), users.clone(), k.clone());
        async move {
            let mut conn = conns[i % conns.len()].clone();
            // A live drop: join.lua ignores the draw (it is for pre-queue joiners only).
            let draw = Draw {
                score: 0.0,
                pseudonym: "",
            };
            match scripts
                .join(&mut conn, &k, users[i], &Clock::Redis, draw, false)
                .await?
            {
                JoinOutcome::Queued { .. } => Ok(Attempt::Bought),
                other => anyhow::bail!("raw join: {other:?}"),
            }
        }
    })
    .await;
    Ok((m, cpu.share_until(&Snapshot::take())))
}

/// The HTTP path: `POST /v1/drops/{id}/queue` for N fresh accounts.
async fn fire_http(
    a: &JoinCeilingArgs,
    http: &vq_path::Clients,
    api: &str,
    jwt: &JwtKeys,
    drop: DropId,
) -> (Measured, CpuShare) {
    let url = format!("{api}/v1/drops/{}/queue", drop.get());
    let tokens: Arc<Vec<String>> = Arc::new(
        (0..a.joins)
            .map(|_| jwt.issue(UserId(uuid::Uuid::new_v4()), Role::Shopper, 3600))
            .collect(),
    );
    let http = http.clone();
    let limit = Duration::from_secs(a.timeout_s.max(1));
    let cpu = Snapshot::take();
    let m = drive(a.joins, a.concurrency.max(1), limit, move |i| {
        let req = http.pick(i).post(&url).bearer_auth(&tokens[i]);
        async move {
            let v = vq_path::call(req, 200, "joining").await?;
            anyhow::ensure!(v["status"] == "queued", "join: {v}");
            Ok(Attempt::Bought)
        }
    })
    .await;
    (m, cpu.share_until(&Snapshot::take()))
}
