//! (b) A Redis SET NX lock and (c) a plain Lua script, each on its own scratch keys.
//! The lock is the common "distributed lock" fix: correct, but every purchase holds the
//! lock across several round trips, so purchases run one at a time and the waiters spin.
//! The Lua script does check-decrement-record in one atomic server-side step instead.

use super::{Plan, Row};
use crate::harness::{drive, oversold, Attempt};
use redis::{AsyncCommands, Script};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use vq_core::RedisConn;

/// Only the holder may release: a late release after the lock expired must not free a lock
/// someone else holds by then.
const RELEASE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

const BUY: &str = r"
local s = tonumber(redis.call('GET', KEYS[1]) or '0')
if s <= 0 then return 0 end
redis.call('DECR', KEYS[1])
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1";

/// Lock lease: far above one purchase's hold time, so it only matters for a crashed holder.
const LEASE_MS: u64 = 2000;

struct Scratch {
    prefix: String,
    stock: String,
    orders: String,
    lock: String,
}

async fn scratch(conn: &mut RedisConn, plan: &Plan) -> anyhow::Result<Scratch> {
    let prefix = format!(
        "vqstrat{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let s = Scratch {
        stock: format!("{prefix}:{{s}}:stock"),
        orders: format!("{prefix}:{{s}}:orders"),
        lock: format!("{prefix}:{{s}}:lock"),
        prefix,
    };
    let _: () = conn.set(&s.stock, plan.stock).await?;
    Ok(s)
}

async fn finish(
    conn: &mut RedisConn,
    s: &Scratch,
    plan: &Plan,
    name: &'static str,
    measured: crate::harness::Measured,
    cpu: crate::procstat::CpuShare,
    note: String,
) -> anyhow::Result<Row> {
    let remaining: i64 = conn.get(&s.stock).await?;
    let orders: i64 = conn.llen(&s.orders).await?;
    crate::inproc::delete_prefix(conn, &s.prefix).await?;
    Ok(Row {
        strategy: name,
        sold: plan.stock - remaining,
        recorded_orders: orders,
        oversold: oversold(plan.stock, orders, remaining),
        note,
        measured,
        cpu,
    })
}

pub async fn lock(conn: &RedisConn, plan: &Plan) -> anyhow::Result<Row> {
    let mut c = conn.clone();
    let s = Arc::new(scratch(&mut c, plan).await?);
    let retries = Arc::new(AtomicU64::new(0));
    let release = Arc::new(Script::new(RELEASE));
    let (conn2, s2, r2) = (conn.clone(), s.clone(), retries.clone());
    let cpu = crate::procstat::Snapshot::take();
    let m = drive(plan.buyers, plan.concurrency, plan.limit, move |i| {
        let (mut conn, s, retries, release) =
            (conn2.clone(), s2.clone(), r2.clone(), release.clone());
        async move {
            let me = i.to_string();
            let mut backoff_ms = 1;
            loop {
                let got: Option<String> = redis::cmd("SET")
                    .arg(&s.lock)
                    .arg(&me)
                    .arg("NX")
                    .arg("PX")
                    .arg(LEASE_MS)
                    .query_async(&mut conn)
                    .await?;
                if got.is_some() {
                    break;
                }
                retries.fetch_add(1, Ordering::Relaxed);
                // Short jittered backoff: spinning without one floods Redis with SETs.
                let jitter = rand::random::<u64>() % backoff_ms;
                tokio::time::sleep(Duration::from_millis(1 + jitter)).await;
                backoff_ms = (backoff_ms * 2).min(8);
            }
            let left: i64 = conn.get(&s.stock).await?;
            let outcome = if left > 0 {
                let _: i64 = conn.decr(&s.stock, 1).await?;
                let _: i64 = conn.rpush(&s.orders, &me).await?;
                Attempt::Bought
            } else {
                Attempt::Rejected
            };
            let _: i64 = release
                .key(&s.lock)
                .arg(&me)
                .invoke_async(&mut conn)
                .await?;
            Ok(outcome)
        }
    })
    .await;
    let cpu = cpu.share_until(&crate::procstat::Snapshot::take());
    let note = format!("{} lock retries", retries.load(Ordering::Relaxed));
    finish(&mut c, &s, plan, "redis_setnx_lock", m, cpu, note).await
}

pub async fn lua(conn: &RedisConn, plan: &Plan) -> anyhow::Result<Row> {
    let mut c = conn.clone();
    let s = Arc::new(scratch(&mut c, plan).await?);
    let buy = Arc::new(Script::new(BUY));
    let (conn2, s2) = (conn.clone(), s.clone());
    let cpu = crate::procstat::Snapshot::take();
    let m = drive(plan.buyers, plan.concurrency, plan.limit, move |i| {
        let (mut conn, s, buy) = (conn2.clone(), s2.clone(), buy.clone());
        async move {
            let ok: i64 = buy
                .key(&s.stock)
                .key(&s.orders)
                .arg(i)
                .invoke_async(&mut conn)
                .await?;
            Ok(if ok == 1 {
                Attempt::Bought
            } else {
                Attempt::Rejected
            })
        }
    })
    .await;
    let cpu = cpu.share_until(&crate::procstat::Snapshot::take());
    finish(
        &mut c,
        &s,
        plan,
        "redis_lua_script",
        m,
        cpu,
        "one EVALSHA per attempt".into(),
    )
    .await
}
