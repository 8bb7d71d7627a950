//! Drops whose Redis state is lost while PostgreSQL still has them open. The scripts see a
//! missing stock key (and say `needs_rebuild`), but when Redis lost everything, the cfg and
//! the active set are gone too and the scripts only say `no_drop`: this module tells the two
//! apart from PostgreSQL, for the request that met it (join, purchase, leave), for `/readyz`,
//! for the `vq_drop_needs_rebuild` gauge and, when enabled, for the automatic rebuild.

use crate::drops::store;
use crate::error::{ApiError, NEEDS_REBUILD};
use crate::AppState;
use redis::AsyncCommands;
use std::collections::HashSet;
use std::time::Duration;
use vq_core::domain::{DropId, DropState};
use vq_core::{Keys, RedisConn};

/// How long one automatic rebuild may hold the lock (it takes milliseconds; the lock only
/// has to outlive it, and expires if the node dies mid-way).
const LOCK_MS: u64 = 30_000;

fn needs_rebuild() -> ApiError {
    ApiError::Unavailable {
        code: "needs_rebuild",
        message: NEEDS_REBUILD,
    }
}

/// Whether a script's `no_drop` means Redis lost the drop: PostgreSQL knows it and it is not
/// closed (then 503 `needs_rebuild`, else 404). Only asked on that rare path.
pub async fn knows(st: &AppState, id: DropId) -> Result<bool, ApiError> {
    Ok(store::load_from(&st.db, id)
        .await?
        .is_some_and(|d| d.state != DropState::Closed))
}

/// The answer for a missing cfg outside the scripts (e.g. leaving the queue).
pub async fn no_drop(st: &AppState, id: DropId) -> ApiError {
    match knows(st, id).await {
        Ok(true) => needs_rebuild(),
        Ok(false) => ApiError::drop_not_found(),
        Err(e) => e,
    }
}

/// Open drops (not closed) whose cfg or stock key is missing in Redis: one query and one
/// round trip, whatever the number of drops.
pub async fn scan(
    db: &sqlx::PgPool,
    redis: &mut RedisConn,
    keys: &Keys,
) -> anyhow::Result<Vec<DropId>> {
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM drops WHERE state <> 'closed' ORDER BY id")
            .fetch_all(db)
            .await?;
    let ids: Vec<DropId> = ids
        .into_iter()
        .filter_map(|i| DropId::new(i).ok())
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let there: Vec<bool> = if redis.is_cluster() {
        // Each drop on its own slot: one pipeline per drop, all at once (redis-rs refuses
        // a pipeline across slots).
        let per_drop = ids.iter().map(|id| {
            let (k, mut conn) = (keys.drop(*id), redis.clone());
            async move {
                let mut p = redis::pipe();
                p.exists(k.cfg()).exists(k.stock());
                p.query_async::<Vec<bool>>(&mut conn).await
            }
        });
        let all = futures::future::try_join_all(per_drop).await?;
        all.into_iter().flatten().collect()
    } else {
        let mut p = redis::pipe();
        for id in &ids {
            let k = keys.drop(*id);
            p.exists(k.cfg()).exists(k.stock());
        }
        p.query_async(redis).await?
    };
    Ok(ids
        .into_iter()
        .zip(there.chunks(2))
        .filter(|(_, c)| !(c[0] && c[1]))
        .map(|(id, _)| id)
        .collect())
}

/// Rebuilds `id` unless another node holds its lock, the drop is no longer lost (a second
/// rebuild of a live drop would forget reservations not yet in PostgreSQL), or an
/// acknowledged purchase may be at stake (that waits for a manager: `recover`). True if
/// rebuilt.
pub async fn rebuild_once(
    db: &sqlx::PgPool,
    redis: &mut RedisConn,
    keys: &Keys,
    id: DropId,
) -> anyhow::Result<bool> {
    let lock = keys.drop(id).rebuild_lock();
    let got: Option<String> = redis::cmd("SET")
        .arg(&lock)
        .arg(std::process::id())
        .arg("NX")
        .arg("PX")
        .arg(LOCK_MS)
        .query_async(redis)
        .await?;
    if got.is_none() {
        return Ok(false);
    }
    let result = async {
        use crate::drops::recover::{rebuild_checked, Decision, Refused};
        match rebuild_checked(db, redis, keys, id, Decision::Unconfirmed, "auto").await? {
            Ok(_) => anyhow::Ok(true),
            Err(Refused::NotLost) => Ok(false),
            Err(Refused::NeedsConfirm(s)) => {
                tracing::error!(
                    drop = id.get(),
                    units_at_risk = s.units_at_risk,
                    unwritten_seqs = s.unwritten_seqs,
                    "not rebuilt automatically: acknowledged purchases may be at stake; \
                     a manager must confirm (vitaqueue rebuild --drop ID --confirm)"
                );
                Ok(false)
            }
        }
    }
    .await;
    let _: Result<i64, _> = redis.del(&lock).await;
    result
}

/// Every `every`: scans, keeps `vq_drop_needs_rebuild{drop}` in step (1 while lost, back to
/// 0 once restored) and, with `auto`, rebuilds the lost drops. Runs until aborted.
pub async fn watch(st: AppState, every: Duration, auto: bool) {
    let mut lost_before: HashSet<DropId> = HashSet::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut conn = st.redis.clone();
        let lost = match scan(&st.db, &mut conn, &st.keys).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "lost-state check failed");
                continue;
            }
        };
        let now: HashSet<DropId> = lost.iter().copied().collect();
        for id in lost_before.difference(&now) {
            metrics::gauge!("vq_drop_needs_rebuild", "drop" => id.to_string()).set(0.0);
        }
        for id in &lost {
            metrics::gauge!("vq_drop_needs_rebuild", "drop" => id.to_string()).set(1.0);
            tracing::warn!(
                drop = id.get(),
                "drop's Redis state is missing: needs rebuild"
            );
            if auto {
                if let Err(e) = rebuild_once(&st.db, &mut conn, &st.keys, *id).await {
                    tracing::error!(drop = id.get(), error = %e, "automatic rebuild failed");
                }
            }
        }
        lost_before = now;
    }
}
