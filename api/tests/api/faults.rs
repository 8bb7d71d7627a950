//! Fault tolerance with separate processes: `kill -9` of admission controllers and
//! workers mid-drop (restarted later), and a Redis server killed and restarted from its
//! append-only file mid-drop. After recovery every invariant must hold: no oversell,
//! orders == purchases, no order lost or doubled, every stream entry acknowledged.

use crate::fleet::{self, End, Nodes, Report};
use crate::helpers::*;
use crate::multinode::audit;
use crate::procs::{api_node, vitaqueue, Proc};
use crate::redis_procs::AofRedis;
use redis::AsyncCommands;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use vq_core::domain::DropId;

pub(crate) fn fast() -> Vec<(&'static str, String)> {
    vec![
        ("VQ_WS__RESYNC_MS", "1000".to_string()),
        ("VQ_ADMISSION__TICK_MS", "25".to_string()),
        ("VQ_WORKER__BLOCK_MS", "50".to_string()),
        ("VQ_WORKER__BATCH_SIZE", "10".to_string()),
        ("VQ_WORKER__CLAIM_IDLE_MS", "1000".to_string()),
        ("VQ_WORKER__CLAIM_EVERY_MS", "300".to_string()),
    ]
}

/// Redis answers again through the app's own (reconnecting) connection.
async fn wait_conn(app: &TestApp) {
    for _ in 0..300 {
        let pong: redis::RedisResult<String> =
            redis::cmd("PING").query_async(&mut app.redis.clone()).await;
        if pong.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the app's Redis connection never came back");
}

pub(crate) async fn counter(app: &TestApp, key: String) -> i64 {
    let v: redis::RedisResult<Option<i64>> = app.redis.clone().get(key).await;
    v.ok().flatten().unwrap_or(0)
}

/// Waits until the drop's admitted counter reaches `n`; returns when it did.
pub(crate) async fn admitted_at_least(
    app: &TestApp,
    drop: DropId,
    n: i64,
    within: Duration,
) -> Instant {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if counter(app, app.keys.drop(drop).admitted()).await >= n {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("admitted never reached {n}");
}

pub(crate) async fn crowd(
    port: u16,
    app: &TestApp,
    drop: DropId,
    n: usize,
) -> Vec<JoinHandle<Report>> {
    let nodes = Arc::new(Nodes {
        ports: vec![port],
        http: reqwest::Client::new(),
    });
    let mut tasks = Vec::new();
    for i in 0..n {
        let s = app.shopper();
        let within = Duration::from_secs(90);
        tasks.push(tokio::spawn(fleet::buyer(
            nodes.clone(),
            0,
            drop,
            s,
            within,
        )));
        if i % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    tasks
}

pub(crate) async fn finish(tasks: Vec<JoinHandle<Report>>) -> Vec<Report> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    let odd: Vec<&End> = out
        .iter()
        .map(|r| &r.end)
        .filter(|e| !matches!(e, End::Bought(_) | End::MaybeBought(_)))
        .filter(|e| **e != End::Other("sold_out".into()))
        .collect();
    assert!(
        odd.is_empty(),
        "buyers either bought or met sold_out: {odd:?}"
    );
    out
}

pub(crate) async fn pending(app: &TestApp, drop: DropId) -> u64 {
    let r: redis::streams::StreamPendingReply = app
        .redis
        .clone()
        .xpending(app.keys.drop(drop).orders(), vitaqueue::orders::GROUP)
        .await
        .unwrap();
    r.count() as u64
}

async fn wait_pending(app: &TestApp, drop: DropId, n: u64) {
    for _ in 0..600 {
        if pending(app, drop).await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no worker picked up any entry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_admission_and_worker_processes_mid_drop_loses_nothing() {
    const STOCK: i64 = 60;
    let app = spawn_app().await;
    let s = &app.settings;
    let (api, port) = api_node(s, "api", &fast()).await;
    let drop = app
        .create_drop(json!({ "stock": STOCK, "admission_rate": 40, "max_holders": 20 }))
        .await;
    // Hold the orders table so the workers read entries (now pending for them) and hang
    // in the INSERT: each is then killed with a batch in hand.
    let mut lock = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let tasks = crowd(port, &app, drop, 100).await;
    let mut adm1 = vitaqueue("admission", s, "adm-1", &fast());
    let mut adm2 = vitaqueue("admission", s, "adm-2", &fast());
    let mut wrk1 = vitaqueue("worker", s, "wrk-1", &fast());
    let mut wrk2 = vitaqueue("worker", s, "wrk-2", &fast());

    admitted_at_least(&app, drop, STOCK / 4, Duration::from_secs(30)).await;
    wait_pending(&app, drop, 1).await;
    adm1.kill9();
    wrk1.kill9();
    admitted_at_least(&app, drop, STOCK / 2, Duration::from_secs(30)).await;
    adm2.kill9();
    wrk2.kill9();
    lock.rollback().await.unwrap();
    // Nothing admits or writes now; whatever the dead workers held stays pending.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let frozen = counter(&app, app.keys.drop(drop).admitted()).await;
    let orphaned = pending(&app, drop).await;
    assert!(orphaned > 0, "the dead workers left entries pending");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(counter(&app, app.keys.drop(drop).admitted()).await, frozen);
    assert_eq!(
        app.orders(drop).await,
        0,
        "nothing was written while the table was held"
    );
    let restarted = Instant::now();
    let procs: Vec<Proc> = vec![
        api,
        vitaqueue("admission", s, "adm-3", &fast()),
        vitaqueue("worker", s, "wrk-3", &fast()),
    ];
    let resumed = admitted_at_least(&app, drop, frozen + 1, Duration::from_secs(30)).await;
    let reports = finish(tasks).await;
    let sold = audit(&app, drop, STOCK, &reports).await;
    let drained = Instant::now();
    for _ in 0..100 {
        if pending(&app, drop).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        pending(&app, drop).await,
        0,
        "dead workers' entries reclaimed and acked"
    );
    assert_eq!(sold, STOCK);
    println!(
        "kill -9 admission+worker: sold {sold}/{STOCK}, admitted {frozen} and {orphaned} \
         entries pending for dead workers when all were dead, admission resumed {:?} after \
         the restart, orders complete {:?} after it",
        resumed - restarted,
        drained - restarted,
    );
    std::mem::drop(procs);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_from_its_aof_mid_drop_recovers_without_oversell() {
    const STOCK: i64 = 60;
    let mut redis = AofRedis::start().await;
    let app = spawn_app_with(Opts {
        redis_url: redis.url.clone(),
        ..Opts::default()
    })
    .await;
    let s = &app.settings;
    let (api, port) = api_node(s, "api", &fast()).await;
    let drop = app
        .create_drop(json!({ "stock": STOCK, "admission_rate": 40, "max_holders": 20 }))
        .await;
    let tasks = crowd(port, &app, drop, 100).await;
    let procs = [
        api,
        vitaqueue("admission", s, "adm", &fast()),
        vitaqueue("worker", s, "wrk", &fast()),
    ];
    admitted_at_least(&app, drop, STOCK / 3, Duration::from_secs(30)).await;
    let k = app.keys.drop(drop);
    let before = counter(&app, k.admitted()).await;
    let stock_before = counter(&app, k.stock()).await;
    redis.kill9();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let up = redis.restart().await;
    let restarted = Instant::now();
    wait_conn(&app).await;
    let after = counter(&app, k.admitted()).await;
    assert!(
        after >= before,
        "acknowledged admissions survive: {before} → {after}"
    );
    let stock_after = counter(&app, k.stock()).await;
    assert!(
        (0..=stock_before).contains(&stock_after),
        "acknowledged purchases survive: stock {stock_before} → {stock_after}"
    );
    let resumed = admitted_at_least(&app, drop, after + 1, Duration::from_secs(30)).await;
    let reports = finish(tasks).await;
    let sold = audit(&app, drop, STOCK, &reports).await;
    let done = Instant::now();
    for _ in 0..100 {
        if pending(&app, drop).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        pending(&app, drop).await,
        0,
        "every stream entry acknowledged"
    );
    assert_eq!(sold, STOCK);
    let retries: u32 = reports.iter().map(|r| r.purchase_retries).sum();
    println!(
        "redis kill -9 + AOF restart: down {:?}, AOF load {up:?}, admitted {before} before / \
         {after} after, stock {stock_before} before / {stock_after} after, admission resumed {:?} after the restart, drop complete {:?} after it, \
         sold {sold}/{STOCK}, {retries} purchase retries",
        restarted - killed,
        resumed - restarted,
        done - restarted,
    );
    std::mem::drop(procs);
    app.cleanup().await;
}
