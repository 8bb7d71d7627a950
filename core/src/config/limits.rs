//! Rate-limit settings: GCRA buckets per client IP and per account.

use serde::Deserialize;

/// A bucket: `burst` requests at once, refilled at `per_minute`. `per_minute = 0`
/// switches the limit off.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct Limit {
    pub per_minute: u32,
    pub burst: u32,
}

/// Rate limits per client IP and per account (or e-mail). They live in Redis (one GCRA
/// bucket per key), so every api node draws on the same budget.
/// The per-IP limits on join and purchase are generous on purpose: whole crowds share
/// one carrier-NAT address; the per-account limits are the real protection there.
#[derive(Clone, Debug, Deserialize)]
#[serde(from = "RawLimits")]
pub struct Limits {
    pub login_ip: Limit,
    pub login_account: Limit,
    pub email_code_ip: Limit,
    pub email_code_account: Limit,
    /// Codes one address may be sent per day (all at once, refilling over the day);
    /// 0 switches the cap off.
    pub email_code_daily: u32,
    /// Sign-up attempts per client IP (each one may guess a code).
    pub signup_ip: Limit,
    pub join_ip: Limit,
    pub join_account: Limit,
    pub purchase_ip: Limit,
    pub purchase_account: Limit,
}

/// A limit as configured: either half may be left out and keeps its default.
#[derive(Deserialize, Default)]
#[serde(default)]
struct PartialLimit {
    per_minute: Option<u32>,
    burst: Option<u32>,
}

impl PartialLimit {
    fn over(self, d: Limit) -> Limit {
        Limit {
            per_minute: self.per_minute.unwrap_or(d.per_minute),
            burst: self.burst.unwrap_or(d.burst),
        }
    }
}

/// What a file or `VQ_LIMITS__LOGIN_IP__BURST=3` gives; merged over the defaults, so
/// one setting can change alone.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawLimits {
    login_ip: PartialLimit,
    login_account: PartialLimit,
    email_code_ip: PartialLimit,
    email_code_account: PartialLimit,
    email_code_daily: Option<u32>,
    signup_ip: PartialLimit,
    join_ip: PartialLimit,
    join_account: PartialLimit,
    purchase_ip: PartialLimit,
    purchase_account: PartialLimit,
}

impl From<RawLimits> for Limits {
    fn from(r: RawLimits) -> Self {
        let d = Limits::default();
        Limits {
            login_ip: r.login_ip.over(d.login_ip),
            login_account: r.login_account.over(d.login_account),
            email_code_ip: r.email_code_ip.over(d.email_code_ip),
            email_code_account: r.email_code_account.over(d.email_code_account),
            email_code_daily: r.email_code_daily.unwrap_or(d.email_code_daily),
            signup_ip: r.signup_ip.over(d.signup_ip),
            join_ip: r.join_ip.over(d.join_ip),
            join_account: r.join_account.over(d.join_account),
            purchase_ip: r.purchase_ip.over(d.purchase_ip),
            purchase_account: r.purchase_account.over(d.purchase_account),
        }
    }
}

const fn limit(per_minute: u32, burst: u32) -> Limit {
    Limit { per_minute, burst }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            login_ip: limit(60, 20),
            login_account: limit(10, 5),
            email_code_ip: limit(20, 10),
            email_code_account: limit(2, 3),
            email_code_daily: 10,
            signup_ip: limit(20, 20),
            join_ip: limit(120_000, 20_000),
            join_account: limit(60, 20),
            purchase_ip: limit(120_000, 20_000),
            purchase_account: limit(60, 10),
        }
    }
}
