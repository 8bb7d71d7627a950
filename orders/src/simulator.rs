//! The simulated payment provider: a configurable failure rate and latency, and test
//! payment methods like real providers' test cards: `pm_card_ok` (approved unless the
//! random failure hits) and `pm_card_declined` (always declined).
//!
//! Like a real provider it remembers every charge and refund by idempotency key (the order
//! id). Built by the app, that memory is in Redis under the key prefix, so every process
//! (the api that charged, the scheduler that recovers after the api crashed) sees the same
//! answers; without Redis (unit tests) it is in this process only.

use crate::payment::{PaymentProvider, PaymentResult, RefundResult};
use crate::OrderId;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use vq_core::RedisConn;

enum Memory {
    Local(Mutex<HashMap<String, String>>),
    Redis { conn: RedisConn, key: String },
}

pub struct SimulatedProvider {
    pub failure_rate: f64,
    pub latency: Duration,
    memory: Memory,
}

impl SimulatedProvider {
    /// A provider remembering in this process only.
    pub fn local(failure_rate: f64, latency: Duration) -> Self {
        SimulatedProvider {
            failure_rate: failure_rate.clamp(0.0, 1.0),
            latency,
            memory: Memory::Local(Mutex::default()),
        }
    }

    /// The app's provider: its memory is the Redis hash `{prefix}:paysim`.
    pub fn from_config(c: &vq_core::config::Payment, conn: RedisConn, prefix: &str) -> Self {
        SimulatedProvider {
            memory: Memory::Redis {
                conn,
                key: format!("{prefix}:paysim"),
            },
            ..Self::local(c.failure_rate, Duration::from_millis(c.latency_ms))
        }
    }

    /// How often the provider was asked to charge this order (retries included; only the
    /// first ask charges, the others are answered from memory). For tests.
    pub async fn charge_calls(&self, order_id: OrderId) -> redis::RedisResult<i64> {
        let field = format!("calls:{order_id}");
        Ok(match &self.memory {
            Memory::Local(m) => (m.lock().expect("memory").get(&field))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            Memory::Redis { conn, key } => {
                let n: Option<i64> =
                    redis::AsyncCommands::hget(&mut conn.clone(), key, &field).await?;
                n.unwrap_or(0)
            }
        })
    }

    /// The stored answer for a charge (`approved|ref|amount` or `declined|reason`).
    pub async fn charge_record(&self, order_id: OrderId) -> redis::RedisResult<Option<String>> {
        let field = format!("charged:{order_id}");
        Ok(match &self.memory {
            Memory::Local(m) => m.lock().expect("memory").get(&field).cloned(),
            Memory::Redis { conn, key } => {
                redis::AsyncCommands::hget(&mut conn.clone(), key, &field).await?
            }
        })
    }

    /// Stores `value` under `field` unless something is stored already; returns what is
    /// stored now (the first answer wins, so concurrent retries agree).
    /// Every ask is counted under `calls:{id}` (the part after the first ':' of `field`).
    async fn remember(&self, field: String, value: String) -> redis::RedisResult<String> {
        let calls = format!("calls:{}", field.split_once(':').map_or("", |x| x.1));
        let counted = field.starts_with("charged:");
        match &self.memory {
            Memory::Local(m) => {
                let mut m = m.lock().expect("memory");
                if counted {
                    let n: i64 = m.get(&calls).and_then(|v| v.parse().ok()).unwrap_or(0);
                    m.insert(calls, (n + 1).to_string());
                }
                Ok(m.entry(field).or_insert(value).clone())
            }
            Memory::Redis { conn, key } => {
                let mut c = conn.clone();
                let mut p = redis::pipe();
                p.atomic();
                if counted {
                    p.hincr(key, &calls, 1).ignore();
                }
                let (_, stored): (i64, String) = p
                    .hset_nx(key, &field, &value)
                    .hget(key, &field)
                    .query_async(&mut c)
                    .await?;
                Ok(stored)
            }
        }
    }

