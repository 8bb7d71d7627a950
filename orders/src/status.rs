//! The order status and the order id, as PostgreSQL stores them: the status is TEXT (one
//! of the SCREAMING_SNAKE_CASE names the `orders_status_known` check allows), decoded by
//! sqlx straight into `Status`, so no code compares status strings.

use serde::Serialize;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

/// An order's id (the `orders.id` BIGSERIAL); JSON shows it as the bare number.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    sqlx::Type,
    utoipa::ToSchema,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct OrderId(pub i64);

impl OrderId {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for OrderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    PendingPayment,
    /// Committed before the provider is called; finalised to PAID or PAYMENT_FAILED.
    Charging,
    Paid,
    Shipping,
    Delivered,
    ReturnRequested,
    Returned,
    Cancelled,
    PaymentFailed,
    Expired,
}

const ALL: [Status; 10] = [
    Status::PendingPayment,
    Status::Charging,
    Status::Paid,
    Status::Shipping,
    Status::Delivered,
    Status::ReturnRequested,
    Status::Returned,
    Status::Cancelled,
    Status::PaymentFailed,
    Status::Expired,
];

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::PendingPayment => "PENDING_PAYMENT",
            Status::Charging => "CHARGING",
            Status::Paid => "PAID",
            Status::Shipping => "SHIPPING",
            Status::Delivered => "DELIVERED",
            Status::ReturnRequested => "RETURN_REQUESTED",
            Status::Returned => "RETURNED",
            Status::Cancelled => "CANCELLED",
            Status::PaymentFailed => "PAYMENT_FAILED",
            Status::Expired => "EXPIRED",
        }
    }

    /// The timestamp column a move into this status sets.
    pub(crate) fn column(self) -> &'static str {
        match self {
            Status::Charging => "payment_attempted_at",
            Status::Paid => "paid_at",
            Status::Shipping => "shipped_at",
            Status::Delivered => "delivered_at",
            Status::ReturnRequested => "return_requested_at",
            Status::PendingPayment => "updated_at",
            _ => "closed_at",
        }
    }

    /// Moves into these statuses give the units back to the drop.
    pub fn restocks(self) -> bool {
        matches!(
            self,
            Status::Returned | Status::Cancelled | Status::PaymentFailed | Status::Expired
        )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown order status {0:?}")]
pub struct UnknownStatus(String);

impl std::str::FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL.into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

impl Type<Postgres> for Status {
    fn type_info() -> PgTypeInfo {
        <&str as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <&str as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for Status {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(<&str as Decode<Postgres>>::decode(value)?.parse()?)
    }
}

impl Encode<'_, Postgres> for Status {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <&str as Encode<Postgres>>::encode(self.as_str(), buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_parses_back_from_its_name() {
        for st in ALL {
            assert_eq!(st.as_str().parse::<Status>().unwrap(), st);
            assert_eq!(serde_json::to_value(st).unwrap(), st.as_str());
        }
        assert!("paid".parse::<Status>().is_err());
    }
}
