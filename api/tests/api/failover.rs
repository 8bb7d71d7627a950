//! Redis primary failover under load: a primary, one replica and three Sentinels; the
//! api, admission and worker processes find the primary through the Sentinels and, with
//! the defaults as shipped (`redis.wait_replicas = "auto"`, nothing set by hand), wait
//! for one replica (`WAIT 1`) before acknowledging a purchase or an admission. The
//! primary is SIGKILLed mid-drop; the Sentinels promote the replica and every role
//! follows without a restart. Afterwards: every 201 has exactly one order, nothing is
//! oversold or sold twice, and the buyers who had joined keep their places.

use crate::faults::{admitted_at_least, counter, crowd, fast, finish, pending};
use crate::helpers::*;
use crate::multinode::audit;
use crate::procs::{api_node, vitaqueue};
use crate::sentinel_procs::{RedisHa, MASTER};
use redis::AsyncCommands;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use vq_core::config::Secret;
use vq_core::domain::DropId;
use vq_core::{Durable, RedisConn};

/// The queue as (user, score): the score is the buyer's place.
async fn queue(app: &TestApp, drop: DropId) -> HashMap<String, f64> {
    let v: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(app.keys.drop(drop).queue())
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut app.redis.clone())
        .await
        .unwrap();
    v.into_iter().collect()
}

