//! Request bodies of the drop manager API and their parsing into valid values: a body
//! becomes a [`NewDrop`] or a [`DropPatch`] through `TryFrom`, which either yields every
//! field valid or reports every field that is not.

use super::autopilot::{self, AutopilotBody};
use super::store::NewDrop;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use vq_core::domain::*;

/// Create body: the configurable fields plus the stock and an optional catalog product.
/// Unknown fields are rejected.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDropBody {
    /// A catalog product; its name and price are the defaults for the drop.
    pub product_id: Option<i64>,
    stock: Option<i64>,
    pub product_name: Option<String>,
    pub price_cents: Option<i64>,
    starts_at: Option<String>,
    per_user_limit: Option<i64>,
    admission_rate: Option<i64>,
    max_holders: Option<i64>,
    token_ttl_s: Option<i64>,
    prequeue_s: Option<i64>,
    overbook: Option<f64>,
    /// Expected share (0 to 1) of admitted buyers who never buy; the ETA forecast's prior
    /// until the drop measured its own. Default 0.
    expected_abandon: Option<f64>,
    /// Bits every join pays at least (default 0).
    pow_difficulty: Option<i64>,
    /// Bits the adaptive proof of work may rise to under join pressure (default
    /// `pow.max_difficulty`, 20); 0 keeps the work at `pow_difficulty`.
    pow_max_difficulty: Option<i64>,
    /// The rate follows the checkout's health inside this band (off when absent or null).
    autopilot: Option<AutopilotBody>,
    /// Set by the handler when `product_id` names no product.
    #[serde(skip)]
    #[schema(ignore)]
    pub unknown_product: bool,
}

/// Patch body: the fields a manager may change; the stock is fixed once a drop exists.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DropFields {
    pub product_name: Option<String>,
    pub price_cents: Option<i64>,
    starts_at: Option<String>,
    per_user_limit: Option<i64>,
    admission_rate: Option<i64>,
    max_holders: Option<i64>,
    token_ttl_s: Option<i64>,
    prequeue_s: Option<i64>,
    overbook: Option<f64>,
    /// Expected share (0 to 1) of admitted buyers who never buy; the ETA forecast's prior
    /// until the drop measured its own. Default 0.
    expected_abandon: Option<f64>,
    /// Bits every join pays at least.
    pow_difficulty: Option<i64>,
    /// Bits the adaptive proof of work may rise to under join pressure; 0: no rise.
    pow_max_difficulty: Option<i64>,
    /// Turns the autopilot on (or changes its band and targets); `null` turns it off. A
    /// patch with `admission_rate` and without `autopilot` takes the rate back by hand:
    /// the autopilot goes off.
    #[serde(default, deserialize_with = "autopilot::present")]
    #[schema(value_type = Option<AutopilotBody>)]
    autopilot: Option<Option<AutopilotBody>>,
}

/// The fields of a patch after parsing; `None` where absent.
pub struct DropPatch {
    pub product_name: Option<String>,
    pub price_cents: Option<i64>,
    pub starts_at: Option<DateTime<Utc>>,
    pub per_user_limit: Option<i32>,
    pub admission_rate: Option<i32>,
    pub max_holders: Option<i32>,
    pub token_ttl_s: Option<i32>,
    pub prequeue_s: Option<i32>,
    pub overbook: Option<f64>,
    pub expected_abandon: Option<f64>,
    pub pow_difficulty: Option<i32>,
    pub pow_max_difficulty: Option<i32>,
    /// `Some(None)`: turn the autopilot off.
    pub autopilot: Option<Option<vq_core::autopilot::Setting>>,
}

impl TryFrom<CreateDropBody> for NewDrop {
    type Error = FieldErrors;

