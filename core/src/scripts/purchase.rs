//! lua/purchase.lua: burn a token, reserve stock (idempotent per token).

use super::{n, s, unexpected, Scripts};
use crate::clock::Clock;
use crate::domain::{Quantity, UserId};
use crate::keys::DropKeys;
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
        let mut id = uuid::Uuid::encode_buffer();
        let mut cmd = super::evalsha(&self.purchase, k.purchase_set());
        cmd.arg(token)
            .arg(&*user.0.hyphenated().encode_lower(&mut id))
            .arg(qty.get())
            .arg(clock.argv());
        let v: Vec<Value> = super::run_script(conn, &self.purchase, &cmd).await?;
        use PurchaseReject::*;
        let reject = match s(&v, 0)?.as_str() {
            "ok" => {
                return Ok(PurchaseOutcome::Reserved {
                    remaining: n(&v, 1)?,
                    user_total: n(&v, 2)?,
                    replayed: n(&v, 3)? == 1,
                    seq: u64::try_from(n(&v, 4)?).unwrap_or(0),
                })
            }
            "no_drop" => NoDrop,
            "needs_rebuild" => NeedsRebuild,
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
