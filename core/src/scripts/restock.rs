//! lua/restock.lua (give an order's units back, once) and the settling of a paid
//! reservation (it stops counting as units that may come back).

use super::{n, s, unexpected, Scripts};
use crate::keys::DropKeys;
use redis::aio::ConnectionLike;
use redis::{RedisResult, Value};

/// One order's stock to give back (see lua/restock.lua).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restock {
    pub order_id: i64,
    pub user: uuid::Uuid,
    pub quantity: i32,
    pub token: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestockOutcome {
    /// Given back now; the remaining stock after it.
    Applied { remaining: i64 },
    /// This order had been given back before; nothing changed.
    Already { remaining: i64 },
    /// No cfg in Redis: nothing applied.
    NoDrop,
    /// cfg without a stock key: Redis lost state; nothing applied until a rebuild.
    NeedsRebuild,
}

impl Scripts {
    /// Applies a restock once per order id, never creating the stock key.
    pub async fn restock_checked<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        k: &DropKeys,
        r: &Restock,
    ) -> RedisResult<RestockOutcome> {
        let v: Vec<Value> = self
            .restock
            .key(k.stock())
            .key(k.buyers())
            .key(k.restocked())
            .key(k.reservations())
            .key(k.events())
            .key(k.cfg())
            .key(k.unpaid())
            .arg(r.order_id)
            .arg(r.user.to_string())
            .arg(r.quantity)
            .arg(&r.token)
            .invoke_async(conn)
            .await?;
        Ok(match s(&v, 0)?.as_str() {
            "applied" => RestockOutcome::Applied {
                remaining: n(&v, 1)?,
            },
            "already" => RestockOutcome::Already {
                remaining: n(&v, 1)?,
            },
            "no_drop" => RestockOutcome::NoDrop,
            "needs_rebuild" => RestockOutcome::NeedsRebuild,
            other => return Err(unexpected(other)),
        })
    }

    /// Applies a restock once per order id; returns (applied_now, remaining stock). A drop
    /// whose Redis state is gone is an error, so the outbox keeps the restock for after the
    /// rebuild instead of marking it applied.
    pub async fn restock<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        k: &DropKeys,
        r: &Restock,
    ) -> RedisResult<(bool, i64)> {
        match self.restock_checked(conn, k, r).await? {
            RestockOutcome::Applied { remaining } => Ok((true, remaining)),
            RestockOutcome::Already { remaining } => Ok((false, remaining)),
            RestockOutcome::NoDrop | RestockOutcome::NeedsRebuild => {
                Err(redis::RedisError::from((
                    redis::ErrorKind::ResponseError,
                    "needs_rebuild",
                    format!("the Redis state of {} is missing", k.cfg()),
                )))
            }
        }
    }

    /// A reservation was paid: its units can no longer come back, so it stops counting as
    /// open (admit.lua then says `sold_out` as soon as nothing else is out). Call once the
    /// payment is final; returns false when it was not open (already settled or restocked).
    pub async fn settle_reservation<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        k: &DropKeys,
        token: &str,
    ) -> RedisResult<bool> {
        let n: i64 = redis::cmd("HDEL")
            .arg(k.unpaid())
            .arg(token)
            .query_async(conn)
            .await?;
        Ok(n == 1)
    }
}
