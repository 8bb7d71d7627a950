//! Idempotent purchase and the life of a reservation: a retry replays the first success
//! (even after the units were given back), restock applies once, and a paid reservation
//! stops counting as units that may come back.

use crate::env::*;
use vq_core::scripts::{PurchaseReject, RestockOutcome};

#[tokio::test]
async fn a_retry_replays_the_first_success_even_after_a_restock() {
    let mut e = Env::with(DropCfg::default()).await;
    let (u, other) = (user(), user());
    let token = e.admit_one(u).await;
    assert_eq!(e.purchase(&token, u, 2).await, reserved(98, 2));
    e.clock.advance(TTL * 3);
    assert_eq!(
        e.purchase(&token, u, 2).await,
        replayed(98, 2),
        "the values of the first success, also after the token's TTL"
    );
    assert_eq!(
        e.purchase(&token, other, 2).await,
        rejected(PurchaseReject::NotYourToken)
    );

    assert_eq!(
        e.restock(11, u, 2, &token).await,
        RestockOutcome::Applied { remaining: 100 }
    );
    assert_eq!(e.purchase(&token, u, 2).await, replayed(98, 2));
    assert_eq!(e.stock().await, 100, "a replay changes nothing");
    assert_eq!(e.bought(u).await, None);
    assert_eq!(e.len("XLEN", e.k.orders()).await, 1, "one order message");
    e.cleanup().await;
}

#[tokio::test]
async fn restock_applies_once_and_closes_the_reservation() {
    let mut e = Env::with(DropCfg::default()).await;
    let u = user();
    let token = e.admit_one(u).await;
    assert_eq!(e.purchase(&token, u, 2).await, reserved(98, 2));
    let unpaid: Option<i64> = e.q(redis::cmd("HGET").arg(e.k.unpaid()).arg(&token)).await;
    assert_eq!(unpaid, Some(2), "an open reservation of 2 units");

    assert_eq!(
        e.restock(5, u, 2, &token).await,
        RestockOutcome::Applied { remaining: 100 }
    );
    assert_eq!(
        e.restock(5, u, 2, &token).await,
        RestockOutcome::Already { remaining: 100 }
    );
    assert_eq!(e.stock().await, 100);
    assert_eq!(e.len("HLEN", e.k.unpaid()).await, 0);
    assert_eq!(e.len("HLEN", e.k.reservations()).await, 0);
    assert_eq!(
        e.len("HLEN", e.k.receipts()).await,
        1,
        "the receipt survives"
    );
    assert!(
        !e.settle(&token).await,
        "given back: nothing left to settle"
    );
    e.cleanup().await;
}

#[tokio::test]
async fn settling_a_paid_reservation_keeps_the_record_but_closes_it_once() {
    let mut e = Env::with(DropCfg::default()).await;
    let u = user();
    let token = e.admit_one(u).await;
    assert_eq!(e.purchase(&token, u, 1).await, reserved(99, 1));
    assert!(e.settle(&token).await);
    assert!(!e.settle(&token).await);
    assert_eq!(e.len("HLEN", e.k.unpaid()).await, 0);
    assert_eq!(
        e.len("HLEN", e.k.reservations()).await,
        1,
        "the sold unit stays recorded (reconcile, rebuild)"
    );
    assert_eq!(e.purchase(&token, u, 1).await, replayed(99, 1));
    e.cleanup().await;
}
