//! Rate limits per client IP and per account on login, code sending, sign-up, joining,
//! purchasing and paying. The buckets live in Redis (lua/ratelimit.lua, GCRA), so every api
//! node draws on one budget. A refused request is 429 `rate_limited` with
//! `Retry-After`, before any work or state change.

mod body;
mod gate;
mod proxy;

pub use body::bounded;
pub use gate::{refusal, Folded};
pub use proxy::ClientIp;

use crate::error::ApiError;
use std::net::IpAddr;
use vq_core::config::{Limit, Limits, TrustedProxies};
use vq_core::domain::UserId;
use vq_core::ratelimit::{bucket_key, GateScript, Rate, RateLimiter};
use vq_core::{Clock, Keys, RedisConn, Settings};

/// Every limit of the api, checked against the shared buckets.
pub struct Limiters {
    redis: RedisConn,
    keys: Keys,
    clock: Clock,
    script: RateLimiter,
    gate_script: GateScript,
    limits: Limits,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted: TrustedProxies,
}

impl Limiters {
    pub fn new(s: &Settings, redis: RedisConn, clock: Clock) -> Self {
        Limiters {
            redis,
            keys: Keys::new(&s.redis.prefix),
            clock,
            script: RateLimiter::default(),
            gate_script: GateScript::default(),
            limits: s.limits.clone(),
            trusted: s.http.trusted_proxies.clone(),
        }
    }

    async fn call(
        &self,
        name: &str,
        rate: Option<Rate>,
        client: impl std::fmt::Display,
        cost: i64,
    ) -> Result<(), ApiError> {
        let Some(rate) = rate else { return Ok(()) };
        let key = bucket_key(&self.keys, name, client);
        let mut conn = self.redis.clone();
        let verdict = self
            .script
            .call(&mut conn, &key, rate, cost, &self.clock)
            .await?;
        match verdict.retry_after_s() {
            Some(retry_after_s) => Err(ApiError::RateLimited { retry_after_s }),
            None => Ok(()),
        }
    }

    async fn take(
        &self,
        name: &str,
        limit: Limit,
        client: impl std::fmt::Display,
    ) -> Result<(), ApiError> {
        self.call(name, Rate::per_minute(limit), client, 1).await
    }

    /// Per address, then per account; with `revoked`, the access token's revocation too:
    /// all in one round trip (see `gate`).
    pub async fn join(
        &self,
        ip: IpAddr,
        user: UserId,
        revoked: Option<&uuid::Uuid>,
    ) -> Result<(), ApiError> {
        let l = &self.limits;
        let checks = [("join_ip", l.join_ip), ("join_account", l.join_account)];
        self.address_and_account(checks, ip, user, revoked).await
    }

    /// As [`Limiters::join`], with the purchase budgets.
    pub async fn purchase(
        &self,
        ip: IpAddr,
        user: UserId,
        revoked: Option<&uuid::Uuid>,
    ) -> Result<(), ApiError> {
        self.gate(revoked, &self.purchase_checks(ip, user)).await
    }

    /// The purchase's buckets, in the order they are checked: one place for both the gate
    /// alone ([`Limiters::purchase`]) and the gate inside the purchase's script call
    /// ([`Limiters::purchase_folded`]).
    fn purchase_checks(&self, ip: IpAddr, user: UserId) -> [gate::Check; 2] {
        let l = &self.limits;
        [
            self.check("purchase_ip", l.purchase_ip, ip),
            self.check("purchase_account", l.purchase_account, user),
        ]
    }

    async fn address_and_account(
        &self,
        [(by_ip, ip_limit), (by_user, user_limit)]: [(&str, Limit); 2],
        ip: IpAddr,
        user: UserId,
        revoked: Option<&uuid::Uuid>,
    ) -> Result<(), ApiError> {
        let checks = [
            self.check(by_ip, ip_limit, ip),
            self.check(by_user, user_limit, user),
        ];
        self.gate(revoked, &checks).await
    }

    /// Each pay may reach the payment provider: per account.
    pub async fn pay(&self, user: UserId) -> Result<(), ApiError> {
        self.take("pay_account", self.limits.pay_account, user)
            .await
    }

    /// Every login attempt from one client, right or wrong (each costs an argon2 run).
    pub async fn login_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.take("login_ip", self.limits.login_ip, ip).await
    }

    /// Takes a cell of the account's bucket for this client before the password check.
    /// Keyed with the client, so guesses from elsewhere never lock the owner out; and a
    /// right password gives the cell back ([`Self::login_give_back`]), so only failures
    /// count. Taking first (not after a failure) keeps a burst of parallel guesses within
    /// the budget.
    pub async fn login_attempt(&self, email_hash: &[u8], ip: IpAddr) -> Result<(), ApiError> {
        let rate = Rate::per_minute(self.limits.login_account);
        self.call("login_account", rate, &account_client(email_hash, ip), 1)
            .await
    }

    /// Returns the attempt's cell: the password was right, or it was never checked.
    pub async fn login_give_back(&self, email_hash: &[u8], ip: IpAddr) -> Result<(), ApiError> {
        let rate = Rate::per_minute(self.limits.login_account);
        self.call("login_account", rate, &account_client(email_hash, ip), -1)
            .await
    }

    pub async fn email_code_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.take("email_code_ip", self.limits.email_code_ip, ip)
            .await
    }

    /// Per-minute and per-day caps of one address, so nobody can flood a mailbox.
    pub async fn email_code_address(&self, email_hash: &[u8]) -> Result<(), ApiError> {
        let id = hex::encode(email_hash);
        self.take("email_code_account", self.limits.email_code_account, &id)
            .await?;
        let daily = Rate::per_day(self.limits.email_code_daily);
        self.call("email_code_daily", daily, &id, 1).await
    }

    pub async fn signup_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.take("signup_ip", self.limits.signup_ip, ip).await
    }
}

fn account_client(email_hash: &[u8], ip: IpAddr) -> String {
    format!("{}:{ip}", hex::encode(email_hash))
}
