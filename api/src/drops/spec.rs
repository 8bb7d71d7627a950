//! Request bodies of the drop manager API and their parsing into valid values.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use vq_core::domain::*;

/// Create body: the configurable fields plus the stock and an optional catalog product.
/// Unknown fields are rejected.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropSpec {
    /// A catalog product; its name and price are the defaults for the drop.
    product_id: Option<i64>,
    stock: Option<i64>,
    product_name: Option<String>,
    price_cents: Option<i64>,
    starts_at: Option<String>,
    per_user_limit: Option<i64>,
    admission_rate: Option<i64>,
    max_holders: Option<i64>,
    token_ttl_s: Option<i64>,
    prequeue_s: Option<i64>,
}

/// Patch body: the fields a manager may change; the stock is fixed once a drop exists.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropFields {
    pub product_name: Option<String>,
    pub price_cents: Option<i64>,
    pub starts_at: Option<String>,
    pub per_user_limit: Option<i64>,
    pub admission_rate: Option<i64>,
    pub max_holders: Option<i64>,
    pub token_ttl_s: Option<i64>,
    pub prequeue_s: Option<i64>,
}

/// The fields after parsing; `None` where absent (or invalid: then the checker has it).
pub struct Parsed {
    pub product_name: Option<String>,
    pub price_cents: Option<i64>,
    pub starts_at: Option<DateTime<Utc>>,
    pub per_user_limit: Option<i32>,
    pub admission_rate: Option<i32>,
    pub max_holders: Option<i32>,
    pub token_ttl_s: Option<i32>,
    pub prequeue_s: Option<i32>,
}

impl DropSpec {
    pub fn split(self) -> (Option<i64>, Option<i64>, DropFields) {
        let f = DropFields {
            product_name: self.product_name,
            price_cents: self.price_cents,
            starts_at: self.starts_at,
            per_user_limit: self.per_user_limit,
            admission_rate: self.admission_rate,
            max_holders: self.max_holders,
            token_ttl_s: self.token_ttl_s,
            prequeue_s: self.prequeue_s,
        };
        (self.product_id, self.stock, f)
    }
}

impl DropFields {
    /// Parses every present field, recording each rule broken in `c`.
    pub fn parse(self, c: &mut Checker) -> Parsed {
        Parsed {
            product_name: c.opt("product_name", self.product_name, name),
            price_cents: c.opt("price_cents", self.price_cents, price),
            starts_at: c.opt("starts_at", self.starts_at, time),
            per_user_limit: c.opt(
                "per_user_limit",
                self.per_user_limit,
                int(PerUserLimit::new, PerUserLimit::get),
            ),
            admission_rate: c.opt(
                "admission_rate",
                self.admission_rate,
                int(AdmissionRate::new, AdmissionRate::get),
            ),
            max_holders: c.opt(
                "max_holders",
                self.max_holders,
                int(MaxHolders::new, MaxHolders::get),
            ),
            token_ttl_s: c.opt(
                "token_ttl_s",
                self.token_ttl_s,
                int(TokenTtlSecs::new, TokenTtlSecs::get),
            ),
            prequeue_s: c.opt(
                "prequeue_s",
                self.prequeue_s,
                int(PrequeueSecs::new, PrequeueSecs::get),
            ),
        }
    }
}

fn time(s: String) -> Result<DateTime<Utc>, Invalid> {
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| Invalid("must be an RFC 3339 time such as 2026-12-01T10:00:00Z".into()))
}

fn name(s: String) -> Result<String, Invalid> {
    ProductName::parse(&s).map(|n| n.as_str().to_owned())
}

pub fn int<T>(
    new: fn(u32) -> Result<T, Invalid>,
    get: fn(T) -> u32,
) -> impl FnOnce(i64) -> Result<i32, Invalid> {
    move |v| count(new)(v).map(|t| get(t) as i32)
}

fn price(v: i64) -> Result<i64, Invalid> {
    PriceCents::new(v).map(PriceCents::get)
}
