//! The purchase, over HTTP (`POST /v1/drops/{id}/purchase`) and over the room socket
//! (`{"type": "purchase", ...}`): one function, [`buy`], so both speak the same limits,
//! script, reasons and idempotency (the token is the key: a retry of a reserved token by its
//! owner with the same quantity answers the same receipt again and changes nothing).

use crate::drops::lost;
use crate::error::ApiError;
use crate::extract::{ApiJson, DropPath, Shopper};
use crate::limits::ClientIp;
use crate::messages::Receipt;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use std::net::IpAddr;
use vq_core::domain::{DropId, Quantity, UserId};
use vq_core::scripts::{PurchaseOutcome, PurchaseReject};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/drops/{id}/purchase", post(purchase))
}

/// What a buyer sends to buy: the purchase token from `admitted` and a quantity.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseBody {
    pub token: String,
    #[serde(default = "one")]
    pub quantity: i64,
}

fn one() -> i64 {
    1
}

impl PurchaseBody {
    /// The quantity as a domain value; an empty or oversized token is refused before any
    /// Redis work.
    fn checked(&self) -> Result<Quantity, ApiError> {
        let qty = u32::try_from(self.quantity)
            .map_err(|_| vq_core::domain::Invalid("must be between 1 and 100".into()))
            .and_then(Quantity::new)
            .map_err(|e| ApiError::Validation([("quantity".to_string(), e.0)].into()))?;
        if self.token.is_empty() || self.token.len() > 128 {
            let msg = "must be 1 to 128 characters".to_string();
            return Err(ApiError::Validation([("token".to_string(), msg)].into()));
        }
        Ok(qty)
    }
}

async fn purchase(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    DropPath(id): DropPath,
    Shopper(p): Shopper,
    ApiJson(body): ApiJson<PurchaseBody>,
) -> Result<(StatusCode, Json<Receipt>), ApiError> {
    let receipt = buy(&st, ip, id, p.user, body).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

/// Rate limits (per address, per account), body checks, purchase.lua, WAIT when configured,
/// metrics: everything a purchase is, whichever transport carried it.
pub async fn buy(
    st: &AppState,
    ip: IpAddr,
    id: DropId,
    user: UserId,
    body: PurchaseBody,
) -> Result<Receipt, ApiError> {
    st.limits.purchase(ip, user).await?;
    let qty = body.checked()?;
    let mut conn = st.redis.clone();
    let k = st.keys.drop(id);
    let started = std::time::Instant::now();
    let out = st
        .scripts
        .purchase(&mut conn, &k, &body.token, user, qty, &st.clock)
        .await?;
    if matches!(out, PurchaseOutcome::Reserved { .. }) {
        conn.wait_durable("purchase").await?;
    }
    metrics::histogram!("vq_purchase_duration_seconds").record(started.elapsed().as_secs_f64());
    let outcome = match &out {
        PurchaseOutcome::Reserved { .. } => "reserved",
        PurchaseOutcome::Rejected(r) => r.code(),
    };
    metrics::counter!("vq_purchases_total", "outcome" => outcome).increment(1);
    match out {
        PurchaseOutcome::Reserved {
            remaining,
            user_total,
            seq,
            ..
        } => Ok(Receipt {
            status: "reserved",
            order_id: id.order_id(seq),
            token: body.token,
            quantity: qty.get(),
            remaining,
            bought_total: user_total,
            order_status: vq_orders::Status::PendingPayment,
        }),
        PurchaseOutcome::Rejected(PurchaseReject::NoDrop) if lost::knows(st, id).await? => {
            Err(ApiError::Purchase(PurchaseReject::NeedsRebuild))
        }
        PurchaseOutcome::Rejected(r) => Err(ApiError::Purchase(r)),
    }
}
