//! join.lua and purchase.lua under load: thousands of simultaneous joins and purchases over
//! one multiplexed connection never duplicate a place nor oversell.

use crate::env::*;
use std::collections::BTreeSet;
use vq_core::domain::UserId;
use vq_core::scripts::{JoinOutcome, PurchaseOutcome, PurchaseReject};

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_purchases_never_oversell() {
    const STOCK: i64 = 100;
    const BUYERS: usize = 2_000;
    let mut e = Env::with(DropCfg {
        limit: 1,
        rate: 1_000_000,
        max_holders: 1_000_000,
        ttl: 600_000,
        stock: STOCK,
        ..Default::default()
    })
    .await;

    // Everyone joins at once: each gets a distinct place.
    let us = users(BUYERS);
    let joins: Vec<_> = us
        .iter()
        .map(|&u| {
            let (scripts, mut conn, k, clock) = (
                e.scripts.clone(),
                e.conn.clone(),
                e.k.clone(),
                e.clock.clone(),
            );
            tokio::spawn(async move {
                scripts
                    .join(&mut conn, &k, u, &clock, crate::env::draw(0.5, &u), false)
                    .await
                    .expect("join.lua")
            })
        })
        .collect();
    let mut ranks = BTreeSet::new();
    for j in futures::future::join_all(joins).await {
        match j.unwrap() {
            JoinOutcome::Queued { rank, .. } => assert!(ranks.insert(rank)),
            other => panic!("join: {other:?}"),
        }
    }
    assert_eq!(ranks, (0..BUYERS as u64).collect::<BTreeSet<_>>());

    // Every buyer gets a token (no stock-aware cap) so the purchases race for the stock.
    e.set_cfg("overbook", BUYERS).await;
    let out = e.admit(BUYERS as u32).await;
    assert_eq!(out.admitted.len(), BUYERS);
    let holders: Vec<(UserId, String)> = out
        .admitted
        .into_iter()
        .map(|a| (UserId(a.user.parse().unwrap()), a.token))
        .collect();
    let mut ps = e.subscribe().await;

    // Everyone buys at once over one multiplexed connection.
    let buys: Vec<_> = holders
        .into_iter()
        .map(|(u, token)| {
            let (scripts, mut conn, k, clock) = (
                e.scripts.clone(),
                e.conn.clone(),
                e.k.clone(),
                e.clock.clone(),
            );
            tokio::spawn(async move {
                scripts
                    .purchase(&mut conn, &k, &token, u, qty(1), &clock)
                    .await
                    .expect("purchase.lua")
            })
        })
        .collect();
    let mut remaining = BTreeSet::new();
    let mut sold_out = 0;
    for b in futures::future::join_all(buys).await {
        match b.unwrap() {
            PurchaseOutcome::Reserved {
                remaining: left,
                user_total,
                replayed: false,
                ..
            } => {
                assert!(left >= 0, "stock went negative: {left}");
                assert!(remaining.insert(left), "two purchases saw {left} left");
                assert_eq!(user_total, 1);
            }
            PurchaseOutcome::Rejected(PurchaseReject::SoldOut) => sold_out += 1,
            other => panic!("unexpected purchase outcome {other:?}"),
        }
    }
    assert_eq!(remaining.len(), STOCK as usize, "exactly {STOCK} reserved");
    assert_eq!(remaining, (0..STOCK).collect::<BTreeSet<_>>());
    assert_eq!(sold_out, BUYERS - STOCK as usize);

    assert_eq!(e.stock().await, 0);
    assert_eq!(e.len("XLEN", e.k.orders()).await, STOCK as u64);
    assert_eq!(e.len("HLEN", e.k.reservations()).await, STOCK as u64);
    assert_eq!(e.len("HLEN", e.k.buyers()).await, STOCK as u64);
    assert_eq!(e.len("ZCARD", e.k.expiry()).await, 0, "every token burned");
    assert_eq!(e.len("HLEN", e.k.holders()).await, 0);
    let events = e.events(&mut ps).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "sold_out");
    e.cleanup().await;
}
