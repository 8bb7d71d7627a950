//! purchase.lua: token checks (unknown, someone else's, used, expired), the closed drop,
//! the per-user limit, stock checks, and the reservation and order it writes.

use crate::env::*;
use std::collections::HashMap;
use vq_core::scripts::PurchaseReject;

#[tokio::test]
async fn purchase_with_an_unknown_token_is_invalid() {
    let mut e = Env::with(DropCfg::default()).await;
    let u = user();
    e.admit_one(u).await;
    assert_eq!(
        e.purchase("nope.1", u, 1).await,
        rejected(PurchaseReject::InvalidToken)
    );
    assert_eq!(e.stock().await, 100);
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_with_another_accounts_token_keeps_it_for_the_owner() {
    let mut e = Env::with(DropCfg::default()).await;
    let (owner, thief) = (user(), user());
    let token = e.admit_one(owner).await;

    assert_eq!(
        e.purchase(&token, thief, 1).await,
        rejected(PurchaseReject::NotYourToken)
    );
    assert_eq!(e.token_state(&token).await, Some(format!("L|{owner}")));
    assert_eq!(e.holder_token(owner).await, Some(token.clone()));
    assert_eq!(e.bought(thief).await, None);
    assert_eq!(e.purchase(&token, owner, 1).await, reserved(99, 1));
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_token_is_single_use() {
    let mut e = Env::with(DropCfg::default()).await;
    let u = user();
    let token = e.admit_one(u).await;
    assert_eq!(e.purchase(&token, u, 1).await, reserved(99, 1));
    // A retry of the same request replays its success; another quantity is a new request.
    assert_eq!(e.purchase(&token, u, 1).await, replayed(99, 1));
    assert_eq!(
        e.purchase(&token, u, 2).await,
        rejected(PurchaseReject::TokenUsed)
    );
    assert_eq!(e.stock().await, 99);
    assert_eq!(e.bought(u).await, Some(1));
    assert_eq!(e.len("XLEN", e.k.orders()).await, 1);
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_with_a_live_but_overdue_token_expires_it() {
    let mut e = Env::with(DropCfg::default()).await;
    let (late, on_time) = (user(), user());
    let tokens = e.admit_users(&[late, on_time]).await;

    e.clock.set(T0 + TTL - 1);
    assert_eq!(e.purchase(&tokens[1], on_time, 1).await, reserved(99, 1));

    // Not yet swept by admit: still "L" in the tokens hash but past its expiry.
    e.clock.set(T0 + TTL);
    assert_eq!(e.token_state(&tokens[0]).await, Some(format!("L|{late}")));
    assert_eq!(
        e.purchase(&tokens[0], late, 1).await,
        rejected(PurchaseReject::TokenExpired)
    );
    assert_eq!(e.token_state(&tokens[0]).await, Some(format!("E|{late}")));
    assert_eq!(e.token_expiry(&tokens[0]).await, None);
    assert_eq!(e.holder_token(late).await, None);

    // Now the already-marked path.
    assert_eq!(
        e.purchase(&tokens[0], late, 1).await,
        rejected(PurchaseReject::TokenExpired)
    );
    assert_eq!(e.stock().await, 99);
    assert_eq!(e.bought(late).await, None);
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_with_a_token_expired_by_admit_is_rejected() {
    let mut e = Env::with(DropCfg::default()).await;
    let u = user();
    let token = e.admit_one(u).await;
    e.clock.set(T0 + TTL + 5_000);
    assert_eq!(e.admit(10).await.expired, 1);
    assert_eq!(e.token_state(&token).await, Some(format!("E|{u}")));

    // Even a clock going back would not revive it: the mark is checked first.
    e.clock.set(T0);
    assert_eq!(
        e.purchase(&token, u, 1).await,
        rejected(PurchaseReject::TokenExpired)
    );
    assert_eq!(e.stock().await, 100);
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_on_a_closed_drop_keeps_the_token() {
    let mut e = Env::with(DropCfg::default()).await;
    let u = user();
    let token = e.admit_one(u).await;
    e.set_cfg("state", "closed").await;
    assert_eq!(
        e.purchase(&token, u, 1).await,
        rejected(PurchaseReject::DropClosed)
    );
    assert_eq!(e.token_state(&token).await, Some(format!("L|{u}")));
    assert_eq!(e.stock().await, 100);

    e.set_cfg("state", "active").await;
    assert_eq!(e.purchase(&token, u, 1).await, reserved(99, 1));
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_at_the_limit_burns_the_token() {
    let mut e = Env::with(DropCfg {
        limit: 2,
        ..Default::default()
    })
    .await;
    let u = user();
    let token = e.admit_one(u).await;
    e.set_bought(u, 2).await;

    assert_eq!(
        e.purchase(&token, u, 1).await,
        rejected(PurchaseReject::LimitReached { allowance: 0 })
    );
    assert_eq!(e.token_state(&token).await, Some(format!("U|{u}")));
    assert_eq!(e.token_expiry(&token).await, None);
    assert_eq!(e.holder_token(u).await, None);
    assert_eq!(
        e.purchase(&token, u, 1).await,
        rejected(PurchaseReject::TokenUsed)
    );
    assert_eq!(e.stock().await, 100);
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_over_the_remaining_allowance_keeps_the_token() {
    let mut e = Env::with(DropCfg {
        limit: 3,
        ..Default::default()
    })
    .await;
    let u = user();
    let token = e.admit_one(u).await;
    e.set_bought(u, 1).await;

    assert_eq!(
        e.purchase(&token, u, 3).await,
        rejected(PurchaseReject::LimitReached { allowance: 2 })
    );
    assert_eq!(e.token_state(&token).await, Some(format!("L|{u}")));
    assert_eq!(e.stock().await, 100);
    assert_eq!(e.purchase(&token, u, 2).await, reserved(98, 3));
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_when_sold_out_burns_the_token() {
    let mut e = Env::with(DropCfg::default()).await;
    let u = user();
    let token = e.admit_one(u).await;
    e.set_stock(0).await;

    assert_eq!(
        e.purchase(&token, u, 1).await,
        rejected(PurchaseReject::SoldOut)
    );
    assert_eq!(e.token_state(&token).await, Some(format!("U|{u}")));
    assert_eq!(e.holder_token(u).await, None);
    assert_eq!(e.stock().await, 0);
    assert_eq!(e.len("XLEN", e.k.orders()).await, 0);
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_of_more_than_the_stock_keeps_the_token() {
    let mut e = Env::with(DropCfg {
        limit: 5,
        stock: 2,
        ..Default::default()
    })
    .await;
    let u = user();
    let token = e.admit_one(u).await;

    assert_eq!(
        e.purchase(&token, u, 3).await,
        rejected(PurchaseReject::InsufficientStock { remaining: 2 })
    );
    assert_eq!(e.token_state(&token).await, Some(format!("L|{u}")));
    assert_eq!(e.stock().await, 2);
    assert_eq!(e.purchase(&token, u, 2).await, reserved(0, 2));
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_reserves_stock_and_enqueues_the_order() {
    let mut e = Env::with(DropCfg {
        limit: 5,
        stock: 10,
        ..Default::default()
    })
    .await;
    let (u, other) = (user(), user());
    let tokens = e.admit_users(&[u, other]).await;
    let token = &tokens[0];
    e.set_bought(u, 1).await;

    e.clock.set(T0 + 1_234);
    assert_eq!(e.purchase(token, u, 2).await, reserved(8, 3));
    assert_eq!(e.stock().await, 8);
    assert_eq!(e.bought(u).await, Some(3));
    assert_eq!(e.token_state(token).await, Some(format!("U|{u}")));
    assert_eq!(e.token_expiry(token).await, None);
    assert_eq!(e.holder_token(u).await, None);
    assert_eq!(e.admit(0).await.live_holders, 1, "slot freed");

    let reservation: Option<String> = e
        .q(redis::cmd("HGET").arg(e.k.reservations()).arg(token))
        .await;
    assert_eq!(reservation, Some(format!("{u}|2|{}", T0 + 1_234)));

    let entries: Vec<(String, HashMap<String, String>)> = e
        .q(redis::cmd("XRANGE").arg(e.k.orders()).arg("-").arg("+"))
        .await;
    assert_eq!(entries.len(), 1);
    let fields = &entries[0].1;
    let want: HashMap<String, String> = [
        ("token", token.clone()),
        ("user", u.to_string()),
        ("qty", "2".into()),
        ("ts", (T0 + 1_234).to_string()),
        ("seq", "1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(fields, &want);

    // The other holder's purchase stacks on top.
    assert_eq!(e.purchase(&tokens[1], other, 5).await, reserved(3, 5));
    assert_eq!(e.len("XLEN", e.k.orders()).await, 2);
    assert_eq!(e.len("HLEN", e.k.reservations()).await, 2);
    e.cleanup().await;
}

/// The order id is known at purchase time: the token names its admission seq, the reply and
/// its replay carry it, and it keeps counting across ticks (unique per drop).
#[tokio::test]
async fn purchase_returns_the_tokens_admission_seq() {
    let mut e = Env::with(DropCfg::default()).await;
    let (a, b) = (user(), user());
    let ta = e.admit_one(a).await;
    let tb = e.admit_one(b).await;
    assert!(ta.ends_with(".1") && tb.ends_with(".2"), "{ta} {tb}");
    let seq_of = |o: vq_core::scripts::PurchaseOutcome| match o {
        vq_core::scripts::PurchaseOutcome::Reserved { seq, replayed, .. } => (seq, replayed),
        other => panic!("{other:?}"),
    };
    assert_eq!(seq_of(e.purchase_raw(&tb, b, 1).await), (2, false));
    assert_eq!(seq_of(e.purchase_raw(&tb, b, 1).await), (2, true));
    assert_eq!(seq_of(e.purchase_raw(&ta, a, 1).await), (1, false));
    e.cleanup().await;
}
