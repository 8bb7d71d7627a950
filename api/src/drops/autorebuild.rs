//! The lost-state watcher: every `redis.lost_check_ms` it finds the drops Redis lost
//! (`lost::scan`), keeps `vq_drop_needs_rebuild{drop}` in step and, with
//! `redis.auto_rebuild`, rebuilds them one node at a time through the checked rebuild
//! (`recover`), which waits for a manager when an acknowledged purchase may be at stake.
//!
//! Arrows: autorebuild → lost (detection), recover (the rebuild); neither points back.

use crate::drops::lost::scan;
use crate::AppState;
use redis::AsyncCommands;
use std::collections::HashSet;
use std::time::Duration;
use vq_core::domain::DropId;
use vq_core::{Keys, RedisConn};

/// How long one automatic rebuild may hold the lock (it takes milliseconds; the lock only
/// has to outlive it, and expires if the node dies mid-way).
const LOCK_MS: u64 = 30_000;

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
