//! `loadtest webhooks`: deliveries per second per worker. A scratch database gets
//! `--endpoints` endpoints and `--events` order events (one order each, so they may go in
//! parallel); `W` delivery workers (the worker role's `Deliverer`, shipped defaults apart
//! from allowing the loopback receiver) send them to a receiver in this process that
//! verifies every signature. Run once per worker count, side by side. Fails (exit 1) when
//! an event is missing, arrives twice, or carries a bad signature.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use sqlx::{Connection, PgConnection};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vq_core::config::Secret;
use vq_core::Settings;

#[derive(clap::Args)]
pub struct WebhooksArgs {
    #[arg(long, default_value_t = 5000)]
    pub events: i64,
    #[arg(long, default_value_t = 16)]
    pub endpoints: usize,
    /// Worker counts to run, one after the other.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub workers: Vec<usize>,
    /// The receiver's loopback port (0: any free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

#[derive(Serialize)]
pub struct Row {
    pub workers: usize,
    pub events: i64,
    pub endpoints: usize,
    pub seconds: f64,
    pub deliveries_per_s: f64,
    pub per_worker: f64,
    pub duplicates: usize,
    pub bad_signatures: usize,
}

#[derive(Default)]
struct Seen {
    by_id: HashMap<String, u32>,
    bad: usize,
}

type Secrets = Arc<Mutex<HashMap<String, String>>>;

async fn receiver(port: u16, seen: Arc<Mutex<Seen>>, secrets: Secrets) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let handler = move |axum::extract::Path(ep): axum::extract::Path<String>,
                        h: HeaderMap,
                        body: Bytes| {
        let (seen, secrets) = (seen.clone(), secrets.clone());
        async move {
            let sig = h
                .get("vq-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let secret = secrets
                .lock()
                .unwrap()
                .get(&ep)
                .cloned()
                .unwrap_or_default();
            let now = chrono::Utc::now().timestamp();
            let ok = vitaqueue::webhooks::signature::verify(&secret, sig, &body, now, 300).is_ok();
            let id = h
                .get("vq-event-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let mut s = seen.lock().unwrap();
            s.bad += usize::from(!ok);
            *s.by_id.entry(format!("{ep}/{id}")).or_default() += 1;
            StatusCode::NO_CONTENT
        }
    };
    let app = axum::Router::new().route("/hook/{ep}", axum::routing::post(handler));
    RECEIVER.set(format!("http://{addr}")).ok();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(())
}

static RECEIVER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub async fn run(args: &WebhooksArgs, base: &Settings) -> anyhow::Result<Vec<Row>> {
    let (root, _) = base
        .database
        .url
        .expose()
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("database URL has no database name"))?;
    let db_name = format!("vq_bench_wh_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&format!("{root}/postgres")).await?;
    sqlx::query(&format!("CREATE DATABASE \"{db_name}\""))
        .execute(&mut admin)
        .await?;
    let mut s = base.clone();
    s.database.url = Secret::new(format!("{root}/{db_name}"));
    s.webhooks.allow_private = true;
    let result = runs(args, &s).await;
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)"
    ))
    .execute(&mut admin)
    .await?;
    result
}

async fn runs(args: &WebhooksArgs, s: &Settings) -> anyhow::Result<Vec<Row>> {
    let db = vq_core::store::postgres(s).await?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let secrets: Secrets = Arc::default();
    receiver(args.port, seen.clone(), secrets.clone()).await?;
    let mut rows = Vec::new();
    for &w in &args.workers {
        sqlx::query(
            "TRUNCATE webhook_attempts, webhook_deliveries, webhook_events, webhook_endpoints",
        )
        .execute(&db)
        .await?;
        *seen.lock().unwrap() = Seen::default();
        secrets.lock().unwrap().clear();
        let mut cfg = s.webhooks.clone();
        cfg.max_endpoints = cfg.max_endpoints.max(args.endpoints as i64);
        for i in 0..args.endpoints {
            let url = format!("{}/hook/{i}", RECEIVER.get().unwrap());
            let body = vitaqueue::webhooks::endpoints::NewEndpoint {
                url: Some(url),
                events: Some(vec!["order.paid".into()]),
                description: None,
                include_pii: None,
            };
            let c = vitaqueue::webhooks::endpoints::create(&db, &cfg, body).await?;
            secrets.lock().unwrap().insert(i.to_string(), c.secret);
        }
        sqlx::query("SELECT vq_webhook_order('order.paid', g, 1, NULL, 'PAID', 1, 100, NULL, now()) FROM generate_series(1, $1) g")
            .bind(args.events)
            .execute(&db)
            .await?;
        rows.push(one(&db, s, w, args, &seen).await?);
    }
    Ok(rows)
}

async fn one(
    db: &sqlx::PgPool,
    s: &Settings,
    w: usize,
    args: &WebhooksArgs,
    seen: &Arc<Mutex<Seen>>,
) -> anyhow::Result<Row> {
    let total = args.events as usize * args.endpoints;
    let (trigger, stop) = vq_core::shutdown::channel();
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..w)
        .map(|_| {
            let d = vitaqueue::webhooks::Deliverer::new(db.clone(), s.webhooks.clone(), None);
            d.map(|d| tokio::spawn(d.run(stop.clone())))
        })
        .collect::<Result<_, _>>()?;
    while seen.lock().unwrap().by_id.len() < total {
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(600),
            "deliveries did not finish"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = t0.elapsed().as_secs_f64();
    trigger.fire();
    for t in tasks {
        t.await?;
    }
    let s = seen.lock().unwrap();
    let rate = total as f64 / seconds;
    Ok(Row {
        workers: w,
        events: args.events,
        endpoints: args.endpoints,
        seconds,
        deliveries_per_s: rate,
        per_worker: rate / w as f64,
        duplicates: s.by_id.values().map(|&n| n as usize - 1).sum(),
        bad_signatures: s.bad,
    })
}

pub fn print(rows: &[Row]) {
    println!("workers  deliveries  seconds  deliveries/s  per worker  dup  bad-sig");
    for r in rows {
        println!(
            "{:>7}  {:>10}  {:>7.2}  {:>12.0}  {:>10.0}  {:>3}  {:>7}",
            r.workers,
            r.events as usize * r.endpoints,
            r.seconds,
            r.deliveries_per_s,
            r.per_worker,
            r.duplicates,
            r.bad_signatures
        );
    }
}

pub fn failures(rows: &[Row]) -> Vec<String> {
    let mut f = Vec::new();
    for r in rows {
        if r.duplicates > 0 {
            f.push(format!(
                "{} workers: {} duplicate deliveries in a healthy run",
                r.workers, r.duplicates
            ));
        }
        if r.bad_signatures > 0 {
            f.push(format!(
                "{} workers: {} bad signatures",
                r.workers, r.bad_signatures
            ));
        }
    }
    f
}