async fn read_after_failover(app: &TestApp, drop: DropId) -> (i64, HashMap<String, f64>) {
    for _ in 0..200 {
        let q: redis::RedisResult<Vec<(String, f64)>> = redis::cmd("ZRANGE")
            .arg(app.keys.drop(drop).queue())
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut app.redis.clone())
            .await;
        if let Ok(q) = q {
            let admitted = counter(app, app.keys.drop(drop).admitted()).await;
            return (admitted, q.into_iter().collect());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the test app never reached the new primary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_killed_mid_drop_fails_over_without_losing_an_acknowledged_write() {
    const STOCK: i64 = 100;
    const BUYERS: usize = 300;
    let mut ha = RedisHa::start().await;
    let opts = Opts {
        redis_url: ha.primary_url.clone(),
        ..Opts::default()
    };
    let app = spawn_app_tuned(opts, ha.configure()).await;
    let s = &app.settings;
    let mut env = fast();
    env.extend(ha.env());
    let (api, port) = api_node(s, "api", &env).await;
    let drop = app
        .create_drop(json!({ "stock": STOCK, "admission_rate": 60, "max_holders": 30 }))
        .await;
    let tasks = crowd(port, &app, drop, BUYERS).await;
    let procs = [
        api,
        vitaqueue("admission", s, "adm", &env),
        vitaqueue("worker", s, "wrk", &env),
    ];
    admitted_at_least(&app, drop, STOCK / 3, Duration::from_secs(30)).await;
    let k = app.keys.drop(drop);
    let admitted_before = counter(&app, k.admitted()).await;
    let sold_before = STOCK - counter(&app, k.stock()).await;
    let waiting = queue(&app, drop).await;
    // Joins are not waited for: give the replication stream a moment (every admission's
    // WAIT flushes it anyway) so the places compared below were acknowledged long ago.
    tokio::time::sleep(Duration::from_millis(50)).await;
    ha.kill_primary();
    let killed = Instant::now();
    let promoted = ha.wait_promoted(Duration::from_secs(20)).await;
    let (admitted_after, queue_after) = read_after_failover(&app, drop).await;
    assert!(
        admitted_after >= admitted_before,
        "acknowledged admissions survive: {admitted_before} → {admitted_after}"
    );
    let moved: Vec<_> = waiting
        .iter()
        .filter(|(u, score)| queue_after.get(*u).is_some_and(|s| s != *score))
        .collect();
    assert!(
        moved.is_empty(),
        "places changed in the failover: {moved:?}"
    );
    let still_waiting = waiting
        .keys()
        .filter(|u| queue_after.contains_key(*u))
        .count();
    let gone = waiting.len() - still_waiting;
    assert!(
        gone as i64 <= admitted_after - admitted_before + 1,
        "only admission takes buyers out of the queue: {gone} left, {} admitted since",
        admitted_after - admitted_before
    );
    let resumed = admitted_at_least(&app, drop, admitted_after + 1, Duration::from_secs(30)).await;
    let reports = finish(tasks).await;
    let sold = audit(&app, drop, STOCK, &reports).await;
    for _ in 0..100 {
        if pending(&app, drop).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sold, STOCK, "sold + remaining == stock, all of it sold");
    let retries: u32 = reports.iter().map(|r| r.purchase_retries).sum();
    println!(
        "sentinel failover: promoted {promoted:?} after the kill, admission resumed {:?} \
         after it, sold {sold_before} before, {sold}/{STOCK} in the end, admitted \
         {admitted_before} before / {admitted_after} after, {} of {} waiting buyers still \
         queued at their places, {retries} purchase retries",
        resumed - killed,
        still_waiting,
        waiting.len(),
    );
    std::mem::drop(procs);
    app.cleanup().await;
}

/// A graceful failover demotes the old primary (its clients are disconnected, and a
/// reconnect there meets READONLY): the same `RedisConn` finds the new primary, keeps the
/// data written before, and `WAIT` counts the demoted node once it replicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_follows_a_manual_failover_and_keeps_waiting_for_a_replica() {
    let ha = RedisHa::start().await;
    let mut cfg = vq_core::Settings::default().redis;
    cfg.url = Secret::new(ha.primary_url.clone());
    cfg.sentinels = ha.sentinel_urls.clone();
    cfg.master_name = Some(MASTER.into());
    cfg.wait_replicas = vq_core::config::WaitReplicas::Exactly(1);
    let mut conn = RedisConn::connect(&cfg).await.unwrap();
    let key = format!("vqt-failover-{}", uuid::Uuid::new_v4().simple());
    let _: () = conn.set(&key, 1).await.unwrap();
    assert_eq!(
        conn.wait_durable("test").await.unwrap(),
        Durable::Replicated
    );
    ha.manual_failover().await;
    let took = ha.wait_promoted(Duration::from_secs(20)).await;
    let t0 = Instant::now();
    let (mut errors, mut unconfirmed) = (0, 0i64);
    // Until the old primary is demoted it still takes writes (which the failover then
    // drops): WAIT reports them as short. Only a write WAIT confirmed is acknowledged.
    let acked: i64 = loop {
        assert!(t0.elapsed() < Duration::from_secs(15), "no write confirmed");
        match conn.incr::<_, _, i64>(&key, 1).await {
            Ok(v) => match conn.wait_durable("test").await {
                Ok(Durable::Replicated) => break v,
                Ok(_) => unconfirmed += 1,
                Err(_) => errors += 1,
            },
            Err(_) => errors += 1,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let confirmed_after = t0.elapsed();
    assert!(acked >= 2, "the write before the failover survived it");
    let now: i64 = conn.get(&key).await.unwrap();
    assert!(now >= acked, "a confirmed write survives: {acked} → {now}");
    // The first short WAIT makes the connection ask the Sentinels, who already name the
    // new primary: at most a write or two went to the old one and were dropped with it.
    let lost = (unconfirmed + 2) - acked;
    assert!(lost <= 2, "{lost} writes went to the demoted primary");
    let role: Vec<redis::Value> = redis::cmd("ROLE")
        .query_async(
            &mut redis::Client::open(format!("redis://127.0.0.1:{}", ha.replica_port))
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(role[0], redis::Value::BulkString(b"master".to_vec()));
    println!(
        "manual failover: promoted after {took:?}; first write confirmed by a replica \
         {confirmed_after:?} later, after {unconfirmed} unconfirmed writes ({lost} of them \
         to the old primary, lost) and {errors} errors"
    );
}
