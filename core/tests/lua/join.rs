//! join.lua: the drop gates (no drop, closed, sold out, per-user limit, not open yet), the
//! pre-queue's random order, FIFO live joins, peeks and re-joins of admitted users.

use crate::env::*;
use vq_core::scripts::{JoinOutcome, JoinReject, PurchaseReject};

#[tokio::test]
async fn join_without_drop_config_is_no_drop() {
    let mut e = Env::bare().await;
    let u = user();
    assert_eq!(e.join(u).await, JoinOutcome::Rejected(JoinReject::NoDrop));
    assert_eq!(e.peek(u).await, JoinOutcome::Rejected(JoinReject::NoDrop));
    assert_eq!(e.queue_len().await, 0);
    e.cleanup().await;
}

#[tokio::test]
async fn join_closed_drop_is_rejected_even_for_members() {
    let mut e = Env::with(DropCfg::default()).await;
    let member = user();
    assert_eq!(e.join(member).await, queued(0, 0, false));

    e.set_cfg("state", "closed").await;
    assert_eq!(
        e.join(user()).await,
        JoinOutcome::Rejected(JoinReject::Closed)
    );
    assert_eq!(
        e.join(member).await,
        JoinOutcome::Rejected(JoinReject::Closed)
    );
    assert_eq!(
        e.peek(member).await,
        JoinOutcome::Rejected(JoinReject::Closed)
    );
    assert_eq!(e.queue_len().await, 1, "nobody was added");
    e.cleanup().await;
}

#[tokio::test]
async fn join_sold_out_drop_is_rejected() {
    let mut e = Env::with(DropCfg {
        stock: 0,
        ..Default::default()
    })
    .await;
    assert_eq!(
        e.join(user()).await,
        JoinOutcome::Rejected(JoinReject::SoldOut)
    );

    // A missing stock key is lost state, never "sold out" nor a fresh counter.
    let _: i64 = e.q(redis::cmd("DEL").arg(e.k.stock())).await;
    assert_eq!(
        e.join(user()).await,
        JoinOutcome::Rejected(JoinReject::NeedsRebuild)
    );
    assert_eq!(e.queue_len().await, 0);
    e.cleanup().await;
}

#[tokio::test]
async fn join_rejects_a_buyer_at_the_per_user_limit() {
    let mut e = Env::with(DropCfg {
        limit: 2,
        ..Default::default()
    })
    .await;
    let (at_limit, over_limit, below) = (user(), user(), user());
    e.set_bought(at_limit, 2).await;
    e.set_bought(over_limit, 3).await;
    e.set_bought(below, 1).await;

    assert_eq!(
        e.join(at_limit).await,
        JoinOutcome::Rejected(JoinReject::LimitReached)
    );
    assert_eq!(
        e.join(over_limit).await,
        JoinOutcome::Rejected(JoinReject::LimitReached)
    );
    // A peek tells the same reason (the room page shows "already bought" without a socket).
    assert_eq!(
        e.peek(at_limit).await,
        JoinOutcome::Rejected(JoinReject::LimitReached)
    );
    assert_eq!(e.peek(below).await, JoinOutcome::NotQueued);
    assert_eq!(e.join(below).await, queued(0, 0, false));
    assert_eq!(e.queue_len().await, 1);
    e.cleanup().await;
}

#[tokio::test]
async fn join_before_the_prequeue_opens_is_not_open() {
    let starts_at = T0 + 120_000;
    let mut e = Env::with(DropCfg {
        starts_at,
        prequeue: 60_000,
        ..Default::default()
    })
    .await;
    let u = user();
    let opens_at_ms = starts_at - 60_000;

    assert_eq!(
        e.join(u).await,
        JoinOutcome::Rejected(JoinReject::NotOpen { opens_at_ms })
    );
    e.clock.set(opens_at_ms - 1);
    assert_eq!(
        e.join(u).await,
        JoinOutcome::Rejected(JoinReject::NotOpen { opens_at_ms })
    );
    assert_eq!(
        e.peek(u).await,
        JoinOutcome::Rejected(JoinReject::NotOpen { opens_at_ms }),
        "a peek tells when the room opens"
    );
    assert_eq!(e.queue_len().await, 0);

    // The pre-queue opens exactly at starts_at - prequeue.
    e.clock.set(opens_at_ms);
    assert_eq!(e.join(u).await, queued(0, 0, true));
    e.cleanup().await;
}

#[tokio::test]
async fn prequeue_join_uses_the_draw_score_and_live_joiners_go_behind() {
    let starts_at = T0 + 60_000;
    let mut e = Env::with(DropCfg {
        starts_at,
        prequeue: 60_000,
        ..Default::default()
    })
    .await;
    let (a, b, c) = (user(), user(), user());

    e.clock.set(T0 + 10_000);
    assert_eq!(e.join_r(a, 0.75).await, queued(0, 0, true));
    assert_eq!(e.queue_score(a).await, Some(0.75));
    // A lower random score sorts ahead, whatever the join order.
    assert_eq!(e.join_r(b, 0.25).await, queued(0, 0, true));
    assert_eq!(e.queue_score(b).await, Some(0.25));
    assert_eq!(e.peek(a).await, queued(1, 0, true));
    // Re-joining in the pre-queue keeps the first random score.
    assert_eq!(e.join_r(a, 0.0).await, queued(1, 0, true));
    assert_eq!(e.queue_score(a).await, Some(0.75));
    assert_eq!(e.seq().await, None, "pre-queue joins do not consume seq");

    // After the start: score 1 + seq, behind every pre-queue joiner.
    e.clock.set(starts_at);
    assert_eq!(e.join_r(c, 0.1).await, queued(2, 0, false));
    assert_eq!(e.queue_score(c).await, Some(2.0));
    assert_eq!(e.seq().await, Some(1));
    assert_eq!(e.join(a).await, queued(1, 0, false), "pre flag is off now");
    // Only the pre-queue joiners are on the draw list, once each, with their queue score.
    assert_eq!(
        e.draw_list().await,
        vec![(format!("p-{b}"), 0.25), (format!("p-{a}"), 0.75)]
    );

    // Admission follows the queue: the shuffled pre-queue first, then the live joiners.
    let out = e.admit(10).await;
    assert_eq!(admitted_users(&out), ids(&[b, a, c]));
    e.cleanup().await;
}