    fn try_from(b: CreateDropBody) -> Result<Self, FieldErrors> {
        let mut c = Checker::default();
        if b.unknown_product {
            c.0.insert("product_id".into(), "no such product".into());
        }
        let stock = c.req("stock", b.stock, int(Stock::new, Stock::get));
        let product_name = c.req("product_name", b.product_name, name);
        let starts_at = c.req("starts_at", b.starts_at, time);
        let rate = int(AdmissionRate::new, AdmissionRate::get);
        let admission_rate = c.req("admission_rate", b.admission_rate, rate);
        let autopilot = b.autopilot.and_then(|a| autopilot::parse(&mut c, a));
        let rest = DropFields {
            product_name: None,
            price_cents: b.price_cents,
            starts_at: None,
            per_user_limit: b.per_user_limit,
            admission_rate: None,
            max_holders: b.max_holders,
            token_ttl_s: b.token_ttl_s,
            prequeue_s: b.prequeue_s,
            overbook: b.overbook,
            expected_abandon: b.expected_abandon,
            pow_difficulty: b.pow_difficulty,
            pow_max_difficulty: b.pow_max_difficulty,
            autopilot: None,
        }
        .parse(&mut c);
        match (product_name, stock, starts_at, admission_rate) {
            (Some(product_name), Some(stock), Some(starts_at), Some(admission_rate))
                if c.0.is_empty() =>
            {
                Ok(NewDrop {
                    product_name,
                    price_cents: rest.price_cents.unwrap_or(0),
                    stock,
                    per_user_limit: rest.per_user_limit.unwrap_or(1),
                    admission_rate,
                    max_holders: rest.max_holders.unwrap_or(1000),
                    token_ttl_s: rest.token_ttl_s.unwrap_or(60),
                    prequeue_s: rest.prequeue_s.unwrap_or(0),
                    overbook: rest.overbook.unwrap_or(DEFAULT_OVERBOOK),
                    expected_abandon: rest.expected_abandon.unwrap_or(0.0),
                    pow_difficulty: rest.pow_difficulty.unwrap_or(0),
                    pow_max_difficulty: rest.pow_max_difficulty,
                    starts_at,
                    product_id: b.product_id,
                    autopilot,
                })
            }
            _ => Err(c.0),
        }
    }
}

impl TryFrom<DropFields> for DropPatch {
    type Error = FieldErrors;

    fn try_from(f: DropFields) -> Result<Self, FieldErrors> {
        let mut c = Checker::default();
        let p = f.parse(&mut c);
        c.finish().map(|()| p)
    }
}

impl DropFields {
    /// Parses every present field, recording each rule broken in `c`.
    fn parse(self, c: &mut Checker) -> DropPatch {
        DropPatch {
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
            overbook: c.opt("overbook", self.overbook, overbook),
            expected_abandon: c.opt("expected_abandon", self.expected_abandon, share),
            pow_difficulty: c.opt(
                "pow_difficulty",
                self.pow_difficulty,
                int(PowDifficulty::new, PowDifficulty::get),
            ),
            pow_max_difficulty: c.opt(
                "pow_max_difficulty",
                self.pow_max_difficulty,
                int(PowDifficulty::new, PowDifficulty::get),
            ),
            autopilot: self
                .autopilot
                .map(|a| a.and_then(|a| autopilot::parse(c, a))),
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

fn int<T>(
    new: fn(u32) -> Result<T, Invalid>,
    get: fn(T) -> u32,
) -> impl FnOnce(i64) -> Result<i32, Invalid> {
    move |v| count(new)(v).map(|t| get(t) as i32)
}

/// Live tokens per unreserved unit while stock lasts (after a sell-out the scripts use 1).
const DEFAULT_OVERBOOK: f64 = 1.5;

/// Below 1 some units could never be offered; above 100 the cap stops meaning anything.
fn overbook(v: f64) -> Result<f64, Invalid> {
    if v.is_finite() && (1.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(Invalid("must be a number from 1 to 100".into()))
    }
}

fn share(v: f64) -> Result<f64, Invalid> {
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(Invalid("must be a share from 0 to 1".into()))
    }
}

fn price(v: i64) -> Result<i64, Invalid> {
    PriceCents::new(v).map(PriceCents::get)
}
