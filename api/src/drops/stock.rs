//! Stock accounting across the two stores: `reconcile` reports drift between Redis and
//! PostgreSQL for a drop; `rebuild` restores a drop's Redis state from PostgreSQL after
//! Redis lost its data, counting every unit PostgreSQL knows is out, so nothing oversells.

use crate::drops::store::{load_from, mirror_to};
use redis::AsyncCommands;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use vq_core::domain::DropId;
use vq_core::{DropKeys, Keys, RedisConn};

/// An order still holding units: token, buyer, quantity, reserved at.
/// token, buyer, quantity, reserved at, status of an order whose units are out.
type Held = (
    String,
    uuid::Uuid,
    i32,
    chrono::DateTime<chrono::Utc>,
    vq_orders::Status,
);

/// Statuses whose units are out of stock (sold or reserved).
const TAKEN: &str = "'PENDING_PAYMENT','CHARGING','PAID','SHIPPING','DELIVERED','RETURN_REQUESTED'";

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Reconciliation {
    pub drop_id: i64,
    pub initial: i64,
    /// Redis: live counter, and units held by recorded reservations.
    pub redis_remaining: i64,
    pub redis_reserved: i64,
    /// PostgreSQL: units paid or further along, units awaiting payment, units given back.
    pub pg_sold: i64,
    pub pg_reserved: i64,
    pub pg_restocked: i64,
    /// Given back in PostgreSQL but not yet applied to Redis.
    pub restocks_pending: i64,
    /// Reserved in Redis, not yet written to PostgreSQL by a worker.
    pub in_flight: i64,
    /// Kept off sale by a confirmed rebuild (seqs issued but never written: their
    /// purchase may have been acknowledged).
    pub held_back: i64,
    /// Redis remaining minus what PostgreSQL (plus in-flight work) says it should be.
    pub drift: i64,
    pub ok: bool,
}

async fn sums(db: &PgPool, drop: i64) -> sqlx::Result<(i64, i64, i64, i64)> {
    sqlx::query_as(&format!(
        "SELECT \
           COALESCE(SUM(quantity) FILTER (WHERE status IN ('PAID','SHIPPING','DELIVERED','RETURN_REQUESTED')), 0)::bigint, \
           COALESCE(SUM(quantity) FILTER (WHERE status IN ('PENDING_PAYMENT','CHARGING')), 0)::bigint, \
           COALESCE(SUM(quantity) FILTER (WHERE status NOT IN ({TAKEN})), 0)::bigint, \
           COALESCE((SELECT SUM(quantity) FROM restocks WHERE drop_id = $1 AND applied_at IS NULL), 0)::bigint \
         FROM orders WHERE drop_id = $1"
    ))
    .bind(drop)
    .fetch_one(db)
    .await
}

