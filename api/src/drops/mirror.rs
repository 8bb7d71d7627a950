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
///
/// `rate` only with `with_rate` (creation and rebuild): afterwards the live rate belongs to
/// lua/rate.lua (the autopilot, or a manager's change, each recorded), so an edit of another
/// field or a pause never resets what the autopilot set. With the autopilot on, the rate
/// starts at the manager's rate inside the band; `ap_base` is that manager's rate.
fn cfg_fields(d: &DropRow, grace_ms: Option<u64>, with_rate: bool) -> Vec<(&'static str, String)> {
    let ap = d.autopilot();
    let manager = u32::try_from(d.admission_rate).unwrap_or(1);
    let mut f = vec![
        ("state", d.state.to_string()),
        ("starts_at", d.starts_at.timestamp_millis().to_string()),
        ("prequeue", (i64::from(d.prequeue_s) * 1000).to_string()),
        ("limit", d.per_user_limit.to_string()),
        ("max_holders", d.max_holders.to_string()),
        ("ttl", (i64::from(d.token_ttl_s) * 1000).to_string()),
        ("initial_stock", d.stock.to_string()),
        ("overbook", d.overbook.to_string()),
        ("expected_abandon", d.expected_abandon.to_string()),
        ("shuffle_seed", d.shuffle_seed.to_hex()),
        ("pow", d.pow_difficulty.to_string()),
        ("pow_max", d.pow_max_difficulty.to_string()),
        ("ap", u8::from(ap.is_some()).to_string()),
        ("ap_base", manager.to_string()),
    ];
    if let Some(a) = ap {
        f.push(("ap_min", a.min_rate.to_string()));
        f.push(("ap_max", a.max_rate.to_string()));
        f.push(("ap_p99_ms", a.purchase_p99_ms.to_string()));
        f.push(("ap_lag_ms", (u64::from(a.order_lag_s) * 1000).to_string()));
    }
    if with_rate {
        let rate = ap.map_or(manager, |a| a.start_rate(manager));
        f.push(("rate", rate.to_string()));
    }
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
        .manage(
            &mut conn,
            &k,
            &cfg_fields(d, Some(st.ws.leave_grace_ms), false),
        )
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
        .hset_multiple(k.cfg(), &cfg_fields(d, grace_ms, true))
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
