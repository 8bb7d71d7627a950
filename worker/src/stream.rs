//! Redis Stream and PostgreSQL plumbing for the order writer.

use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply};
use redis::{from_redis_value, AsyncCommands, Value};
use sqlx::PgPool;
use std::collections::HashMap;
use vq_core::config::Worker as WorkerCfg;
use vq_core::domain::DropId;
use vq_core::RedisConn;
use vq_orders::GROUP;

/// One reservation made by `purchase.lua`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub token: String,
    pub user: uuid::Uuid,
    pub qty: i32,
    pub ts_ms: i64,
    /// The token's admission seq (0 for an entry without one): the order id is derived
    /// from it (`DropId::order_id`) so it equals the id the purchase reply announced.
    pub seq: u64,
}

pub struct Entry {
    pub id: String,
    /// None when the entry cannot be parsed (never written by our script).
    pub reservation: Option<Reservation>,
    /// The fields as read, for the dead-letter stream.
    pub fields: Vec<(String, String)>,
}

fn field<T: redis::FromRedisValue>(e: &StreamId, name: &str) -> Option<T> {
    e.map.get(name).and_then(|v| from_redis_value(v).ok())
}

fn entry(e: StreamId) -> Entry {
    let reservation = (|| {
        Some(Reservation {
            token: field(&e, "token")?,
            user: field::<String>(&e, "user")?.parse().ok()?,
            qty: field(&e, "qty")?,
            ts_ms: field(&e, "ts")?,
            seq: field(&e, "seq").unwrap_or(0),
        })
    })();
    let fields = e
        .map
        .iter()
        .map(|(k, v)| (k.clone(), from_redis_value(v).unwrap_or_default()))
        .collect();
    Entry {
        id: e.id,
        reservation,
        fields,
    }
}

/// New entries for this consumer across all streams. On one server: one XREADGROUP over
/// every stream, blocking up to `block_ms`. On a cluster one command may not span slots and
/// each drop's stream has its own slot, so every stream is read on its own, concurrently and
/// without BLOCK (a blocked read would hold up the node's shared connection); when all are
/// empty the call sleeps a short poll interval instead.
pub async fn read_new(
    conn: &mut RedisConn,
    streams: &HashMap<String, DropId>,
    cfg: &WorkerCfg,
) -> redis::RedisResult<Vec<(String, Vec<Entry>)>> {
    let keys: Vec<&String> = streams.keys().collect();
    if !conn.is_cluster() {
        return read_group(conn, &keys, cfg, Some(cfg.block_ms)).await;
    }
    let reads = keys.iter().map(|k| {
        let mut c = conn.clone();
        async move { read_group(&mut c, &[*k], cfg, None).await }
    });
    let batch: Vec<_> = futures::future::try_join_all(reads)
        .await?
        .into_iter()
        .flatten()
        .collect();
    if batch.iter().all(|(_, e)| e.is_empty()) {
        tokio::time::sleep(std::time::Duration::from_millis(cfg.block_ms.min(50))).await;
    }
    Ok(batch)
}

async fn read_group(
    conn: &mut RedisConn,
    keys: &[&String],
    cfg: &WorkerCfg,
    block_ms: Option<u64>,
) -> redis::RedisResult<Vec<(String, Vec<Entry>)>> {
    let ids = vec![">"; keys.len()];
    let mut opts = StreamReadOptions::default()
        .group(GROUP, &cfg.consumer)
        .count(cfg.batch_size);
    if let Some(ms) = block_ms {
        opts = opts.block(ms as usize);
    }
    let reply: Option<StreamReadReply> = conn.xread_options(keys, &ids, &opts).await?;
    Ok(reply
        .map(|r| {
            r.keys
                .into_iter()
                .map(|k| (k.key, k.ids.into_iter().map(entry).collect()))
                .collect()
        })
        .unwrap_or_default())
}

/// Takes over entries that another (dead) consumer left pending for `claim_idle_ms`.
pub async fn autoclaim(
    conn: &mut RedisConn,
    key: &str,
    cfg: &WorkerCfg,
) -> redis::RedisResult<Vec<(String, Vec<Entry>)>> {
    let reply: Value = redis::cmd("XAUTOCLAIM")
        .arg(key)
        .arg(GROUP)
        .arg(&cfg.consumer)
        .arg(cfg.claim_idle_ms)
        .arg("0-0")
        .arg("COUNT")
        .arg(cfg.batch_size)
        .query_async(conn)
        .await?;
    let reply: StreamAutoClaimReply = from_redis_value(&reply)?;
    let entries = reply.claimed.into_iter().map(entry).collect();
    Ok(vec![(key.to_string(), entries)])
}

pub async fn ack(conn: &mut RedisConn, key: &str, entries: &[&Entry]) -> redis::RedisResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    let _: i64 = conn.xack(key, GROUP, &ids).await?;
    Ok(())
}

/// Inserts all rows in one statement; a token already stored is skipped, which makes a
/// replayed batch (after a crash before ack) harmless. Returns rows newly inserted. Each
/// order's amount is fixed here from its drop's price at this moment, so a later price
/// edit does not change what the holder pays. Rows of unknown drops are not written (the
/// worker dead-letters them before).
pub async fn write_orders(db: &PgPool, rows: &[(DropId, Reservation)]) -> sqlx::Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let tokens: Vec<&str> = rows.iter().map(|(_, r)| r.token.as_str()).collect();
    let drops: Vec<i64> = rows.iter().map(|(d, _)| d.get()).collect();
    let users: Vec<uuid::Uuid> = rows.iter().map(|(_, r)| r.user).collect();
    let qtys: Vec<i32> = rows.iter().map(|(_, r)| r.qty).collect();
    let ts: Vec<i64> = rows.iter().map(|(_, r)| r.ts_ms).collect();
    let ids: Vec<Option<i64>> = rows.iter().map(|(d, r)| d.order_id(r.seq)).collect();
    let event = vq_orders::events::when_subscribed(
        vq_orders::events::EventType::OrderReserved,
        "vq_webhook_order('order.reserved', id, drop_id, user_id, status, quantity, \
         amount_cents, NULL, reserved_at)",
    );
    let done = sqlx::query(&format!(
        "WITH ins AS (
           INSERT INTO orders (id, token, drop_id, user_id, quantity, reserved_at, amount_cents)
           SELECT COALESCE(i, nextval('orders_id_seq')), t, d, u, q, to_timestamp(ms / 1000.0),
                  q * dr.price_cents
           FROM UNNEST($1::text[], $2::bigint[], $3::uuid[], $4::int[], $5::bigint[], $6::bigint[])
             AS x(t, d, u, q, ms, i)
           JOIN drops dr ON dr.id = x.d
           ON CONFLICT (token) DO NOTHING
           RETURNING id, drop_id, user_id, status, quantity, amount_cents, reserved_at)
         SELECT {event} FROM ins ORDER BY id"
    ))
    .bind(&tokens)
    .bind(&drops)
    .bind(&users)
    .bind(&qtys)
    .bind(&ts)
    .bind(&ids)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
