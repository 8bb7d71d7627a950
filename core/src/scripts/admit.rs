//! lua/admit.lua: one admission tick.

use super::{n, s, unexpected, Scripts};
use crate::clock::Clock;
use crate::keys::DropKeys;
use redis::aio::ConnectionLike;
use redis::{RedisResult, Value};

pub use crate::domain::AdmitStatus;

/// Lets callers and tests compare with the wire name (`out.status == "closed"`).
impl PartialEq<&str> for AdmitStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

fn parse_status(raw: &str) -> RedisResult<AdmitStatus> {
    raw.parse().map_err(|_| unexpected(raw))
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
    pub status: AdmitStatus,
    pub admitted: Vec<Admission>,
    pub admitted_total: u64,
    pub queue_len: u64,
    pub live_holders: u64,
    pub expired: u64,
    /// Stock not reserved (what the stock-aware cap is computed from).
    pub remaining: i64,
    /// Reservations not yet paid or given back.
    pub open_reservations: u64,
    /// Buyers removed at the head because they were gone past the leave grace.
    pub left: Vec<String>,
}

/// Fixed part of the reply before the left users and the admissions.
const HEAD: usize = 9;

impl Scripts {
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
            .key(k.unpaid())
            .key(k.seen())
            .key(k.left())
            .key(k.admorder())
            .key(k.joins())
            .arg(clock.argv())
            .arg(max_batch)
            .arg(token_prefix)
            .invoke_async(conn)
            .await?;
        let n_left = n(&v, 8)? as usize;
        let left = (HEAD..HEAD + n_left)
            .map(|i| s(&v, i))
            .collect::<RedisResult<Vec<_>>>()?;
        let mut admitted = Vec::with_capacity(v.len().saturating_sub(HEAD + n_left) / 3);
        let mut i = HEAD + n_left;
        while i + 2 < v.len() {
            admitted.push(Admission {
                user: s(&v, i)?,
                token: s(&v, i + 1)?,
                seq: n(&v, i + 2)? as u64,
            });
            i += 3;
        }
        Ok(AdmitOutcome {
            status: parse_status(&s(&v, 0)?)?,
            admitted,
            admitted_total: n(&v, 2)? as u64,
            queue_len: n(&v, 3)? as u64,
            live_holders: n(&v, 4)? as u64,
            expired: n(&v, 5)? as u64,
            remaining: n(&v, 6)?,
            open_reservations: n(&v, 7)? as u64,
            left,
        })
    }
}