#[tokio::test]
async fn live_join_is_fifo_and_idempotent() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(3);
    for (i, &u) in us.iter().enumerate() {
        assert_eq!(e.join(u).await, queued(i as u64, 0, false));
        assert_eq!(e.queue_score(u).await, Some(2.0 + i as f64), "score 1+seq");
    }
    assert_eq!(e.seq().await, Some(3));

    // Reconnects keep the place, whatever random value they send, and add nobody.
    e.clock.advance(5_000);
    for (i, &u) in us.iter().enumerate().rev() {
        assert_eq!(e.join_r(u, 0.01).await, queued(i as u64, 0, false));
    }
    assert_eq!(e.queue_len().await, 3);
    assert_eq!(e.seq().await, Some(3), "re-joins do not consume seq");
    e.cleanup().await;
}

#[tokio::test]
async fn peek_reports_the_place_without_inserting() {
    let mut e = Env::with(DropCfg::default()).await;
    let (a, b, stranger) = (user(), user(), user());
    e.join_all(&[a, b]).await;

    assert_eq!(e.peek(stranger).await, JoinOutcome::NotQueued);
    assert_eq!(e.peek(stranger).await, JoinOutcome::NotQueued);
    assert_eq!(e.queue_len().await, 2);
    assert_eq!(e.seq().await, Some(2));
    assert_eq!(e.queue_score(stranger).await, None);

    assert_eq!(e.peek(a).await, queued(0, 0, false));
    assert_eq!(e.peek(b).await, queued(1, 0, false));
    e.cleanup().await;
}

#[tokio::test]
async fn admitted_user_rejoining_gets_the_token_back() {
    let mut e = Env::with(DropCfg::default()).await;
    let (a, b, c) = (user(), user(), user());
    e.join_all(&[a, b]).await;
    let out = e.admit(1).await;
    assert_eq!(admitted_users(&out), ids(&[a]));
    let token = out.admitted[0].token.clone();
    let admitted = JoinOutcome::Admitted {
        token: token.clone(),
        expires_at_ms: T0 + TTL,
        seq: Some(1),
    };

    assert_eq!(e.join(a).await, admitted);
    assert_eq!(e.peek(a).await, admitted);
    // Still live one ms before expiry.
    e.clock.set(T0 + TTL - 1);
    assert_eq!(e.join(a).await, admitted);
    assert_eq!(e.queue_score(a).await, None, "not put back in the queue");

    // Everyone else sees the admitted count move.
    assert_eq!(e.join(b).await, queued(0, 1, false));
    assert_eq!(e.join(c).await, queued(1, 1, false));
    e.cleanup().await;
}

#[tokio::test]
async fn admitted_rejoin_reads_the_seq_from_the_token_name_only() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(3);
    e.join_all(&us).await;
    let out = e.admit(3).await;
    // The seq lives in the token's name (prefix.seq) and nowhere else.
    let seqs = e.k.seqs();
    assert_eq!(e.len("HLEN", seqs).await, 0, "no second copy of the seq");
    let third = &out.admitted[2];
    match e.join(us[2]).await {
        JoinOutcome::Admitted { token, seq, .. } => {
            assert_eq!((token.as_str(), seq), (third.token.as_str(), Some(3)));
        }
        other => panic!("expected admitted, got {other:?}"),
    }
    // A live token whose name carries no seq answers seq None (0 from the script).
    let odd = "no-seq-here".to_string();
    let u = us[0];
    let _: () = e
        .q(redis::cmd("HSET")
            .arg(e.k.holders())
            .arg(u.to_string())
            .arg(&odd))
        .await;
    let _: () = e
        .q(redis::cmd("ZADD").arg(e.k.expiry()).arg(T0 + TTL).arg(&odd))
        .await;
    let want = JoinOutcome::Admitted {
        token: odd,
        expires_at_ms: T0 + TTL,
        seq: None,
    };
    assert_eq!(e.join(u).await, want);
    e.cleanup().await;
}

#[tokio::test]
async fn admitted_user_with_an_expired_token_frees_the_slot_and_requeues_at_the_back() {
    let mut e = Env::with(DropCfg::default()).await;
    let (a, b, c) = (user(), user(), user());
    e.join_all(&[a, b]).await;
    let token = e.admit(1).await.admitted[0].token.clone();
    e.join_all(&[c]).await;
    assert_eq!(e.holder_token(a).await, Some(token.clone()));

    // Expiry is inclusive: at exactly T0 + ttl the turn is over.
    e.clock.set(T0 + TTL);
    assert_eq!(e.join(a).await, queued(2, 1, false), "back of the queue");
    assert_eq!(e.token_state(&token).await, Some(format!("E|{a}")));
    assert_eq!(e.token_expiry(&token).await, None);
    assert_eq!(e.holder_token(a).await, None);

    let tick = e.admit(0).await;
    assert_eq!(tick.live_holders, 0, "slot freed");
    assert_eq!(tick.expired, 0, "already freed by join");
    assert_eq!(
        e.purchase(&token, a, 1).await,
        rejected(PurchaseReject::TokenExpired)
    );
    e.cleanup().await;
}
