//! Payment behind a trait, so a real provider can replace the simulation. The simulation
//! has a configurable failure rate and latency, and test payment methods like real
//! providers' test cards: `pm_card_ok` (approved unless the random failure hits) and
//! `pm_card_declined` (always declined).

use crate::OrderId;
use futures::future::BoxFuture;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentResult {
    Approved { reference: String },
    Declined { reason: String },
}

pub trait PaymentProvider: Send + Sync {
    /// Charges `amount_cents` for `order_id` with the buyer's payment method.
    fn charge<'a>(
        &'a self,
        order_id: OrderId,
        amount_cents: i64,
        method: &'a str,
    ) -> BoxFuture<'a, PaymentResult>;

    /// Whether the method is one this provider knows (unknown → 422, nothing charged).
    fn accepts(&self, method: &str) -> bool;
}

pub struct SimulatedProvider {
    pub failure_rate: f64,
    pub latency: Duration,
}

impl SimulatedProvider {
    pub fn from_config(c: &vq_core::config::Payment) -> Self {
        SimulatedProvider {
            failure_rate: c.failure_rate.clamp(0.0, 1.0),
            latency: Duration::from_millis(c.latency_ms),
        }
    }
}

impl PaymentProvider for SimulatedProvider {
    fn charge<'a>(
        &'a self,
        order_id: OrderId,
        _amount_cents: i64,
        method: &'a str,
    ) -> BoxFuture<'a, PaymentResult> {
        Box::pin(async move {
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            if method == "pm_card_declined" {
                return PaymentResult::Declined {
                    reason: "card_declined".into(),
                };
            }
            if rand::random::<f64>() < self.failure_rate {
                return PaymentResult::Declined {
                    reason: "processing_error".into(),
                };
            }
            PaymentResult::Approved {
                reference: format!("sim_{order_id}_{:08x}", rand::random::<u32>()),
            }
        })
    }

    fn accepts(&self, method: &str) -> bool {
        matches!(method, "pm_card_ok" | "pm_card_declined")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_cards_and_failure_rate_decide_the_outcome() {
        let always_ok = SimulatedProvider {
            failure_rate: 0.0,
            latency: Duration::ZERO,
        };
        assert!(matches!(
            always_ok.charge(OrderId(1), 100, "pm_card_ok").await,
            PaymentResult::Approved { .. }
        ));
        assert_eq!(
            always_ok.charge(OrderId(1), 100, "pm_card_declined").await,
            PaymentResult::Declined {
                reason: "card_declined".into()
            }
        );
        let always_fails = SimulatedProvider {
            failure_rate: 1.0,
            latency: Duration::ZERO,
        };
        assert!(matches!(
            always_fails.charge(OrderId(1), 100, "pm_card_ok").await,
            PaymentResult::Declined { .. }
        ));
        assert!(always_ok.accepts("pm_card_ok") && !always_ok.accepts("4242"));
    }
}
