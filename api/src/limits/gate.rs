//! The gate of the hot requests (join, purchase): the access token's revocation and every
//! rate-limit bucket of the request in ONE round trip, instead of one each.
//!
//! On one server (and behind Sentinels) that is one call of lua/gate.lua, which checks the
//! revocation mark and takes the buckets' cells in order, stopping at the first refusal, as
//! one-after-another checks would. The keys live on different Redis Cluster slots
//! (`auth:revoked:{jti}`, one bucket per address, one per account), so on a cluster no
//! script may read them all: they go out as concurrent commands on the multiplexed
//! connection (redis-rs refuses a cross-slot pipeline), one round trip of latency too.
//! Every check runs on the shared Redis either way, so a revocation or a spent budget is
//! seen by every api node on the very next request.
//!
//! The cluster's concurrent checks all run at once, so cells the sequential order would
//! never have taken are given back: every cell when the token turns out revoked, and those
//! of the buckets after the first one that refused. The buckets end as they would have: a
//! refused request changes nothing it did not change before. Between the take and the
//! give-back a concurrent request may see the bucket one cell emptier, which errs on the
//! strict side.

use super::Limiters;
use crate::error::ApiError;
use futures::future::try_join_all;
use redis::RedisResult;
use vq_core::config::Limit;
use vq_core::ratelimit::{bucket_key, GateArgs, GateVerdict, Rate, Verdict};
use vq_core::RedisConn;

/// A refusal of the gate ([`GateVerdict::Revoked`] or `Refused`) as the client sees it.
pub fn refusal(v: GateVerdict) -> ApiError {
    match v.retry_after_s() {
        Some(retry_after_s) => ApiError::RateLimited { retry_after_s },
        None => crate::extract::token_revoked(),
    }
}

/// A purchase's gate, owned, for `Scripts::gated_purchase` (see
/// [`Limiters::purchase_folded`]).
pub struct Folded {
    revoked: Option<String>,
    checks: [Check; 2],
}

impl Folded {
    /// The buckets that are switched on, as [`GateArgs`] takes them (its `buckets` borrows
    /// this list).
    pub fn buckets(&self) -> Vec<(&str, Rate)> {
        switched_on(&self.checks)
    }

    pub fn args<'a>(&'a self, buckets: &'a [(&'a str, Rate)]) -> GateArgs<'a> {
        GateArgs {
            revoked: self.revoked.as_deref(),
            buckets,
        }
    }
}

/// One bucket a request must pass: its key and rate (`None`: the limit is switched off).
pub(super) struct Check {
    key: String,
    rate: Option<Rate>,
}

/// The checks whose limit is on, in order, as the gate scripts take them.
fn switched_on(checks: &[Check]) -> Vec<(&str, Rate)> {
    (checks.iter())
        .filter_map(|c| c.rate.map(|r| (c.key.as_str(), r)))
        .collect()
}

impl Limiters {
    pub(super) fn check(&self, name: &str, limit: Limit, client: impl std::fmt::Display) -> Check {
        let rate = Rate::per_minute(limit);
        Check {
            key: rate.map_or_else(String::new, |_| bucket_key(&self.keys, name, client)),
            rate,
        }
    }

    /// Refuses a revoked access token (`revoked`: its jti) with 401 `token_revoked`, then
    /// the first bucket that is empty with 429; takes one cell of each bucket otherwise.
    pub(super) async fn gate(
        &self,
        revoked: Option<&uuid::Uuid>,
        checks: &[Check],
    ) -> Result<(), ApiError> {
        let on = switched_on(checks);
        let revoked_key = revoked.map(|jti| self.keys.revoked_jti(jti));
        if on.is_empty() && revoked_key.is_none() {
            return Ok(());
        }
        let mut conn = self.redis.clone();
        if !conn.is_cluster() {
            let v = self
                .gate_script
                .call(&mut conn, revoked_key.as_deref(), &on, &self.clock)
                .await?;
            return match v {
                GateVerdict::Passed => Ok(()),
                refused => Err(refusal(refused)),
            };
        }
        let (is_revoked, verdicts) = self
            .concurrently(&mut conn, revoked_key.as_deref(), &on)
            .await?;
        let refused = verdicts.iter().position(|v| v.retry_after_s().is_some());
        let keep = match refused {
            _ if is_revoked => 0,
            Some(first) => first,
            None => verdicts.len(),
        };
        for ((key, rate), v) in on.iter().zip(&verdicts).skip(keep) {
            if matches!(v, Verdict::Allowed { .. }) {
                self.script
                    .give_back(&mut conn, key, *rate, &self.clock)
                    .await?;
            }
        }
        if is_revoked {
            return Err(crate::extract::token_revoked());
        }
        match refused.and_then(|i| verdicts[i].retry_after_s()) {
            Some(retry_after_s) => Err(ApiError::RateLimited { retry_after_s }),
            None => Ok(()),
        }
    }

    /// The purchase's checks to send inside the purchase's own script call
    /// (`Scripts::gated_purchase`): `None` on a cluster, whose gate keys are on other slots
    /// than the drop's (the caller then runs [`Limiters::purchase`] first), and when there
    /// is nothing to check.
    pub fn purchase_folded(
        &self,
        ip: std::net::IpAddr,
        user: vq_core::domain::UserId,
        revoked: Option<&uuid::Uuid>,
    ) -> Option<Folded> {
        if self.redis.is_cluster() {
            return None;
        }
        let checks = self.purchase_checks(ip, user);
        let revoked = revoked.map(|jti| self.keys.revoked_jti(jti));
        let any = revoked.is_some() || checks.iter().any(|c| c.rate.is_some());
        any.then_some(Folded { revoked, checks })
    }

    /// The same checks as concurrent commands: a cluster routes each by its own slot.
    async fn concurrently(
        &self,
        conn: &mut RedisConn,
        revoked: Option<&str>,
        on: &[(&str, Rate)],
    ) -> RedisResult<(bool, Vec<Verdict>)> {
        let exists = async {
            match revoked {
                Some(key) => {
                    redis::cmd("EXISTS")
                        .arg(key)
                        .query_async(&mut conn.clone())
                        .await
                }
                None => Ok(false),
            }
        };
        let buckets = try_join_all(on.iter().map(|(key, rate)| {
            let mut conn = conn.clone();
            async move {
                self.script
                    .call(&mut conn, key, *rate, 1, &self.clock)
                    .await
            }
        }));
        futures::try_join!(exists, buckets)
    }
}
