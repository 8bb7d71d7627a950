//! `loadtest abuse`: an honest drop while attacks run at the same time, against a whole
//! server started in this process (scratch database and Redis prefix, loopback only).
//! Honest buyers join, wait for their turn and buy over HTTP, once on a quiet server and
//! once under attack; the report compares their p99s, and gives the peak RSS of this
//! process (server and attackers together), the 5xx count of every request, and the drop
//! invariants (`audit`). Every attack is bounded in count and time.
//!
//! The server runs with every protection as shipped, the per-address connection cap
//! included. Honest buyers come from 127.0.0.1-8 and each attack from an address of its own
//! (127.0.66.x), as separate hosts would, and the attackers' client side runs on threads
//! of its own at a lower priority (the CPU of those other hosts). The run fails when the
//! honest join or purchase p99 under attack is more than [`MAX_RATIO`] times the quiet one.

mod attacks;
mod honest;

use crate::{audit, harness, inproc, stats};
use attacks::Tally;
use honest::{create_drop, honest, Honest};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use vq_core::auth::{JwtKeys, Role};
use vq_core::domain::{DropId, UserId};
use vq_core::Settings;

#[derive(clap::Args, Debug, Clone)]
pub struct AbuseArgs {
    /// Honest buyers per round (quiet, then under attack).
    #[arg(long, default_value_t = 300)]
    pub buyers: usize,
    #[arg(long, default_value_t = 200)]
    pub slow_headers: usize,
    #[arg(long, default_value_t = 50)]
    pub idle: usize,
    #[arg(long, default_value_t = 300)]
    pub logins: usize,
    #[arg(long, default_value_t = 200)]
    pub signups: usize,
    #[arg(long, default_value_t = 2000)]
    pub methods: usize,
    #[arg(long, default_value_t = 20)]
    pub oversize: usize,
    /// Room sockets flooding `status`, 500 messages each.
    #[arg(long, default_value_t = 20)]
    pub ws_sockets: usize,
    #[arg(long, default_value_t = 500)]
    pub forgeries: usize,
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

#[derive(Serialize, Debug)]
pub struct AbuseReport {
    pub join_p99_ms_quiet: f64,
    pub purchase_p99_ms_quiet: f64,
    pub join_p99_ms_attack: f64,
    pub purchase_p99_ms_attack: f64,
    /// Under attack over quiet; the run fails above [`MAX_RATIO`].
    pub join_p99_ratio: f64,
    pub purchase_p99_ratio: f64,
    pub honest_bought: usize,
    pub rss_peak_mb: f64,
    /// Every 5xx seen, honest and attack; `busy` (503 with Retry-After from the password
    /// hashing gate) is the designed answer to a login flood and is counted apart.
    pub count_5xx: usize,
    pub count_503_busy: usize,
    pub count_503_mail_unavailable: usize,
    pub attacks: BTreeMap<&'static str, Tally>,
    pub invariants: BTreeMap<String, i64>,
    pub failures: Vec<String>,
}

fn vm_kb(field: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0)
}

pub async fn run(a: &AbuseArgs, settings: &Settings) -> anyhow::Result<AbuseReport> {
    let mut base = settings.clone();
    for key in [&mut base.auth.pii_key, &mut base.auth.email_hash_key] {
        if key.is_none() {
            use base64::Engine;
            let raw: [u8; 32] = rand::random();
            let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
            *key = Some(vq_core::config::Secret::new(b64));
        }
    }
    let srv = inproc::start(&base).await?;
    let result = attack_run(a, &srv).await;
    srv.stop().await?;
    result
}

