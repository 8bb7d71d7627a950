//! Drops whose Redis state is lost while PostgreSQL still has them open. The scripts see a
//! missing stock key (and say `needs_rebuild`), but when Redis lost everything, the cfg and
//! the active set are gone too and the scripts only say `no_drop`: this module tells the two
//! apart from PostgreSQL, for the request that met it (join, purchase, leave), for `/readyz`,
//! for the `vq_drop_needs_rebuild` gauge and for the automatic rebuild (`autorebuild`).

use crate::drops::store;
use crate::error::{ApiError, NEEDS_REBUILD};
use crate::AppState;
use vq_core::domain::{DropId, DropState};
use vq_core::{Keys, RedisConn};

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
