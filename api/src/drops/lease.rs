//! The seq lease: the highest admission seq Redis may issue for a drop, written to
//! PostgreSQL (`drop_seq_leases.issued_upto`) BEFORE Redis may issue under it (cfg
//! `seq_lease`, which admit.lua never goes past). After Redis loses a drop, every seq that
//! may carry an acknowledged purchase is at most `issued_upto`: the rebuild compares that
//! with the orders written (docs/durability.md, "After Redis loss").
//!
//! Each api node, every `EVERY`, for each active drop: while buyers wait, keeps the lease
//! `chunk(rate)` (5 s of admissions) ahead of the admission counter, writing PostgreSQL
//! once per half chunk; once nobody has waited for `LOWER_AFTER`, lowers it to the counter
//! itself, so a drop at rest has an exact record of what was issued (the first buyer after
//! such a lull waits one round, at most `EVERY`, for the lease to be extended). Invariant: Redis's lease ≤ PostgreSQL's,
//! always; every change of Redis's lease happens under the PostgreSQL row's lock.

use crate::AppState;
use redis::AsyncCommands;
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use vq_core::domain::DropId;
use vq_core::{DropKeys, RedisConn, Scripts};

pub const EVERY: Duration = Duration::from_millis(250);
/// How long the queue must stay empty before the lease comes down to the counter.
pub const LOWER_AFTER: Duration = Duration::from_secs(5);

/// How far ahead of the counter the lease runs while buyers wait: 5 s at the cap rate.
pub fn chunk(rate: i64) -> i64 {
    rate.saturating_mul(5).max(64)
}

/// Drop creation: the first lease, in the creating transaction (before Redis has the cfg).
pub async fn grant_first(tx: &mut sqlx::PgConnection, id: DropId, rate: i64) -> sqlx::Result<i64> {
    let upto = chunk(rate);
    sqlx::query("INSERT INTO drop_seq_leases (drop_id, issued_upto) VALUES ($1, $2)")
        .bind(id.get())
        .bind(upto)
        .execute(tx)
        .await?;
    Ok(upto)
}

/// Runs until aborted (the api's shutdown aborts it with the other watchers).
pub async fn run(st: AppState) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut busy: HashMap<DropId, Instant> = HashMap::new();
    loop {
        tick.tick().await;
        if let Err(e) = round(&st, &mut busy).await {
            tracing::warn!(error = %e, "seq lease round failed");
        }
    }
}

async fn round(st: &AppState, busy: &mut HashMap<DropId, Instant>) -> anyhow::Result<()> {
    let mut conn = st.redis.clone();
    let ids: Vec<i64> = conn.smembers(st.keys.active_drops()).await?;
    let ids: Vec<DropId> = ids
        .into_iter()
        .filter_map(|i| DropId::new(i).ok())
        .collect();
    busy.retain(|id, _| ids.contains(id));
    for id in ids {
        let last_busy = busy.entry(id).or_insert_with(Instant::now);
        let k = st.keys.drop(id);
        one(&st.db, &mut conn, &st.scripts, &k, id, last_busy).await?;
    }
    Ok(())
}

async fn one(
    db: &PgPool,
    conn: &mut RedisConn,
    scripts: &Scripts,
    k: &DropKeys,
    id: DropId,
    last_busy: &mut Instant,
) -> anyhow::Result<()> {
    let (state, rate, lease, admitted, queue): (
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        i64,
    ) = redis::pipe()
        .hget(k.cfg(), "state")
        .hget(k.cfg(), "rate")
        .hget(k.cfg(), "seq_lease")
        .get(k.admitted())
        .zcard(k.queue())
        .query_async(conn)
        .await?;
    let Some(state) = state else { return Ok(()) };
    let admitted = admitted.unwrap_or(0);
    let step = chunk(rate.unwrap_or(0));
    if queue > 0 && state != "closed" {
        *last_busy = Instant::now();
        if lease.is_none_or(|l| l - admitted < step / 2) {
            extend(db, conn, scripts, k, id, admitted + step).await?;
        }
    } else if lease.is_some_and(|l| l > admitted) && last_busy.elapsed() >= LOWER_AFTER {
        lower(db, conn, scripts, k, id).await?;
    }
    Ok(())
}

/// PostgreSQL first (committed), then Redis, to at most what PostgreSQL holds.
async fn extend(
    db: &PgPool,
    conn: &mut RedisConn,
    scripts: &Scripts,
    k: &DropKeys,
    id: DropId,
    want: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO drop_seq_leases (drop_id, issued_upto) VALUES ($1, $2) \
         ON CONFLICT (drop_id) DO UPDATE SET \
         issued_upto = GREATEST(drop_seq_leases.issued_upto, EXCLUDED.issued_upto), updated_at = now()",
    )
    .bind(id.get())
    .bind(want)
    .execute(db)
    .await?;
    let mut tx = db.begin().await?;
    let upto: i64 =
        sqlx::query_scalar("SELECT issued_upto FROM drop_seq_leases WHERE drop_id = $1 FOR UPDATE")
            .bind(id.get())
            .fetch_one(&mut *tx)
            .await?;
    scripts.raise_lease(conn, k, upto.min(want)).await?;
    tx.commit().await?;
    Ok(())
}

/// Nobody waits: Redis's lease comes down to the counter (atomically, so nothing is
/// issued past it), then PostgreSQL's, under the row's lock. A failed commit leaves
/// PostgreSQL higher, which only overstates what may be at stake.
async fn lower(
    db: &PgPool,
    conn: &mut RedisConn,
    scripts: &Scripts,
    k: &DropKeys,
    id: DropId,
) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    let row: Option<i64> =
        sqlx::query_scalar("SELECT issued_upto FROM drop_seq_leases WHERE drop_id = $1 FOR UPDATE")
            .bind(id.get())
            .fetch_optional(&mut *tx)
            .await?;
    if row.is_none() {
        return Ok(());
    }
    let to = scripts.lower_lease(conn, k).await?;
    if to >= 0 {
        sqlx::query("UPDATE drop_seq_leases SET issued_upto = LEAST(issued_upto, $2), updated_at = now() WHERE drop_id = $1")
            .bind(id.get())
            .bind(to)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
