//! lua/places.lua: many connected buyers' exact places in one call (the room's periodic
//! re-read, batched per node and drop by the api's `room::reads`).

use super::{n, Scripts};
use crate::clock::Clock;
use crate::domain::UserId;
use crate::keys::DropKeys;
use redis::aio::ConnectionLike;
use redis::{RedisResult, Value};

/// The answer for one batch, in the order of the users asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Places {
    pub admitted_total: u64,
    pub prequeue: bool,
    /// `Some(rank)` for a plainly queued buyer (now marked present); `None`: ask join.lua's
    /// peek for this one (token, stale last-seen, sold out, closed, no place).
    pub ranks: Vec<Option<u64>>,
}

impl Scripts {
    /// Reads the places of `users` (all of one drop) and marks the queued ones present.
    pub async fn places<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        k: &DropKeys,
        users: &[UserId],
        clock: &Clock,
    ) -> RedisResult<Places> {
        let mut inv = self.places.prepare_invoke();
        inv.key(k.cfg())
            .key(k.queue())
            .key(k.holders())
            .key(k.stock())
            .key(k.admitted())
            .key(k.seen())
            .arg(clock.argv());
        for u in users {
            inv.arg(u.to_string());
        }
        let v: Vec<Value> = inv.invoke_async(conn).await?;
        let ranks = (0..users.len())
            .map(|i| n(&v, i + 2).map(|r| u64::try_from(r).ok()))
            .collect::<RedisResult<_>>()?;
        Ok(Places {
            admitted_total: n(&v, 0)?.max(0) as u64,
            prequeue: n(&v, 1)? == 1,
            ranks,
        })
    }
}