async fn attack_run(a: &AbuseArgs, srv: &inproc::Server) -> anyhow::Result<AbuseReport> {
    let s = &srv.settings;
    let jwt = JwtKeys::new(s.auth.jwt_secret.as_ref().expect("set by inproc"));
    let api = srv.api.clone();
    let port: u16 = api.rsplit(':').next().unwrap_or("0").parse()?;
    let http = reqwest::Client::new();
    let manager = jwt.issue(UserId(uuid::Uuid::new_v4()), Role::Manager, 3600);
    let (quiet_drop, busy_drop) = (
        create_drop(&http, &api, &manager, a.buyers).await?,
        create_drop(&http, &api, &manager, a.buyers).await?,
    );
    // Honest buyers spread over 127.0.0.1-8, a few hosts' worth of shoppers.
    let src = crate::vq_path::SourceArgs {
        sources: 8,
        source_block: 0,
    };
    // Each round gets fresh clients: neither starts with the other's warm connections.
    let shoppers = crate::vq_path::Clients::new(a.buyers, &src)?;
    let quiet = honest(&shoppers, &api, quiet_drop, &jwt, a.buyers).await;
    let shoppers = crate::vq_path::Clients::new(a.buyers, &src)?;
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = rss_sampler(peak.clone());
    let rt = attacker_runtime()?;
    let attacks = spawn_attacks(&rt, a, &api, port, busy_drop, &jwt);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let busy = honest(&shoppers, &api, busy_drop, &jwt, a.buyers).await;
    let mut tallies = BTreeMap::new();
    for (name, t) in attacks {
        let t = tokio::time::timeout(Duration::from_secs(60), t).await;
        tallies.insert(name, t.ok().and_then(Result::ok).unwrap_or_default());
    }
    sampler.abort();
    rt.shutdown_background();
    let (invariants, mut failures) = audit_both(
        s,
        a.buyers as i64,
        [("quiet", quiet_drop, &quiet), ("attack", busy_drop, &busy)],
    )
    .await?;
    let mut all: Vec<&Tally> = tallies.values().collect();
    all.extend([&quiet.tally, &busy.tally]);
    // `busy` is the password gate's designed answer; `mail_unavailable` means this run has
    // no SMTP server (codes cannot be sent), not a fault under attack.
    let code = |c: &str| -> usize { tallies.values().filter_map(|t| t.codes_5xx.get(c)).sum() };
    let (busy_503, no_mail) = (code("busy"), code("mail_unavailable"));
    let count_5xx = all.iter().map(|t| t.count_5xx()).sum::<usize>() - busy_503 - no_mail;
    if count_5xx > 0 {
        failures.push(format!("{count_5xx} responses were 5xx"));
    }
    let p99 = |v: &[f64]| stats::percentile(&mut v.to_vec(), 0.99);
    let (jq, ja) = (p99(&quiet.join_ms), p99(&busy.join_ms));
    let (pq, pa) = (p99(&quiet.purchase_ms), p99(&busy.purchase_ms));
    let (join_ratio, purchase_ratio) = (ratio(ja, jq), ratio(pa, pq));
    for (what, r) in [("join", join_ratio), ("purchase", purchase_ratio)] {
        if r.is_nan() || r > MAX_RATIO {
            failures.push(format!(
                "honest {what} p99 under attack is {r:.2}× quiet (bound {MAX_RATIO}×)"
            ));
        }
    }
    if busy.bought < a.buyers || quiet.bought < a.buyers {
        failures.push(format!(
            "honest buyers who bought: quiet {} and under attack {} of {}",
            quiet.bought, busy.bought, a.buyers
        ));
    }
    Ok(AbuseReport {
        join_p99_ms_quiet: jq,
        purchase_p99_ms_quiet: pq,
        join_p99_ms_attack: ja,
        purchase_p99_ms_attack: pa,
        join_p99_ratio: join_ratio,
        purchase_p99_ratio: purchase_ratio,
        honest_bought: busy.bought,
        rss_peak_mb: peak.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0,
        count_5xx,
        count_503_busy: busy_503,
        count_503_mail_unavailable: no_mail,
        attacks: tallies,
        invariants,
        failures,
    })
}

/// The promise: honest buyers under attack stay within this factor of quiet.
pub const MAX_RATIO: f64 = 2.0;

/// `attack / quiet`; no sample on either side is an infinite ratio (a failure).
fn ratio(attack: f64, quiet: f64) -> f64 {
    if attack.is_finite() && quiet > 0.0 {
        attack / quiet
    } else {
        f64::INFINITY
    }
}

/// The two ratios, printed as the run's last lines.
pub fn print_ratios(r: &AbuseReport) {
    println!(
        "join p99: quiet {:.1} ms, under attack {:.1} ms: {:.2}× (bound {MAX_RATIO}×)",
        r.join_p99_ms_quiet, r.join_p99_ms_attack, r.join_p99_ratio
    );
    println!(
        "purchase p99: quiet {:.1} ms, under attack {:.1} ms: {:.2}× (bound {MAX_RATIO}×)",
        r.purchase_p99_ms_quiet, r.purchase_p99_ms_attack, r.purchase_p99_ratio
    );
}

