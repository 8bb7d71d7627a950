//! The seq lease: the highest admission seq Redis may issue for a drop, written to
//! PostgreSQL (`drop_seq_leases.issued_upto`) BEFORE Redis may issue under it (cfg
//! `seq_lease`, which admit.lua never goes past). After Redis loses a drop, every seq that
//! may carry an acknowledged purchase is at most `issued_upto`: the rebuild compares that
//! with the orders written (docs/durability.md, "After Redis loss").
//!
//! Each api node, every `EVERY`, for each drop whose tick events it heard (admit.lua's
//! event carries the lease: no Redis reads for this): while buyers wait, keeps the lease
//! `chunk(rate)` (5 s of admissions) ahead of the admission counter, writing PostgreSQL
//! once per half chunk; once nobody has waited for `LOWER_AFTER`, lowers it to the counter
//! itself, so a drop at rest has an exact record of what was issued (the first buyer after
//! such a lull waits one round, at most `EVERY`, for the lease to be extended). Invariant: Redis's lease ≤ PostgreSQL's,
//! always; every change of Redis's lease happens under the PostgreSQL row's lock.

use crate::AppState;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use vq_core::domain::{AdmitStatus, DropId, Tick};
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

/// The last tick of each drop as far as the lease goes, recorded by the hub from the tick
/// events every api node hears anyway: keeping the lease costs no Redis reads.
#[derive(Default)]
pub struct Seen(Mutex<HashMap<DropId, Last>>);

#[derive(Clone, Copy)]
struct Last {
    admitted: i64,
    queue: u64,
    rate: i64,
    lease: Option<i64>,
    closed: bool,
    /// When a tick last showed buyers waiting (or the drop was first seen).
    busy_at: Instant,
}

impl Seen {
    pub fn observe(&self, drop: DropId, t: &Tick) {
        let mut all = self.0.lock().expect("lease lock");
        let now = Instant::now();
        let busy_at = match all.get(&drop) {
            Some(l) if t.queue_len == 0 => l.busy_at,
            _ => now,
        };
        all.insert(
            drop,
            Last {
                admitted: t.admitted_total as i64,
                queue: t.queue_len,
                rate: t.rate as i64,
                lease: t.lease.map(|l| l as i64),
                closed: t.status.is_final() || t.status == AdmitStatus::Closed,
                busy_at,
            },
        );
    }

    fn snapshot(&self) -> Vec<(DropId, Last)> {
        let all = self.0.lock().expect("lease lock");
        all.iter().map(|(d, l)| (*d, *l)).collect()
    }

    /// After a change, until the next tick says so itself.
    fn set_lease(&self, drop: DropId, lease: i64) {
        if let Some(l) = self.0.lock().expect("lease lock").get_mut(&drop) {
            l.lease = Some(lease);
        }
    }
}

/// Runs until aborted (the api's shutdown aborts it with the other watchers).
pub async fn run(st: AppState) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for (id, last) in st.hub.leases.snapshot() {
            if let Err(e) = one(&st, id, last).await {
                tracing::warn!(drop = id.get(), error = %e, "seq lease update failed");
            }
        }
    }
}

async fn one(st: &AppState, id: DropId, last: Last) -> anyhow::Result<()> {
    let Some(lease) = last.lease else {
        return Ok(());
    };
    let (db, scripts, k) = (&st.db, &st.scripts, st.keys.drop(id));
    let mut conn = st.redis.clone();
    let step = chunk(last.rate);
    if last.queue > 0 && !last.closed {
        if lease - last.admitted < step / 2 {
            let now = extend(db, &mut conn, scripts, &k, id, last.admitted + step).await?;
            st.hub.leases.set_lease(id, now);
        }
    } else if lease > last.admitted && last.busy_at.elapsed() >= LOWER_AFTER {
        if let Some(now) = lower(db, &mut conn, scripts, &k, id).await? {
            st.hub.leases.set_lease(id, now);
        }
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
) -> anyhow::Result<i64> {
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
    let now = scripts.raise_lease(conn, k, upto.min(want)).await?;
    tx.commit().await?;
    Ok(now)
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
) -> anyhow::Result<Option<i64>> {
    let mut tx = db.begin().await?;
    let row: Option<i64> =
        sqlx::query_scalar("SELECT issued_upto FROM drop_seq_leases WHERE drop_id = $1 FOR UPDATE")
            .bind(id.get())
            .fetch_optional(&mut *tx)
            .await?;
    if row.is_none() {
        return Ok(None);
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
    Ok((to >= 0).then_some(to))
}
