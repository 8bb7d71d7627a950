//! lua/join.lua (join or peek) and lua/touch.lua (last-seen for the leave grace).

use super::{n, s, unexpected, Scripts};
use crate::clock::Clock;
use crate::domain::UserId;
use crate::fairness::Draw;
use crate::keys::DropKeys;
use redis::aio::ConnectionLike;
use redis::{RedisResult, Value};

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
        /// The 1-based admission number, as in the tick that issued the token.
        seq: Option<u64>,
    },
    /// Peek only: the account has no place.
    NotQueued,
    Rejected(JoinReject),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinReject {
    /// No cfg in Redis: the caller asks PostgreSQL (a known drop then needs a rebuild).
    NoDrop,
    /// The cfg is there but the stock key is gone: Redis lost state, nothing changed.
    NeedsRebuild,
    Closed,
    /// Stock 0. A buyer already waiting keeps the place (waitlist): units given back go
    /// to the earliest waiter, whose next join/peek answers `Admitted`.
    SoldOut,
    /// Stock 0, but this buyer keeps the place (waitlist): units given back go to the
    /// earliest waiter, whose next join/peek answers `Admitted`.
    Waitlisted,
    LimitReached,
    NotOpen {
        opens_at_ms: i64,
    },
}

impl Scripts {
    /// Joins the waiting room (or peeks with `peek = true`); both mark the buyer as present.
    /// `draw` is the buyer's pre-queue score and pseudonym (see `crate::fairness`).
    pub async fn join<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        k: &DropKeys,
        user: UserId,
        clock: &Clock,
        draw: Draw<'_>,
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
            .key(k.seen())
            .key(k.left())
            .key(k.draw())
            .key(k.joins())
            .arg(user.to_string())
            .arg(clock.argv())
            .arg(draw.score.to_string())
            .arg(if peek { "peek" } else { "join" })
            .arg(draw.pseudonym)
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
                seq: u64::try_from(n(&v, 3)?).ok().filter(|s| *s > 0),
            },
            "not_queued" => JoinOutcome::NotQueued,
            "err" => JoinOutcome::Rejected(match s(&v, 1)?.as_str() {
                "no_drop" => JoinReject::NoDrop,
                "needs_rebuild" => JoinReject::NeedsRebuild,
                "closed" => JoinReject::Closed,
                "sold_out" if s(&v, 2)? == "waiting" => JoinReject::Waitlisted,
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

    /// Records that `user` is still there (socket open, or closing now), so the leave grace
    /// counts from the last sign of life. Returns false when the buyer holds no place.
    pub async fn touch<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        k: &DropKeys,
        user: UserId,
        clock: &Clock,
    ) -> RedisResult<bool> {
        let done: i64 = self
            .touch
            .key(k.queue())
            .key(k.seen())
            .arg(user.to_string())
            .arg(clock.argv())
            .invoke_async(conn)
            .await?;
        Ok(done == 1)
    }
}
