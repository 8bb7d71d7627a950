//! Rate limits (governor token buckets, in process) per client IP and per account, on
//! login, code sending, joining, purchasing and paying. A refused request is 429 with
//! `Retry-After`, before any work or state change.

use crate::error::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;
use vq_core::config::{Limit, Limits};
use vq_core::domain::UserId;

/// One keyed token bucket; `None` when switched off.
pub struct Bucket<K: Hash + Eq + Clone> {
    limiter: Option<DefaultKeyedRateLimiter<K>>,
}

impl<K: Hash + Eq + Clone> Bucket<K> {
    pub fn new(l: Limit) -> Self {
        let limiter = (l.per_minute > 0).then(|| {
            let period = Duration::from_secs(60) / l.per_minute;
            let burst = NonZeroU32::new(l.burst.max(1)).expect("non-zero");
            let quota = Quota::with_period(period)
                .expect("positive period")
                .allow_burst(burst);
            DefaultKeyedRateLimiter::keyed(quota)
        });
        Bucket { limiter }
    }

    /// Takes one request from `key`'s bucket or says how long to wait.
    pub fn check(&self, key: &K) -> Result<(), ApiError> {
        let Some(l) = &self.limiter else {
            return Ok(());
        };
        l.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited {
                retry_after_s: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }

    /// Forgets buckets that are full again, so idle clients cost no memory.
    fn prune(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// Every bucket of the api. Accounts are keyed by user id (join, purchase) or by the
/// keyed e-mail hash (login, codes), which works before an account exists.
pub struct Limiters {
    pub login_ip: Bucket<IpAddr>,
    pub login_account: Bucket<Vec<u8>>,
    pub email_code_ip: Bucket<IpAddr>,
    pub email_code_account: Bucket<Vec<u8>>,
    pub join_ip: Bucket<IpAddr>,
    pub join_account: Bucket<UserId>,
    pub purchase_ip: Bucket<IpAddr>,
    pub purchase_account: Bucket<UserId>,
    pub pay_account: Bucket<UserId>,
}

impl Limiters {
    pub fn new(l: &Limits) -> Self {
        Limiters {
            login_ip: Bucket::new(l.login_ip),
            login_account: Bucket::new(l.login_account),
            email_code_ip: Bucket::new(l.email_code_ip),
            email_code_account: Bucket::new(l.email_code_account),
            join_ip: Bucket::new(l.join_ip),
            join_account: Bucket::new(l.join_account),
            purchase_ip: Bucket::new(l.purchase_ip),
            purchase_account: Bucket::new(l.purchase_account),
            pay_account: Bucket::new(l.pay_account),
        }
    }

    pub fn join(&self, ip: IpAddr, user: UserId) -> Result<(), ApiError> {
        self.join_ip.check(&ip)?;
        self.join_account.check(&user)
    }

    pub fn purchase(&self, ip: IpAddr, user: UserId) -> Result<(), ApiError> {
        self.purchase_ip.check(&ip)?;
        self.purchase_account.check(&user)
    }

    pub fn prune(&self) {
        self.login_ip.prune();
        self.login_account.prune();
        self.email_code_ip.prune();
        self.email_code_account.prune();
        self.join_ip.prune();
        self.join_account.prune();
        self.purchase_ip.prune();
        self.purchase_account.prune();
        self.pay_account.prune();
    }
}

/// The peer address of the connection. IPv6 clients are keyed by their /64, since one
/// subscriber usually owns a whole /64 and could otherwise rotate addresses freely.
/// Behind a reverse proxy this is the proxy's address: run the api directly exposed or
/// give the proxy its own limits.
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientIp(bucket_of(ip)))
    }
}

fn bucket_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_a_bucket_per_64_and_mapped_v4_is_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(bucket_of(a), bucket_of(b));
        assert_ne!(bucket_of(a), bucket_of(c));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(bucket_of(mapped), "10.0.0.7".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(bucket_of(v4), v4);
    }

    #[test]
    fn buckets_refuse_past_the_burst_and_say_when_to_retry() {
        let b = Bucket::new(Limit {
            per_minute: 1,
            burst: 2,
        });
        assert!(b.check(&1u8).is_ok());
        assert!(b.check(&1u8).is_ok());
        match b.check(&1u8) {
            Err(ApiError::RateLimited { retry_after_s }) => {
                assert!((1..=60).contains(&retry_after_s))
            }
            other => panic!("expected 429, got {other:?}"),
        }
        assert!(b.check(&2u8).is_ok(), "other keys have their own bucket");
        let off = Bucket::new(Limit {
            per_minute: 0,
            burst: 0,
        });
        for _ in 0..100 {
            assert!(off.check(&1u8).is_ok());
        }
    }
}
