//! admit.lua: the status gates (no drop, paused, closed, not started, sold out), FIFO
//! admission with numbered tokens, the batch limit and the holder cap.

use crate::env::*;
use serde_json::Value as Json;
use vq_core::scripts::{Admission, AdmitOutcome, AdmitStatus, JoinOutcome};

/// Asserts an admit call with `status` admitted nobody and left the queue of `queue_len` alone.
async fn assert_admits_nothing(e: &mut Env, status: &str, queue_len: u64) -> AdmitOutcome {
    let out = e.admit(100).await;
    assert_eq!(out.status, status);
    assert!(out.admitted.is_empty(), "{out:?}");
    assert_eq!(out.queue_len, queue_len);
    assert_eq!(e.queue_len().await, queue_len);
    out
}

#[tokio::test]
async fn admit_without_drop_config_is_no_drop_and_silent() {
    let mut e = Env::bare().await;
    let mut ps = e.subscribe().await;
    let out = e.admit(10).await;
    assert_eq!(
        out,
        AdmitOutcome {
            status: AdmitStatus::NoDrop,
            admitted: vec![],
            admitted_total: 0,
            queue_len: 0,
            live_holders: 0,
            expired: 0,
            remaining: 0,
            open_reservations: 0,
            left: vec![],
        }
    );
    assert_eq!(e.events(&mut ps).await, Vec::<Json>::new());
    e.cleanup().await;
}

#[tokio::test]
async fn admit_while_paused_admits_nobody_but_still_expires_tokens() {
    let mut e = Env::with(DropCfg::default()).await;
    let holder = user();
    let token = e.admit_one(holder).await;
    e.join_all(&users(3)).await;

    e.set_cfg("state", "paused").await;
    let out = assert_admits_nothing(&mut e, "paused", 3).await;
    assert_eq!(out.admitted_total, 1);
    assert_eq!(out.live_holders, 1);

    e.clock.set(T0 + TTL);
    let out = assert_admits_nothing(&mut e, "paused", 3).await;
    assert_eq!(out.expired, 1);
    assert_eq!(out.live_holders, 0);
    assert_eq!(e.token_state(&token).await, Some(format!("E|{holder}")));

    e.set_cfg("state", "active").await;
    assert_eq!(e.admit(100).await.admitted.len(), 3);
    e.cleanup().await;
}

#[tokio::test]
async fn admit_on_a_closed_drop_admits_nobody() {
    let mut e = Env::with(DropCfg::default()).await;
    e.join_all(&users(3)).await;
    e.set_cfg("state", "closed").await;
    let out = assert_admits_nothing(&mut e, "closed", 3).await;
    assert_eq!(out.admitted_total, 0);
    e.cleanup().await;
}

#[tokio::test]
async fn admit_before_the_start_is_not_started() {
    let starts_at = T0 + 60_000;
    let mut e = Env::with(DropCfg {
        starts_at,
        prequeue: 60_000,
        ..Default::default()
    })
    .await;
    e.clock.set(T0 + 1);
    let us = users(3);
    for (i, &u) in us.iter().enumerate() {
        // increasing random scores: pre-queue order == join order here
        assert!(matches!(
            e.join_r(u, 0.1 * (i + 1) as f64).await,
            JoinOutcome::Queued { prequeue: true, .. }
        ));
    }
    e.clock.set(starts_at - 1);
    assert_admits_nothing(&mut e, "not_started", 3).await;

    e.clock.set(starts_at);
    let out = e.admit(100).await;
    assert_eq!(out.status, "ok");
    assert_eq!(admitted_users(&out), ids(&us));
    e.cleanup().await;
}

#[tokio::test]
async fn admit_when_sold_out_admits_nobody() {
    let mut e = Env::with(DropCfg::default()).await;
    e.join_all(&users(3)).await;
    e.set_stock(0).await;
    assert_admits_nothing(&mut e, "sold_out", 3).await;
    e.cleanup().await;
}

