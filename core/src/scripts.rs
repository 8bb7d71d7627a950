//! The Lua scripts (lua/*.lua), compiled in, sent once and then run by SHA (EVALSHA; the
//! redis crate reloads a script transparently after a Redis restart answers NOSCRIPT).
//! Each call returns a typed outcome instead of raw Redis values.

use crate::clock::Clock;
use crate::domain::{Quantity, UserId};
use crate::keys::DropKeys;
use redis::aio::ConnectionLike;
use redis::{from_redis_value, RedisResult, Script, Value};

pub struct Scripts {
    join: Script,
    admit: Script,
    purchase: Script,
    restock: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts {
            join: Script::new(include_str!("../../lua/join.lua")),
            admit: Script::new(include_str!("../../lua/admit.lua")),
            purchase: Script::new(include_str!("../../lua/purchase.lua")),
            restock: Script::new(include_str!("../../lua/restock.lua")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    /// In the queue at 0-based `rank`; `admitted_total` was the admitted count at that moment.
    Queued {
        rank: u64,
        admitted_total: u64,
        prequeue: bool,
    },
    Admitted {
        token: String,
        expires_at_ms: i64,
    },
    /// Peek only: the account has no place.
    NotQueued,
    Rejected(JoinReject),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinReject {
    NoDrop,
    Closed,
    SoldOut,
    LimitReached,
    NotOpen { opens_at_ms: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub user: String,
    pub token: String,
    /// 1-based global admission order of this drop.
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmitOutcome {
    pub status: String,
    pub admitted: Vec<Admission>,
    pub admitted_total: u64,
    pub queue_len: u64,
    pub live_holders: u64,
    pub expired: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurchaseOutcome {
    Reserved { remaining: i64, user_total: i64 },
    Rejected(PurchaseReject),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurchaseReject {
    InvalidToken,
    NotYourToken,
    TokenUsed,
    TokenExpired,
    DropClosed,
    LimitReached { allowance: i64 },
    SoldOut,
    InsufficientStock { remaining: i64 },
}

impl PurchaseReject {
    /// Machine-readable reason code returned to clients.
    pub fn code(&self) -> &'static str {
        match self {
            PurchaseReject::InvalidToken => "invalid_token",
            PurchaseReject::NotYourToken => "not_your_token",
            PurchaseReject::TokenUsed => "token_used",
            PurchaseReject::TokenExpired => "token_expired",
            PurchaseReject::DropClosed => "drop_closed",
            PurchaseReject::LimitReached { .. } => "limit_reached",
            PurchaseReject::SoldOut => "sold_out",
            PurchaseReject::InsufficientStock { .. } => "insufficient_stock",
        }
    }
}

fn s(v: &[Value], i: usize) -> RedisResult<String> {
    from_redis_value(v.get(i).unwrap_or(&Value::Nil))
}

fn n(v: &[Value], i: usize) -> RedisResult<i64> {
    from_redis_value(v.get(i).unwrap_or(&Value::Nil))
}

fn unexpected(what: &str) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::TypeError,
        "unexpected script reply",
        what.to_string(),
    ))
}

impl Scripts {
    /// Joins the waiting room (or peeks with `peek = true`). `random` is the pre-queue score.
    pub async fn join<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        k: &DropKeys,
        user: UserId,
        clock: &Clock,
        random: f64,
        peek: bool,
    ) -> RedisResult<JoinOutcome> {
        let v: Vec<Value> = self
            .join
            .key(k.cfg())
            .key(k.queue())
            .key(k.seq())
            .key(k.holders())
            .key(k.buyers())
            .key(k.stock())
            .key(k.tokens())
            .key(k.expiry())
            .key(k.admitted())
            .key(k.expired())
            .arg(user.to_string())
            .arg(clock.argv())
            .arg(random)
            .arg(if peek { "peek" } else { "join" })
            .invoke_async(conn)
            .await?;
        Ok(match s(&v, 0)?.as_str() {
            "queued" => JoinOutcome::Queued {
                rank: n(&v, 1)? as u64,
                admitted_total: n(&v, 2)? as u64,
                prequeue: n(&v, 3)? == 1,
            },
            "admitted" => JoinOutcome::Admitted {
                token: s(&v, 1)?,
                expires_at_ms: n(&v, 2)?,
            },
            "not_queued" => JoinOutcome::NotQueued,
            "err" => JoinOutcome::Rejected(match s(&v, 1)?.as_str() {
                "no_drop" => JoinReject::NoDrop,
                "closed" => JoinReject::Closed,
                "sold_out" => JoinReject::SoldOut,
                "limit_reached" => JoinReject::LimitReached,
                "not_open" => JoinReject::NotOpen {
                    opens_at_ms: n(&v, 2)?,
                },
                other => return Err(unexpected(other)),
            }),
            other => return Err(unexpected(other)),
        })
    }

    /// One admission tick for one drop; `token_prefix` must be fresh random hex per call.
    pub async fn admit<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        k: &DropKeys,
        clock: &Clock,
        max_batch: u32,
        token_prefix: &str,
    ) -> RedisResult<AdmitOutcome> {
        let v: Vec<Value> = self
            .admit
            .key(k.cfg())
            .key(k.queue())
            .key(k.tokens())
            .key(k.expiry())
            .key(k.holders())
            .key(k.admitted())
            .key(k.bucket())
            .key(k.window())
            .key(k.stock())
            .key(k.admlog())
            .key(k.events())
            .key(k.expired())
            .arg(clock.argv())
            .arg(max_batch)
            .arg(token_prefix)
            .invoke_async(conn)
            .await?;
        let mut admitted = Vec::with_capacity(v.len().saturating_sub(6) / 3);
        let mut i = 6;
        while i + 2 < v.len() {
            admitted.push(Admission {
                user: s(&v, i)?,
                token: s(&v, i + 1)?,
                seq: n(&v, i + 2)? as u64,
            });
            i += 3;
        }
        Ok(AdmitOutcome {
            status: s(&v, 0)?,
            admitted,
            admitted_total: n(&v, 2)? as u64,
            queue_len: n(&v, 3)? as u64,
            live_holders: n(&v, 4)? as u64,
            expired: n(&v, 5)? as u64,
        })
    }

    /// Burns `token` and reserves `qty` units for `user`, or says why not.
    pub async fn purchase<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        k: &DropKeys,
        token: &str,
        user: UserId,
        qty: Quantity,
        clock: &Clock,
    ) -> RedisResult<PurchaseOutcome> {
        let v: Vec<Value> = self
            .purchase
            .key(k.cfg())
            .key(k.tokens())
            .key(k.expiry())
            .key(k.holders())
            .key(k.stock())
            .key(k.buyers())
            .key(k.orders())
            .key(k.events())
            .key(k.reservations())
            .key(k.expired())
            .arg(token)
            .arg(user.to_string())
            .arg(qty.get())
            .arg(clock.argv())
            .invoke_async(conn)
            .await?;
        use PurchaseReject::*;
        let reject = match s(&v, 0)?.as_str() {
            "ok" => {
                return Ok(PurchaseOutcome::Reserved {
                    remaining: n(&v, 1)?,
                    user_total: n(&v, 2)?,
                })
            }
            "invalid_token" => InvalidToken,
            "not_your_token" => NotYourToken,
            "token_used" => TokenUsed,
            "token_expired" => TokenExpired,
            "drop_closed" => DropClosed,
            "limit_reached" => LimitReached {
                allowance: n(&v, 1)?,
            },
            "sold_out" => SoldOut,
            "insufficient_stock" => InsufficientStock {
                remaining: n(&v, 1)?,
            },
            other => return Err(unexpected(other)),
        };
        Ok(PurchaseOutcome::Rejected(reject))
    }
}

/// One order's stock to give back (see lua/restock.lua).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restock {
    pub order_id: i64,
    pub user: uuid::Uuid,
    pub quantity: i32,
    pub token: String,
}

impl Scripts {
    /// Applies a restock once per order id; returns (applied_now, remaining stock).
    pub async fn restock<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        k: &DropKeys,
        r: &Restock,
    ) -> RedisResult<(bool, i64)> {
        let (applied, left): (i64, i64) = self
            .restock
            .key(k.stock())
            .key(k.buyers())
            .key(k.restocked())
            .key(k.reservations())
            .key(k.events())
            .arg(r.order_id)
            .arg(r.user.to_string())
            .arg(r.quantity)
            .arg(&r.token)
            .invoke_async(conn)
            .await?;
        Ok((applied == 1, left))
    }
}