    fn decide(&self, order_id: OrderId, amount_cents: i64, method: &str) -> String {
        if method == "pm_card_declined" {
            "declined|card_declined".into()
        } else if rand::random::<f64>() < self.failure_rate {
            "declined|processing_error".into()
        } else {
            let r: u32 = rand::random();
            format!("approved|sim_{order_id}_{r:08x}|{amount_cents}")
        }
    }
}

fn parse(stored: &str) -> PaymentResult {
    let mut parts = stored.split('|');
    match (parts.next(), parts.next()) {
        (Some("approved"), Some(reference)) => PaymentResult::Approved {
            reference: reference.into(),
        },
        (_, reason) => PaymentResult::Declined {
            reason: reason.unwrap_or("processing_error").into(),
        },
    }
}

impl PaymentProvider for SimulatedProvider {
    fn charge<'a>(
        &'a self,
        order_id: OrderId,
        amount_cents: i64,
        method: &'a str,
    ) -> BoxFuture<'a, PaymentResult> {
        Box::pin(async move {
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            let fresh = self.decide(order_id, amount_cents, method);
            match self.remember(format!("charged:{order_id}"), fresh).await {
                Ok(stored) => parse(&stored),
                Err(e) => {
                    tracing::warn!(order = order_id.get(), error = %e, "payment memory unreachable");
                    PaymentResult::Unknown {
                        reason: e.to_string(),
                    }
                }
            }
        })
    }

    fn refund(&self, order_id: OrderId, amount_cents: i64) -> BoxFuture<'_, RefundResult> {
        Box::pin(async move {
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            let r: u32 = rand::random();
            let fresh = format!("re_{order_id}_{r:08x}|{amount_cents}");
            match self.remember(format!("refunded:{order_id}"), fresh).await {
                Ok(stored) => RefundResult::Refunded {
                    reference: stored.split('|').next().unwrap_or_default().into(),
                },
                Err(e) => RefundResult::Failed {
                    reason: e.to_string(),
                },
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
        let always_ok = SimulatedProvider::local(0.0, Duration::ZERO);
        assert!(matches!(
            always_ok.charge(OrderId(1), 100, "pm_card_ok").await,
            PaymentResult::Approved { .. }
        ));
        assert_eq!(
            always_ok.charge(OrderId(2), 100, "pm_card_declined").await,
            PaymentResult::Declined {
                reason: "card_declined".into()
            }
        );
        let always_fails = SimulatedProvider::local(1.0, Duration::ZERO);
        assert!(matches!(
            always_fails.charge(OrderId(1), 100, "pm_card_ok").await,
            PaymentResult::Declined { .. }
        ));
        assert!(always_ok.accepts("pm_card_ok") && !always_ok.accepts("4242"));
    }

    #[tokio::test]
    async fn a_retry_with_the_same_key_gets_the_first_answer_and_charges_once() {
        let p = SimulatedProvider::local(0.5, Duration::ZERO);
        let first = p.charge(OrderId(7), 100, "pm_card_ok").await;
        for _ in 0..20 {
            assert_eq!(p.charge(OrderId(7), 100, "pm_card_ok").await, first);
        }
        assert_eq!(p.charge_calls(OrderId(7)).await.unwrap(), 21);
        assert_eq!(p.charge_calls(OrderId(8)).await.unwrap(), 0);
        let stored = p.charge_record(OrderId(7)).await.unwrap().unwrap();
        let same = match &first {
            PaymentResult::Approved { reference } => stored.contains(reference.as_str()),
            PaymentResult::Declined { reason } => stored.ends_with(reason.as_str()),
            PaymentResult::Unknown { .. } => false,
        };
        assert!(same, "{stored} vs {first:?}");
        let declined = p.charge(OrderId(9), 100, "pm_card_declined").await;
        assert_eq!(p.charge(OrderId(9), 100, "pm_card_ok").await, declined);
        let r1 = p.refund(OrderId(7), 100).await;
        assert!(matches!(r1, RefundResult::Refunded { .. }));
        assert_eq!(p.refund(OrderId(7), 100).await, r1, "refunded once");
    }
}
