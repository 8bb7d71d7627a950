//! Leave detection: join/peek/touch record the last sign of life; a buyer gone longer than
//! the grace is removed and counted (at the head by admit, or on a late return by join), and
//! never gets a token; a buyer back inside the grace keeps the place.

use crate::env::*;
use vq_core::scripts::JoinOutcome;

const GRACE: i64 = 10_000;

async fn env() -> Env {
    let mut e = Env::with(DropCfg::default()).await;
    e.set_cfg("leave_grace_ms", GRACE).await;
    e
}

async fn left_count(e: &mut Env) -> Option<i64> {
    e.q(redis::cmd("GET").arg(e.k.left())).await
}

#[tokio::test]
async fn a_buyer_gone_past_the_grace_is_skipped_counted_and_announced() {
    let mut e = env().await;
    let us = users(3);
    e.join_all(&us).await;
    e.clock.set(T0 + 5_000);
    assert!(e.touch(us[1]).await);
    assert!(e.touch(us[2]).await);
    e.clock.set(T0 + GRACE + 1);
    let mut ps = e.subscribe().await;

    let out = e.admit(1).await;
    assert_eq!(admitted_users(&out), ids(&us[1..2]));
    assert_eq!(out.admitted[0].seq, 1, "a leaver takes no admission number");
    assert_eq!(out.left, ids(&us[..1]));
    assert_eq!(out.queue_len, 1);
    assert_eq!(left_count(&mut e).await, Some(1));
    assert_eq!(e.queue_score(us[0]).await, None);
    let seen: Option<i64> = e
        .q(redis::cmd("HGET").arg(e.k.seen()).arg(us[0].to_string()))
        .await;
    assert_eq!(seen, None);
    let ev = &e.events(&mut ps).await[0];
    assert_eq!(ev["left"], serde_json::json!([us[0].to_string()]));
    assert_eq!(ev["left_total"], 1);
    e.cleanup().await;
}

#[tokio::test]
async fn a_buyer_back_inside_the_grace_keeps_the_place() {
    let mut e = env().await;
    let us = users(2);
    e.join_all(&us).await;
    e.clock.set(T0 + GRACE);
    assert_eq!(
        e.join(us[0]).await,
        queued(0, 0, false),
        "exactly at the grace"
    );
    assert_eq!(e.peek(us[1]).await, queued(1, 0, false));
    e.clock.set(T0 + 2 * GRACE);
    let out = e.admit(10).await;
    assert_eq!(admitted_users(&out), ids(&us));
    assert!(out.left.is_empty());
    e.cleanup().await;
}

#[tokio::test]
async fn a_late_return_loses_the_place_and_queues_at_the_back() {
    let mut e = env().await;
    let us = users(3);
    e.join_all(&us).await;
    e.clock.set(T0 + GRACE + 1);
    e.touch(us[1]).await;
    e.touch(us[2]).await;
    assert_eq!(e.join(us[0]).await, queued(2, 0, false));
    assert_eq!(left_count(&mut e).await, Some(1));
    assert_eq!(e.peek(us[0]).await, queued(2, 0, false), "present again");

    // A peek past the grace says the place is gone.
    e.clock.set(T0 + 3 * GRACE);
    assert_eq!(e.peek(us[1]).await, JoinOutcome::NotQueued);
    assert_eq!(left_count(&mut e).await, Some(2));
    assert_eq!(e.queue_len().await, 2);
    e.cleanup().await;
}

#[tokio::test]
async fn touch_records_only_buyers_holding_a_place() {
    let mut e = env().await;
    let (queued_u, stranger) = (user(), user());
    e.join_all(&[queued_u]).await;
    e.clock.set(T0 + 3_000);
    assert!(e.touch(queued_u).await);
    assert!(!e.touch(stranger).await);
    let seen: Vec<Option<i64>> = e
        .q(redis::cmd("HMGET")
            .arg(e.k.seen())
            .arg(queued_u.to_string())
            .arg(stranger.to_string()))
        .await;
    assert_eq!(seen, vec![Some(T0 + 3_000), None]);
    e.cleanup().await;
}
