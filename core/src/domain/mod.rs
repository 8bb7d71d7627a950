//! Domain newtypes: parse, don't validate. A value of one of these types is valid by
//! construction, so handlers and scripts never re-check ranges.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

mod event;
mod states;
mod text;

pub use event::{AccountEvent, AdmittedBuyer, DropEvent, Notification, Tick};
pub use states::{AdmitStatus, DropState, Phase};
pub use text::{no_controls, Lines};

/// A rejected value: which rule it broke, in words for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident, $ty:ty, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name($ty);

        impl $name {
            pub const MIN: $ty = $min;
            pub const MAX: $ty = $max;

            pub fn new(v: $ty) -> Result<Self, Invalid> {
                if (Self::MIN..=Self::MAX).contains(&v) {
                    Ok(Self(v))
                } else {
                    Err(Invalid(format!("must be between {} and {}", Self::MIN, Self::MAX)))
                }
            }

            pub fn get(self) -> $ty {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        /// Parses a value read from storage (e.g. a PostgreSQL column via `sqlx(try_from)`).
        impl TryFrom<$ty> for $name {
            type Error = Invalid;
            fn try_from(v: $ty) -> Result<Self, Invalid> {
                Self::new(v)
            }
        }

        impl std::str::FromStr for $name {
            type Err = Invalid;
            fn from_str(s: &str) -> Result<Self, Invalid> {
                let v: $ty = s.parse().map_err(|_| Invalid("must be a whole number".into()))?;
                Self::new(v)
            }
        }
    };
}

bounded!(
    /// Database id of a drop.
    DropId, i64, 1, i64::MAX
);
impl DropId {
    /// The id of the order bought with the token of admission `seq` (lua/admit.lua names tokens
    /// `prefix.seq`): `drop * 2^32 + seq`. Known when the purchase is answered, so the 201 (and
    /// its replay) carries the id before a worker writes the row; unique because `seq` is unique
    /// per drop and below 2^32, and above every BIGSERIAL id the table will ever hand out.
    /// None for seq 0 (a token admit.lua did not name) or an id that would not fit.
    pub fn order_id(self, seq: u64) -> Option<i64> {
        if seq == 0 || seq >= 1 << 32 {
            return None;
        }
        self.0.checked_mul(1 << 32)?.checked_add(seq as i64)
    }
}

bounded!(
    /// Database id of a catalog product.
    ProductId, i64, 1, i64::MAX
);
bounded!(
    /// Units in one purchase.
    Quantity, u32, 1, 100
);
bounded!(
    /// Units a drop starts with.
    Stock, u32, 1, 10_000_000
);
bounded!(
    /// Units one account may buy in a drop.
    PerUserLimit, u32, 1, 100
);
bounded!(
    /// Purchase tokens issued per second, at most.
    AdmissionRate, u32, 1, 1_000_000
);
bounded!(
    /// Live (issued, not yet used or expired) tokens, at most.
    MaxHolders, u32, 1, 1_000_000
);
bounded!(
    /// Seconds a purchase token stays valid.
    TokenTtlSecs, u32, 5, 3600
);
bounded!(
    /// Seconds before the start during which buyers may join the pre-queue.
    PrequeueSecs, u32, 0, 86_400
);
bounded!(
    /// Leading zero bits a join's proof of work needs; 0 switches it off.
    PowDifficulty, u32, 0, 32
);
bounded!(
    /// Price in cents.
    PriceCents, i64, 0, 100_000_000
);

/// Account id (the JWT subject).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub uuid::Uuid);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Product name shown to buyers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ProductName(String);

impl ProductName {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let t = s.trim();
        no_controls(t, Lines::Single)?;
        if t.is_empty() || t.chars().count() > 200 {
            return Err(Invalid("must be 1 to 200 printable characters".into()));
        }
        Ok(ProductName(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Field name → what is wrong with it; returned as a 422 body.
pub type FieldErrors = BTreeMap<String, String>;

/// Collects field errors while parsing a request body.
#[derive(Default)]
pub struct Checker(pub FieldErrors);

impl Checker {
    /// Parses a required field; records "is required" or the rule it broke.
    pub fn req<T, R>(
        &mut self,
        field: &str,
        raw: Option<R>,
        parse: impl FnOnce(R) -> Result<T, Invalid>,
    ) -> Option<T> {
        match raw {
            None => {
                self.0.insert(field.into(), "is required".into());
                None
            }
            Some(r) => self.opt(field, Some(r), parse),
        }
    }

    /// Parses an optional field.
    pub fn opt<T, R>(
        &mut self,
        field: &str,
        raw: Option<R>,
        parse: impl FnOnce(R) -> Result<T, Invalid>,
    ) -> Option<T> {
        match parse(raw?) {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.insert(field.into(), e.0);
                None
            }
        }
    }

    pub fn finish(self) -> Result<(), FieldErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

/// Parses an unsigned count field given as a JSON integer (negative → rule message).
pub fn count<T>(new: fn(u32) -> Result<T, Invalid>) -> impl FnOnce(i64) -> Result<T, Invalid> {
    move |v| {
        let v =
            u32::try_from(v).map_err(|_| Invalid("must not be negative or that large".into()))?;
        new(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_enforced() {
        assert!(Quantity::new(0).is_err());
        assert!(Quantity::new(1).is_ok());
        assert!(Quantity::new(101).is_err());
        assert!(TokenTtlSecs::new(4).is_err());
        assert_eq!("7".parse::<AdmissionRate>().unwrap().get(), 7);
        assert!("x".parse::<AdmissionRate>().is_err());
        assert!(DropId::new(0).is_err());
        let d = DropId::new(3).unwrap();
        assert_eq!(d.order_id(5), Some(3 * (1 << 32) + 5));
        assert_eq!(d.order_id(0), None);
        assert_eq!(d.order_id(1 << 32), None);
        assert_eq!(DropId::new(i64::MAX).unwrap().order_id(1), None);
        assert!(count(Stock::new)(-1).is_err());
        assert_eq!(count(Stock::new)(5).unwrap().get(), 5);
    }

    #[test]
    fn product_names_are_trimmed_and_bounded() {
        assert_eq!(ProductName::parse("  Shoe ").unwrap().as_str(), "Shoe");
        assert!(ProductName::parse("   ").is_err());
        assert!(ProductName::parse(&"x".repeat(201)).is_err());
        assert!(ProductName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn checker_collects_every_field_error() {
        let mut c = Checker::default();
        let a = c.req("stock", Some(0), count(Stock::new));
        let b: Option<Stock> = c.req("missing", None::<i64>, count(Stock::new));
        let d = c.opt("rate", Some(3), count(AdmissionRate::new));
        assert!(a.is_none() && b.is_none());
        assert_eq!(d.unwrap().get(), 3);
        let errs = c.finish().unwrap_err();
        assert_eq!(errs.len(), 2);
        assert_eq!(errs["missing"], "is required");
    }
}