pub async fn reconcile(
    db: &PgPool,
    redis: &mut RedisConn,
    keys: &Keys,
    drop: DropId,
) -> anyhow::Result<Reconciliation> {
    let d = load_from(db, drop)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no drop {}", drop.get()))?;
    let k = keys.drop(drop);
    let remaining: Option<i64> = redis.get(k.stock()).await?;
    let resv: HashMap<String, String> = redis.hgetall(k.reservations()).await?;
    let (pg_sold, pg_reserved, pg_restocked, restocks_pending) = sums(db, drop.get()).await?;
    let tokens: Vec<String> = sqlx::query_scalar("SELECT token FROM orders WHERE drop_id = $1")
        .bind(drop.get())
        .fetch_all(db)
        .await?;
    let in_pg: HashSet<String> = tokens.into_iter().collect();
    let qty = |v: &String| {
        v.split('|')
            .nth(1)
            .and_then(|q| q.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let redis_reserved: i64 = resv.values().map(qty).sum();
    let in_flight: i64 = resv
        .iter()
        .filter(|(t, _)| !in_pg.contains(*t))
        .map(|(_, v)| qty(v))
        .sum();
    let initial = i64::from(d.stock);
    let redis_remaining = remaining.unwrap_or(0);
    let held_back: i64 =
        sqlx::query_scalar("SELECT held_back FROM drop_seq_leases WHERE drop_id = $1")
            .bind(drop.get())
            .fetch_optional(db)
            .await?
            .unwrap_or(0);
    let expected = initial - pg_sold - pg_reserved - restocks_pending - in_flight - held_back;
    let drift = redis_remaining - expected;
    Ok(Reconciliation {
        drop_id: drop.get(),
        initial,
        redis_remaining,
        redis_reserved,
        pg_sold,
        pg_reserved,
        pg_restocked,
        restocks_pending,
        in_flight,
        held_back,
        drift,
        ok: drift == 0
            && redis_remaining >= 0
            && redis_remaining + redis_reserved + held_back == initial,
    })
}

/// The manager-confirmed rebuild that keeps nothing back: every unit PostgreSQL does not
/// hold becomes sellable again, including those of seqs issued but not written (see
/// `recover::rebuild_checked`, which refuses or holds those back; the `vitaqueue rebuild`
/// command and the console go through it). Returns the rebuilt stock.
pub async fn rebuild(
    db: &PgPool,
    redis: &mut RedisConn,
    keys: &Keys,
    drop: DropId,
) -> anyhow::Result<i64> {
    restore(db, redis, keys, drop, 0).await
}

/// Units PostgreSQL knows are out (taken orders, and given-back ones whose restock is not
/// applied yet).
pub async fn taken_units(db: &PgPool, drop: DropId) -> sqlx::Result<i64> {
    sqlx::query_scalar(&format!(
        "SELECT COALESCE(SUM(o.quantity), 0)::bigint FROM orders o LEFT JOIN restocks r ON r.order_id = o.id \
         WHERE o.drop_id = $1 AND (o.status IN ({TAKEN}) OR (r.order_id IS NOT NULL AND r.applied_at IS NULL))"
    ))
    .bind(drop.get())
    .fetch_one(db)
    .await
}

/// Restores the drop's Redis state from PostgreSQL: configuration, the stock counter less
/// `held_back` units, each buyer's bought quantity (so per-account limits hold), the unpaid
/// reservations (units that may come back) and the set of applied restocks (so none is
/// applied twice); moves the admission counter and the seq lease past every seq that may
/// have been issued. Waiting-room places and live tokens live only in Redis; buyers
/// rejoin. Returns the rebuilt stock.
pub(crate) async fn restore(
    db: &PgPool,
    redis: &mut RedisConn,
    keys: &Keys,
    drop: DropId,
    held_back: i64,
) -> anyhow::Result<i64> {
    let d = load_from(db, drop)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no drop {}", drop.get()))?;
    let k = keys.drop(drop);
    // Units still out: taken orders, plus given-back ones whose restock is not applied yet
    // (the applier will add those back once, through the script).
    let held: Vec<Held> = sqlx::query_as(&format!(
        "SELECT o.token, o.user_id, o.quantity, o.reserved_at, o.status FROM orders o LEFT JOIN restocks r ON r.order_id = o.id \
         WHERE o.drop_id = $1 AND (o.status IN ({TAKEN}) OR (r.order_id IS NOT NULL AND r.applied_at IS NULL))"
    ))
    .bind(drop.get())
    .fetch_all(db)
    .await?;
    let applied: Vec<i64> = sqlx::query_scalar(
        "SELECT order_id FROM restocks WHERE drop_id = $1 AND applied_at IS NOT NULL",
    )
    .bind(drop.get())
    .fetch_all(db)
    .await?;
    let mut out: HashMap<uuid::Uuid, i64> = HashMap::new();
    for (_, user, q, _, _) in &held {
        *out.entry(*user).or_insert(0) += i64::from(*q);
    }
    let taken: i64 = out.values().sum();
    let stock = i64::from(d.stock) - taken - held_back;
    anyhow::ensure!(
        stock >= 0,
        "PostgreSQL holds more units than the drop had: {taken} + {held_back} held back > {}",
        d.stock
    );
    let mut p = restore_pipe(&k, stock, &out, &held, &applied);
    let (behind, lease) = seq_behind(db, redis, &k, drop).await?;
    if behind > 0 {
        p.incr(k.admitted(), behind).ignore();
    }
    let _: () = p.query_async(redis).await?;
    mirror_to(redis, keys, &d, None).await?;
    // A fresh lease past every seq that may have been issued, in PostgreSQL first.
    let upto = lease.unwrap_or(0) + super::lease::chunk(d.admission_rate.into());
    sqlx::query(
        "INSERT INTO drop_seq_leases (drop_id, issued_upto, held_back) VALUES ($1, $2, $3) \
         ON CONFLICT (drop_id) DO UPDATE SET issued_upto = GREATEST(drop_seq_leases.issued_upto, \
         EXCLUDED.issued_upto), held_back = EXCLUDED.held_back, updated_at = now()",
    )
    .bind(drop.get())
    .bind(upto)
    .bind(held_back)
    .execute(db)
    .await?;
    let _: () = redis.hset(k.cfg(), "seq_lease", upto).await?;
    Ok(stock)
}

/// How far the admission counter is behind the highest seq that may have been issued (the
/// seq lease in PostgreSQL, or the highest seq an order was written with): order ids are
/// `drop * 2^32 + seq`, so after losing the counter new tokens must not reuse a seq that
/// names an order, or that a lost stream entry's 201 promised. INCRBY (not SET) so a
/// concurrent tick is never undone. Also returns the lease, when the drop has one.
async fn seq_behind(
    db: &PgPool,
    redis: &mut RedisConn,
    k: &DropKeys,
    drop: DropId,
) -> anyhow::Result<(i64, Option<i64>)> {
    let max_seq: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(id - drop_id * 4294967296), 0)::bigint FROM orders \
         WHERE drop_id = $1 AND id > drop_id * 4294967296",
    )
    .bind(drop.get())
    .fetch_one(db)
    .await?;
    let lease: Option<i64> =
        sqlx::query_scalar("SELECT issued_upto FROM drop_seq_leases WHERE drop_id = $1")
            .bind(drop.get())
            .fetch_optional(db)
            .await?;
    let now: Option<i64> = redis.get(k.admitted()).await?;
    let top = max_seq.max(lease.unwrap_or(0));
    Ok((top - now.unwrap_or(0), Some(top)))
}

/// One MULTI that replaces the stock counter, the per-buyer counts, the reservations and
/// the applied restocks with what PostgreSQL holds.
fn restore_pipe(
    k: &DropKeys,
    stock: i64,
    bought: &HashMap<uuid::Uuid, i64>,
    held: &[Held],
    applied: &[i64],
) -> redis::Pipeline {
    let mut p = redis::pipe();
    p.atomic()
        .set(k.stock(), stock)
        .ignore()
        .del(k.buyers())
        .ignore();
    for (user, q) in bought {
        p.hset(k.buyers(), user.to_string(), q).ignore();
    }
    p.del(k.reservations()).ignore().del(k.unpaid()).ignore();
    let unpaid = [
        vq_orders::Status::PendingPayment,
        vq_orders::Status::Charging,
    ];
    for (token, _, q, _, _) in held.iter().filter(|h| unpaid.contains(&h.4)) {
        p.hset(k.unpaid(), token, q).ignore();
    }
    for (token, user, q, at, _) in held {
        p.hset(
            k.reservations(),
            token,
            format!("{user}|{q}|{}", at.timestamp_millis()),
        )
        .ignore();
    }
    if !applied.is_empty() {
        p.sadd(k.restocked(), applied).ignore();
    }
    p
}
