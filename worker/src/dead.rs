//! Poison entries: ones that can never be written (malformed fields, quantity not
//! positive, a drop PostgreSQL does not know, a row the database refuses). They must not
//! hold back the valid entries of their batch, nor be retried forever: such an entry stays
//! pending (XAUTOCLAIM delivers it again) until its delivery count reaches
//! `worker.max_attempts`, then it is copied to the drop's dead-letter stream
//! (`vq:{drop:ID}:orders:dead`, same hash tag), acknowledged, counted
//! (`vq_worker_dead_letters_total`) and logged without personal data.

use crate::stream::{Entry, Reservation};
use redis::Value;
use sqlx::PgPool;
use std::collections::HashSet;
use vq_core::domain::DropId;
use vq_core::RedisConn;
use vq_orders::GROUP;

/// Longest a dead-letter stream grows (approximately): old poison is evidence, not data.
const DEAD_MAXLEN: usize = 10_000;

/// Why an entry cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poison {
    Malformed,
    BadQuantity,
    UnknownDrop,
    Refused,
}

impl Poison {
    pub fn as_str(self) -> &'static str {
        match self {
            Poison::Malformed => "malformed",
            Poison::BadQuantity => "bad_quantity",
            Poison::UnknownDrop => "unknown_drop",
            Poison::Refused => "insert_refused",
        }
    }
}

/// The drops of `ids` that exist in PostgreSQL.
pub async fn known_drops(db: &PgPool, ids: &[i64]) -> sqlx::Result<HashSet<i64>> {
    let found: Vec<i64> = sqlx::query_scalar("SELECT id FROM drops WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(db)
        .await?;
    Ok(found.into_iter().collect())
}

/// Checks one entry before any insert.
pub fn check(entry: &Entry, drop: DropId, known: &HashSet<i64>) -> Result<Reservation, Poison> {
    let r = entry.reservation.as_ref().ok_or(Poison::Malformed)?;
    if r.qty <= 0 {
        return Err(Poison::BadQuantity);
    }
    if !known.contains(&drop.get()) {
        return Err(Poison::UnknownDrop);
    }
    Ok(r.clone())
}

/// How often the group has delivered the entry (1 on the first read).
async fn deliveries(conn: &mut RedisConn, key: &str, id: &str) -> redis::RedisResult<u64> {
    let v: Value = redis::cmd("XPENDING")
        .arg(key)
        .arg(GROUP)
        .arg(id)
        .arg(id)
        .arg(1)
        .query_async(conn)
        .await?;
    let rows: Vec<(String, String, u64, u64)> = redis::from_redis_value(&v)?;
    Ok(rows.first().map_or(0, |r| r.3))
}

/// Dead-letters the entry when it has had its attempts; otherwise leaves it pending for
/// another delivery. Returns true when it was dead-lettered (and acknowledged).
pub async fn handle(
    conn: &mut RedisConn,
    key: &str,
    entry: &Entry,
    why: Poison,
    max_attempts: u64,
) -> redis::RedisResult<bool> {
    let attempts = deliveries(conn, key, &entry.id).await?;
    if attempts < max_attempts.max(1) {
        tracing::debug!(stream = %key, id = %entry.id, reason = why.as_str(), attempts,
            "unwritable entry left pending for another attempt");
        return Ok(false);
    }
    let dead = format!("{key}:dead");
    let mut add = redis::cmd("XADD");
    add.arg(&dead)
        .arg("MAXLEN")
        .arg("~")
        .arg(DEAD_MAXLEN)
        .arg("*");
    add.arg("source_id").arg(&entry.id);
    add.arg("reason").arg(why.as_str());
    add.arg("attempts").arg(attempts);
    for (k, v) in &entry.fields {
        add.arg(format!("f_{k}")).arg(v);
    }
    let _: String = redis::pipe()
        .atomic()
        .add_command(add)
        .cmd("XACK")
        .arg(key)
        .arg(GROUP)
        .arg(&entry.id)
        .ignore()
        .query_async::<(String,)>(conn)
        .await?
        .0;
    metrics::counter!("vq_worker_dead_letters_total", "reason" => why.as_str()).increment(1);
    tracing::error!(stream = %key, id = %entry.id, reason = why.as_str(), attempts,
        dead_letter = %dead, "poison order entry moved to the dead-letter stream");
    Ok(true)
}
