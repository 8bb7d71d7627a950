//! The drop's live mirror in Redis: the `cfg` hash the Lua scripts read, written from the
//! durable PostgreSQL row. Only creation and rebuild may create the stock counter; every
//! later change goes through lua/manage.lua, which refuses when Redis lost the drop.

use super::store::DropRow;
use crate::error::{ApiError, NEEDS_REBUILD};
use crate::AppState;
use redis::AsyncCommands;
use vq_core::domain::DropState;
use vq_core::scripts::ManageOutcome;
use vq_core::{Keys, RedisConn};

/// The cfg fields the scripts read, from the durable row, and the node's leave grace
/// (`ws.leave_grace_ms`; None keeps what the cfg has, the scripts default to 60 s).
fn cfg_fields(d: &DropRow, grace_ms: Option<u64>) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("state", d.state.to_string()),
        ("starts_at", d.starts_at.timestamp_millis().to_string()),
        ("prequeue", (i64::from(d.prequeue_s) * 1000).to_string()),
        ("limit", d.per_user_limit.to_string()),
        ("rate", d.admission_rate.to_string()),
        ("max_holders", d.max_holders.to_string()),
        ("ttl", (i64::from(d.token_ttl_s) * 1000).to_string()),
        ("initial_stock", d.stock.to_string()),
        ("overbook", d.overbook.to_string()),
        ("expected_abandon", d.expected_abandon.to_string()),
        ("shuffle_seed", d.shuffle_seed.to_hex()),
        ("pow", d.pow_difficulty.to_string()),
        ("pow_max", d.pow_max_difficulty.to_string()),
    ];
    if let Some(g) = grace_ms {
        f.push(("leave_grace_ms", g.to_string()));
    }
    f
}

/// Mirrors a change of an existing drop (edit, state change) through lua/manage.lua, which
/// writes nothing when Redis lost the drop's state: 503 `needs_rebuild`, never a stock
/// counter recreated at the initial stock (that would sell units twice).
pub async fn mirror(st: &AppState, d: &DropRow) -> Result<(), ApiError> {
    let mut conn = st.redis.clone();
    let k = st.keys.drop(d.drop_id());
    match st
        .scripts
        .manage(&mut conn, &k, &cfg_fields(d, Some(st.ws.leave_grace_ms)))
        .await?
    {
        ManageOutcome::Applied => Ok(register(&mut conn, &st.keys, d).await?),
        ManageOutcome::NoDrop | ManageOutcome::NeedsRebuild => Err(ApiError::Unavailable {
            code: "needs_rebuild",
            message: NEEDS_REBUILD,
        }),
    }
}

/// Drop creation and the rebuild command only: writes the configuration and creates the
/// stock counter when absent (the only paths allowed to create it).
///
/// The drop's own keys change in one MULTI (they share a slot); the global drop sets live
/// in other slots on a Redis Cluster, so they are updated by separate commands afterwards
/// (the admission loop and workers only find the drop once its configuration is there).
pub async fn mirror_to(
    conn: &mut RedisConn,
    keys: &Keys,
    d: &DropRow,
    grace_ms: Option<u64>,
) -> redis::RedisResult<()> {
    let k = keys.drop(d.drop_id());
    let _: () = redis::pipe()
        .atomic()
        .hset_multiple(k.cfg(), &cfg_fields(d, grace_ms))
        .ignore()
        .set_nx(k.stock(), d.stock)
        .ignore()
        .query_async(conn)
        .await?;
    register(conn, keys, d).await
}

/// The order stream's consumer group and the global drop sets.
async fn register(conn: &mut RedisConn, keys: &Keys, d: &DropRow) -> redis::RedisResult<()> {
    let k = keys.drop(d.drop_id());
    vq_orders::ensure_group(conn, &k.orders()).await?;
    if d.state == DropState::Closed {
        let _: () = conn.srem(keys.active_drops(), d.id.get()).await?;
    } else {
        let _: () = conn.sadd(keys.active_drops(), d.id.get()).await?;
    }
    let _: () = conn.sadd(keys.stream_drops(), d.id.get()).await?;
    Ok(())
}