#[tokio::test]
async fn admit_pops_the_queue_in_fifo_order_and_numbers_admissions() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(5);
    e.join_all(&us).await;

    let out = e.admit_p(3, "aa11").await;
    assert_eq!(out.status, "ok");
    assert_eq!(
        out.admitted,
        (0..3)
            .map(|i| Admission {
                user: us[i].to_string(),
                token: format!("aa11.{}", i + 1),
                seq: i as u64 + 1,
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(
        (
            out.admitted_total,
            out.queue_len,
            out.live_holders,
            out.expired
        ),
        (3, 2, 3, 0)
    );
    for (i, a) in out.admitted.iter().enumerate() {
        assert_eq!(e.token_state(&a.token).await, Some(format!("L|{}", us[i])));
        assert_eq!(e.token_expiry(&a.token).await, Some((T0 + TTL) as f64));
        assert_eq!(e.holder_token(us[i]).await, Some(a.token.clone()));
        assert_eq!(e.queue_score(us[i]).await, None);
    }

    e.clock.advance(1_000);
    let out = e.admit_p(10, "bb22").await;
    assert_eq!(
        out.admitted,
        vec![
            Admission {
                user: us[3].to_string(),
                token: "bb22.4".into(),
                seq: 4
            },
            Admission {
                user: us[4].to_string(),
                token: "bb22.5".into(),
                seq: 5
            },
        ]
    );
    assert_eq!(
        (out.admitted_total, out.queue_len, out.live_holders),
        (5, 0, 5)
    );
    let total: i64 = e.q(redis::cmd("GET").arg(e.k.admitted())).await;
    assert_eq!(total, 5);
    assert_eq!(
        e.len("XLEN", e.k.admlog()).await,
        2,
        "one admlog entry per batch"
    );

    // An empty queue is fine.
    let out = e.admit(10).await;
    assert_eq!((out.status.as_str(), out.admitted.len()), ("ok", 0));
    e.cleanup().await;
}

#[tokio::test]
async fn admit_honours_max_batch() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(10);
    e.join_all(&us).await;

    let out = e.admit(4).await;
    assert_eq!(admitted_users(&out), ids(&us[..4]));
    assert_eq!(out.queue_len, 6);
    assert!(e.admit(0).await.admitted.is_empty());
    let out = e.admit(1).await;
    assert_eq!(admitted_users(&out), ids(&us[4..5]));
    assert_eq!(out.admitted[0].seq, 5);
    e.cleanup().await;
}

#[tokio::test]
async fn admit_tokens_are_prefix_dot_seq() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(3);
    e.join_all(&us).await;
    let prefix = hex_prefix();
    let out = e.admit_p(3, &prefix).await;
    let tokens: Vec<String> = out.admitted.iter().map(|a| a.token.clone()).collect();
    assert_eq!(
        tokens,
        vec![
            format!("{prefix}.1"),
            format!("{prefix}.2"),
            format!("{prefix}.3")
        ]
    );
    for (t, u) in tokens.iter().zip(&us) {
        assert_eq!(e.token_state(t).await, Some(format!("L|{u}")));
    }
    e.cleanup().await;
}

#[tokio::test]
async fn admit_respects_the_holder_cap_and_expiry_frees_slots() {
    let mut e = Env::with(DropCfg {
        max_holders: 2,
        ..Default::default()
    })
    .await;
    let us = users(6);
    e.join_all(&us).await;

    let out = e.admit(10).await;
    assert_eq!(admitted_users(&out), ids(&us[0..2]));
    assert_eq!(out.live_holders, 2);
    let t0 = out.admitted[0].token.clone();
    let t1 = out.admitted[1].token.clone();

    let out = e.admit(10).await;
    assert!(out.admitted.is_empty(), "cap reached");
    assert_eq!((out.live_holders, out.queue_len), (2, 4));

    // A purchase frees its slot.
    e.clock.advance(1_000);
    assert_eq!(e.purchase(&t0, us[0], 1).await, reserved(99, 1));
    let out = e.admit(10).await;
    assert_eq!(admitted_users(&out), ids(&us[2..3]));
    assert_eq!(out.live_holders, 2);

    // us[1]'s token (issued at T0) expires at T0 + ttl; us[2]'s (T0 + 1000) does not yet.
    e.clock.set(T0 + TTL);
    let out = e.admit(10).await;
    assert_eq!(out.expired, 1);
    assert_eq!(admitted_users(&out), ids(&us[3..4]));
    assert_eq!(out.live_holders, 2);
    assert_eq!(e.token_state(&t1).await, Some(format!("E|{}", us[1])));
    assert_eq!(e.holder_token(us[1]).await, None);

    e.clock.set(T0 + 1_000 + TTL);
    let out = e.admit(10).await;
    assert_eq!(out.expired, 1);
    assert_eq!(admitted_users(&out), ids(&us[4..5]));
    assert_eq!(out.live_holders, 2);

    let expired: i64 = e.q(redis::cmd("GET").arg(e.k.expired())).await;
    assert_eq!(expired, 2, "expired counter");
    e.cleanup().await;
}
