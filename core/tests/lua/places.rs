//! places.lua: the batched re-read of connected buyers' places. Every branch: plain queued
//! buyers get their rank (the same join.lua's peek answers) and are marked present; each
//! case join.lua owns (a token, a stale or missing last-seen, no place, stock 0, closed, no
//! drop) answers "ask again" and changes nothing.

use crate::env::*;
use vq_core::scripts::{JoinOutcome, Places};

impl Env {
    async fn places(&mut self, us: &[vq_core::domain::UserId]) -> Places {
        self.scripts
            .places(&mut self.conn, &self.k, us, &self.clock)
            .await
            .expect("places.lua")
    }

    async fn seen(&mut self, u: vq_core::domain::UserId) -> Option<i64> {
        self.q(redis::cmd("HGET").arg(self.k.seen()).arg(u.to_string()))
            .await
    }
}

#[tokio::test]
async fn queued_buyers_get_the_rank_a_peek_gives_and_are_marked_present() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(4);
    e.join_all(&us).await;
    let tok = e.admit(1).await.admitted.remove(0).token;
    assert!(!tok.is_empty());
    e.clock.set(T0 + 5_000);
    let asked = [us[3], us[1], us[0], us[2]];
    let p = e.places(&asked).await;
    assert_eq!(p.admitted_total, 1);
    assert!(!p.prequeue);
    assert_eq!(
        p.ranks,
        vec![Some(2), Some(0), None, Some(1)],
        "us[0] holds a token"
    );
    for (u, r) in asked.iter().zip(&p.ranks) {
        if let Some(rank) = r {
            assert_eq!(e.seen(*u).await, Some(T0 + 5_000), "marked present");
            assert_eq!(e.peek(*u).await, queued(*rank, 1, false), "same as a peek");
        }
    }
    e.cleanup().await;
}

#[tokio::test]
async fn before_the_start_the_batch_says_prequeue() {
    let mut e = Env::with(DropCfg::default()).await;
    e.clock.set(T0 - 1_000);
    let us = users(2);
    for u in &us {
        assert!(matches!(
            e.join(*u).await,
            JoinOutcome::Queued { prequeue: true, .. }
        ));
    }
    let p = e.places(&us).await;
    assert!(p.prequeue);
    assert!(p.ranks.iter().all(Option::is_some));
    e.cleanup().await;
}

#[tokio::test]
async fn a_stale_or_missing_last_seen_or_no_place_asks_again_and_changes_nothing() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(3);
    e.join_all(&us[..2]).await;
    let _: i64 = e
        .q(redis::cmd("HDEL").arg(e.k.seen()).arg(us[1].to_string()))
        .await;
    e.clock.set(T0 + 60_001);
    let p = e.places(&us).await;
    assert_eq!(
        p.ranks,
        vec![None, None, None],
        "stale, missing, never joined"
    );
    assert_eq!(
        e.seen(us[0]).await,
        Some(T0),
        "a stale buyer is not refreshed"
    );
    assert_eq!(
        e.queue_len().await,
        2,
        "nobody removed: join.lua's peek does that"
    );
    e.cleanup().await;
}

#[tokio::test]
async fn sold_out_closed_or_missing_drops_ask_again_for_everyone() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(2);
    e.join_all(&us).await;
    e.set_stock(0).await;
    assert_eq!(e.places(&us).await.ranks, vec![None, None], "stock 0");
    e.set_stock(5).await;
    e.set_cfg("state", "closed").await;
    assert_eq!(e.places(&us).await.ranks, vec![None, None], "closed");
    let _: i64 = e.q(redis::cmd("DEL").arg(e.k.cfg())).await;
    assert_eq!(e.places(&us).await.ranks, vec![None, None], "no cfg");
    let _: i64 = e.q(redis::cmd("DEL").arg(e.k.stock())).await;
    e.set_cfg("state", "active").await;
    assert_eq!(e.places(&us).await.ranks, vec![None, None], "no stock key");
    assert_eq!(
        e.places(&[]).await.ranks,
        Vec::<Option<u64>>::new(),
        "nobody asked"
    );
    e.cleanup().await;
}