/// Peak resident memory of this process (server and attackers share it), sampled every 50 ms.
fn rss_sampler(peak: std::sync::Arc<std::sync::atomic::AtomicU64>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            peak.fetch_max(vm_kb("VmRSS:") as u64, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// Every drop invariant of both honest drops, once the workers caught up; a non-zero one
/// is also a failure line.
async fn audit_both(
    s: &Settings,
    stock: i64,
    drops: [(&str, DropId, &Honest); 2],
) -> anyhow::Result<(BTreeMap<String, i64>, Vec<String>)> {
    let mut redis = vq_core::store::redis(s).await?;
    let db = vq_core::store::postgres(s).await?;
    let keys = vq_core::Keys::new(&s.redis.prefix);
    let mut invariants = BTreeMap::new();
    let mut failures = Vec::new();
    for (label, drop, h) in drops {
        let v = audit::read(&mut redis, &db, &keys, drop, Duration::from_secs(20)).await?;
        let r = &v.reconciliation;
        let checks = [
            (
                "oversold",
                harness::oversold(stock, v.orders_in_db, r.redis_remaining),
            ),
            ("duplicates", v.orders_in_db - v.distinct_tokens_in_db),
            ("lost_orders", h.bought as i64 - v.orders_in_db),
            ("stock_drift", r.drift),
            ("fifo_violations", v.fifo_log_violations as i64),
        ];
        for (name, n) in checks {
            invariants.insert(format!("{label}.{name}"), n);
            if n != 0 {
                failures.push(format!("{label}: {name} = {n}"));
            }
        }
    }
    db.close().await;
    Ok((invariants, failures))
}

type Running = Vec<(&'static str, tokio::task::JoinHandle<Tally>)>;

/// The attackers' own runtime, on threads at nice 10: on this one machine their client
/// side stands in for other hosts, so its CPU yields to the server's and the honest
/// buyers' (the requests they send are served as usual).
fn attacker_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("attacker")
        .on_thread_start(|| {
            // SAFETY: setpriority on the calling thread (PRIO_PROCESS with its tid) only
            // lowers its scheduling weight.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS, tid, 10);
            }
        })
        .enable_all()
        .build()?)
}

/// The source address of attack `k`: 127.0.66.(k + 1), none of them the honest buyers'.
fn attacker(k: u8) -> std::net::IpAddr {
    std::net::IpAddr::from([127, 0, 66, k + 1])
}

fn spawn_attacks(
    rt: &tokio::runtime::Runtime,
    a: &AbuseArgs,
    api: &str,
    port: u16,
    drop: DropId,
    jwt: &JwtKeys,
) -> Running {
    let mut out: Running = Vec::new();
    let (n_slow, n_idle, n_over) = (a.slow_headers, a.idle, a.oversize);
    out.push((
        "slow_headers",
        rt.spawn(attacks::slow_headers(attacker(0), port, n_slow)),
    ));
    let idle = attacks::idle(attacker(1), port, n_idle);
    out.push(("idle_tcp", rt.spawn(idle)));
    let oversize = attacks::oversize(attacker(2), port, n_over);
    out.push(("oversize", rt.spawn(oversize)));
    let http = attacks::client(attacker(3));
    let (h, u, n) = (http, format!("{api}/v1/auth/login"), a.logins);
    out.push(("logins", rt.spawn(async move {
        attacks::posts(&h, u, n, 100, |i| json!({ "email": format!("nobody{i}@example.com"), "password": "wrong-password-1" })).await
    })));
    let (h, u, n) = (
        attacks::client(attacker(4)),
        format!("{api}/v1/auth/email-code"),
        a.signups / 2,
    );
    out.push((
        "code_requests",
        rt.spawn(async move {
            attacks::posts(
                &h,
                u,
                n,
                50,
                |i| json!({ "email": format!("victim{}@example.com", i % 5) }),
            )
            .await
        }),
    ));
    let (h, u, n) = (
        attacks::client(attacker(5)),
        format!("{api}/v1/auth/signup"),
        a.signups,
    );
    out.push(("signups", rt.spawn(async move {
        attacks::posts(&h, u, n, 50, |i| json!({ "email": format!("new{i}@example.com"), "code": "000000",
            "password": "long-enough-pass-1", "name": "Bot", "address": "1 Bot Street", "phone": "+4930123456" })).await
    })));
    let (h, u, n) = (attacks::client(attacker(6)), api.to_string(), a.methods);
    out.push((
        "made_up_methods",
        rt.spawn(async move { attacks::made_up_methods(&h, &u, n).await }),
    ));
    let (h, u, n) = (attacks::client(attacker(7)), api.to_string(), a.forgeries);
    out.push((
        "token_forgeries",
        rt.spawn(async move { attacks::forgeries(&h, &u, drop.get(), n).await }),
    ));
    let tokens = (0..a.ws_sockets)
        .map(|_| jwt.issue(UserId(uuid::Uuid::new_v4()), Role::Shopper, 3600))
        .collect();
    out.push((
        "ws_status",
        rt.spawn(attacks::ws_status(
            attacker(8),
            port,
            drop.get(),
            tokens,
            500,
        )),
    ));
    out
}
