//! lua/purchase.lua: burn a token, reserve stock (idempotent per token); and
//! lua/gated_purchase.lua, the same behind the request's gate in one call.

use super::{n, unexpected, Scripts};
use crate::clock::Clock;
use crate::domain::{Quantity, UserId};
use crate::keys::DropKeys;
use crate::ratelimit::{GateArgs, GateVerdict};
use redis::aio::ConnectionLike;
use redis::{RedisResult, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurchaseOutcome {
    /// `replayed`: this token had already bought this quantity for this account; the
    /// values are the ones of that first success and nothing changed now.
    Reserved {
        remaining: i64,
        user_total: i64,
        replayed: bool,
        /// Admission order of the token (0: not named by admit.lua); see `DropId::order_id`.
        seq: u64,
    },
    Rejected(PurchaseReject),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurchaseReject {
    /// No cfg in Redis: the caller asks PostgreSQL (a known drop then needs a rebuild).
    NoDrop,
    /// The cfg is there but the stock key is gone: Redis lost state, nothing changed.
    NeedsRebuild,
    InvalidToken,
    NotYourToken,
    TokenUsed,
    TokenExpired,
    DropClosed,
    LimitReached {
        allowance: i64,
    },
    SoldOut,
    InsufficientStock {
        remaining: i64,
    },
}

impl PurchaseReject {
    /// Machine-readable reason code returned to clients.
    pub fn code(&self) -> &'static str {
        match self {
            PurchaseReject::NoDrop => "drop_not_found",
            PurchaseReject::NeedsRebuild => "needs_rebuild",
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

/// What one call of lua/gated_purchase.lua ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatedOutcome {
    /// The gate refused (never [`GateVerdict::Passed`]): the purchase was not tried.
    Stopped(GateVerdict),
    /// The gate passed; what the purchase answered.
    Purchase(PurchaseOutcome),
}

impl Scripts {
    /// Burns `token` and reserves `qty` units for `user`, or says why not. A retry of a
    /// successful call (same token, account and quantity) replays its success.
    pub async fn purchase<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        k: &DropKeys,
        token: &str,
        user: UserId,
        qty: Quantity,
        clock: &Clock,
    ) -> RedisResult<PurchaseOutcome> {
        let stage = Stage::Direct;
        self.purchase_as(conn, k, token, user, qty, clock, stage)
            .await
    }

    /// [`Scripts::purchase`], staged or not (`redis.durability = "strict"` stages: the
    /// order entry waits for [`Scripts::settle`]).
    #[allow(clippy::too_many_arguments)] // the purchase's arguments plus its staging
    pub async fn purchase_as<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        k: &DropKeys,
        token: &str,
        user: UserId,
        qty: Quantity,
        clock: &Clock,
        stage: Stage,
    ) -> RedisResult<PurchaseOutcome> {
        let keys = k.purchase_set();
        let mut cmd = super::evalsha(&self.purchase, keys.len(), keys);
        push_args(&mut cmd, token, user, qty, clock, stage);
        let v: Vec<Value> = super::run_script(conn, &self.purchase, &cmd).await?;
        outcome(&v)
    }

    /// Ends staged purchases (lua/settle.lua): returns how many were committed or undone.
    pub async fn settle<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        k: &DropKeys,
        how: Settle<'_>,
        clock: &Clock,
    ) -> RedisResult<i64> {
        let keys = k.settle_set();
        let mut cmd = super::evalsha(&self.settle, keys.len(), &keys);
        let now = clock.now_ms().to_string();
        match how {
            Settle::Commit(t) => cmd.arg("commit").arg(t),
            Settle::Undo(t) => cmd.arg("undo").arg(t),
            Settle::StagedBefore(ms) => cmd.arg("stale").arg(ms),
        };
        cmd.arg(now);
        super::run_script(conn, &self.settle, &cmd).await
    }

    /// The request's gate (revocation and rate limits, as `GateScript::call`) and then the
    /// purchase, in one script call and one round trip. One server or Sentinels only: the
    /// gate's keys are on other cluster slots than the drop's.
    #[allow(clippy::too_many_arguments)] // the purchase's arguments plus its gate
    pub async fn gated_purchase<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        gate: GateArgs<'_>,
        k: &DropKeys,
        token: &str,
        user: UserId,
        qty: Quantity,
        clock: &Clock,
        stage: Stage,
    ) -> RedisResult<GatedOutcome> {
        let keys = k.purchase_set();
        let count = gate.key_count() + keys.len();
        let all = gate.keys().chain(keys.iter().map(String::as_str));
        let mut cmd = super::evalsha(&self.gated_purchase, count, all);
        cmd.arg(gate.key_count()).arg(gate.arg_count());
        gate.push_args(&mut cmd, clock);
        push_args(&mut cmd, token, user, qty, clock, stage);
        let v: Vec<Value> = super::run_script(conn, &self.gated_purchase, &cmd).await?;
        if tag(&v)? == b"gate" {
            let reply = (n(&v, 1)?, n(&v, 2)?, n(&v, 3)?);
            return Ok(GatedOutcome::Stopped(GateVerdict::from_reply(reply)));
        }
        outcome(&v).map(GatedOutcome::Purchase)
    }
}

/// Whether purchase.lua writes the order entry now or stages it for lua/settle.lua.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Direct,
    Staged,
}

/// What lua/settle.lua does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle<'a> {
    /// A replica confirmed the staged purchase: write its order entry.
    Commit(&'a str),
    /// No replica confirmed it: put everything back as before the purchase.
    Undo(&'a str),
    /// Commit every purchase staged before this time (ms): left behind by a dead node.
    StagedBefore(i64),
}

/// purchase.lua's ARGV.
fn push_args(
    cmd: &mut redis::Cmd,
    token: &str,
    user: UserId,
    qty: Quantity,
    clock: &Clock,
    stage: Stage,
) {
    let mut id = uuid::Uuid::encode_buffer();
    cmd.arg(token)
        .arg(&*user.0.hyphenated().encode_lower(&mut id))
        .arg(qty.get())
        .arg(clock.argv());
    if stage == Stage::Staged {
        cmd.arg("1");
    }
}

/// The reply's first element, the outcome's name, read in place.
fn tag(v: &[Value]) -> RedisResult<&[u8]> {
    match v.first() {
        Some(Value::BulkString(b)) => Ok(b),
        Some(Value::SimpleString(s)) => Ok(s.as_bytes()),
        _ => Err(unexpected("no outcome name")),
    }
}

/// Reads purchase.lua's reply.
fn outcome(v: &[Value]) -> RedisResult<PurchaseOutcome> {
    use PurchaseReject::*;
    let reject = match tag(v)? {
        b"ok" => {
            return Ok(PurchaseOutcome::Reserved {
                remaining: n(v, 1)?,
                user_total: n(v, 2)?,
                replayed: n(v, 3)? == 1,
                seq: u64::try_from(n(v, 4)?).unwrap_or(0),
            })
        }
        b"no_drop" => NoDrop,
        b"needs_rebuild" => NeedsRebuild,
        b"invalid_token" => InvalidToken,
        b"not_your_token" => NotYourToken,
        b"token_used" => TokenUsed,
        b"token_expired" => TokenExpired,
        b"drop_closed" => DropClosed,
        b"limit_reached" => LimitReached {
            allowance: n(v, 1)?,
        },
        b"sold_out" => SoldOut,
        b"insufficient_stock" => InsufficientStock {
            remaining: n(v, 1)?,
        },
        other => return Err(unexpected(&String::from_utf8_lossy(other))),
    };
    Ok(PurchaseOutcome::Rejected(reject))
}
