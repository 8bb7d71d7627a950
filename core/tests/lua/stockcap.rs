//! The stock-aware cap: live tokens never exceed ceil(stock × overbook); after a sell-out
//! every unit given back is exactly one token, to the earliest buyer still waiting; the tick
//! says sold_out_pending while units may come back and sold_out once nothing can.

use crate::env::*;
use vq_core::scripts::{AdmitStatus, JoinOutcome, JoinReject, RestockOutcome};

#[tokio::test]
async fn live_tokens_are_capped_at_stock_times_the_overbooking_factor() {
    let mut e = Env::with(DropCfg {
        stock: 10,
        ..Default::default()
    })
    .await;
    let us = users(40);
    e.join_all(&us).await;
    let out = e.admit(100).await;
    assert_eq!(admitted_users(&out), ids(&us[..15]), "default factor 1.5");
    assert_eq!(e.admit(100).await.admitted.len(), 0, "cap reached");

    e.set_cfg("overbook", 2.25).await;
    e.clock.advance(1_000);
    let out = e.admit(100).await;
    assert_eq!(
        admitted_users(&out),
        ids(&us[15..23]),
        "ceil(22.5) = 23 live"
    );

    // Stock taken by purchases lowers the cap: 3 units left, 23 live → nothing new.
    e.set_stock(3).await;
    e.clock.advance(1_000);
    let out = e.admit(100).await;
    assert_eq!((out.status, out.admitted.len()), (AdmitStatus::Ok, 0));
    assert_eq!(out.remaining, 3);
    e.cleanup().await;
}

/// Sells out a drop of 100 to the first 100 of 300 waiting buyers (150 tokens at factor
/// 1.5; the 50 unused ones expire). Returns the tokens of the 100 buyers.
async fn sell_out(e: &mut Env, us: &[vq_core::domain::UserId]) -> Vec<String> {
    e.join_all(us).await;
    let out = e.admit(1_000).await;
    assert_eq!(admitted_users(&out), ids(&us[..150]));
    let tokens: Vec<String> = out.admitted.into_iter().map(|a| a.token).collect();
    for (i, t) in tokens.iter().take(100).enumerate() {
        assert_eq!(e.purchase(t, us[i], 1).await, reserved(99 - i as i64, 1));
    }
    assert!(e.cfg_field("sold_out_at").await.is_some());
    let out = e.admit(1_000).await;
    assert_eq!(out.status, AdmitStatus::SoldOutPending);
    assert_eq!((out.live_holders, out.open_reservations), (50, 100));
    e.clock.set(T0 + TTL);
    let out = e.admit(1_000).await;
    assert_eq!((out.status, out.expired), (AdmitStatus::SoldOutPending, 50));
    assert_eq!(out.queue_len, 150, "the rest keep waiting");
    tokens.into_iter().take(100).collect()
}

#[tokio::test]
async fn after_a_sell_out_one_unit_back_is_one_token_to_the_earliest_buyer_still_there() {
    let mut e = Env::with(DropCfg {
        limit: 1,
        ..Default::default()
    })
    .await;
    let us = users(300);
    let tokens = sell_out(&mut e, &us).await;

    // us[150], first in line, went away 61 s ago; everyone behind is still connected.
    e.clock.set(T0 + 61_000);
    for &u in &us[151..] {
        assert!(e.touch(u).await);
    }
    let mut ps = e.subscribe().await;
    assert_eq!(
        e.restock(1, us[0], 1, &tokens[0]).await,
        RestockOutcome::Applied { remaining: 1 }
    );
    let out = e.admit(1_000).await;
    assert_eq!(out.status, AdmitStatus::Ok);
    assert_eq!(
        admitted_users(&out),
        ids(&us[151..152]),
        "exactly one token"
    );
    assert_eq!(out.left, ids(&us[150..151]));
    e.clock.advance(1_000);
    assert_eq!(e.admit(1_000).await.admitted.len(), 0, "one per unit");
    let events = e.events(&mut ps).await;
    assert_eq!(events[0]["type"], "restock");
    assert_eq!(events[1]["left"], serde_json::json!([us[150].to_string()]));
    assert_eq!(events[1]["admitted"].as_array().map(Vec::len), Some(1));
    e.cleanup().await;
}

#[tokio::test]
async fn sold_out_only_once_nothing_can_come_back() {
    let mut e = Env::with(DropCfg {
        stock: 1,
        ..Default::default()
    })
    .await;
    let us = users(3);
    e.join_all(&us).await;
    let out = e.admit(10).await;
    assert_eq!(admitted_users(&out), ids(&us[..2]), "ceil(1 × 1.5) = 2");
    let t0 = out.admitted[0].token.clone();
    assert_eq!(e.purchase(&t0, us[0], 1).await, reserved(0, 1));

    let out = e.admit(10).await;
    assert_eq!(out.status, AdmitStatus::SoldOutPending);
    assert_eq!(
        e.join(us[2]).await,
        JoinOutcome::Rejected(JoinReject::Waitlisted)
    );
    assert!(
        e.queue_score(us[2]).await.is_some(),
        "told sold_out, the waiter keeps the place"
    );
    assert_eq!(
        e.join(user()).await,
        JoinOutcome::Rejected(JoinReject::SoldOut),
        "nobody new joins a drop at 0"
    );

    // us[1]'s unused token expires: only the unpaid reservation may still come back.
    e.clock.set(T0 + TTL);
    let out = e.admit(10).await;
    assert_eq!((out.status, out.expired), (AdmitStatus::SoldOutPending, 1));
    assert!(e.settle(&t0).await, "paid");

    let mut ps = e.subscribe().await;
    let out = e.admit(10).await;
    assert_eq!(out.status, AdmitStatus::SoldOut);
    assert_eq!(e.events(&mut ps).await[0]["status"], "sold_out");
    assert_eq!(
        e.join(us[2]).await,
        JoinOutcome::Rejected(JoinReject::Waitlisted)
    );

    // A return after the final sold_out still goes to the waiter, who learns it on the
    // next read.
    assert_eq!(
        e.restock(1, us[0], 1, &t0).await,
        RestockOutcome::Applied { remaining: 1 }
    );
    e.clock.advance(1_000);
    let out = e.admit(10).await;
    assert_eq!(admitted_users(&out), ids(&us[2..3]));
    assert!(matches!(e.peek(us[2]).await, JoinOutcome::Admitted { .. }));
    e.cleanup().await;
}
