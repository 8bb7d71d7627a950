//! What admit.lua records for the fairness report: every admitted buyer's queue score in
//! admission order (up to the cap), the most admissions in any 1000 ms, and how many
//! buyers were still queued when the drop turned final sold_out.

use crate::env::*;
use vq_core::scripts::AdmitStatus;

async fn admitted_scores(e: &mut Env) -> Vec<f64> {
    let key = e.k.admscores();
    e.q(redis::cmd("LRANGE").arg(key).arg(0).arg(-1)).await
}

#[tokio::test]
async fn admission_scores_follow_the_queue_and_stop_at_the_cap() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(6);
    e.join_all(&us).await;
    assert_eq!(e.admit(4).await.admitted.len(), 4);
    // After the start a score is 1 + the join number.
    assert_eq!(admitted_scores(&mut e).await, vec![2.0, 3.0, 4.0, 5.0]);

    // Past the first million admissions nothing more is listed (the report says capped).
    let _: () = e
        .q(redis::cmd("SET").arg(e.k.admitted()).arg(1_000_000))
        .await;
    e.clock.advance(1_000);
    assert_eq!(e.admit(4).await.admitted.len(), 2);
    assert_eq!(admitted_scores(&mut e).await.len(), 4);
    e.cleanup().await;
}

#[tokio::test]
async fn the_peak_is_the_most_admissions_in_any_second() {
    let mut e = Env::with(DropCfg {
        rate: 40,
        ..Default::default()
    })
    .await;
    e.join_all(&users(100)).await;
    assert_eq!(e.admit(100).await.admitted.len(), 10, "burst rate/4");
    e.clock.advance(500);
    assert_eq!(
        e.admit(100).await.admitted.len(),
        10,
        "refilled by 20, burst 10"
    );
    assert_eq!(e.cfg_field("adm_peak_1s").await.as_deref(), Some("20"));
    // A second later the window holds only the newest batch: the peak stays 20.
    e.clock.advance(1_000);
    assert_eq!(e.admit(5).await.admitted.len(), 5);
    assert_eq!(e.cfg_field("adm_peak_1s").await.as_deref(), Some("20"));
    e.cleanup().await;
}

#[tokio::test]
async fn buyers_queued_at_the_final_sell_out_are_counted_once() {
    let mut e = Env::with(DropCfg {
        stock: 1,
        ..Default::default()
    })
    .await;
    let us = users(5);
    e.join_all(&us).await;
    let out = e.admit(1).await;
    let t = out.admitted[0].token.clone();
    assert_eq!(e.purchase(&t, us[0], 1).await, reserved(0, 1));
    assert!(e.settle(&t).await, "paid: nothing can come back");
    let out = e.admit(10).await;
    assert_eq!(out.status, AdmitStatus::SoldOut);
    assert_eq!(e.cfg_field("sold_out_told").await.as_deref(), Some("4"));
    // Later ticks (a buyer gone meanwhile) do not rewrite it.
    let _: i64 = e
        .q(redis::cmd("ZREM").arg(e.k.queue()).arg(us[4].to_string()))
        .await;
    assert_eq!(e.admit(10).await.status, AdmitStatus::SoldOut);
    assert_eq!(e.cfg_field("sold_out_told").await.as_deref(), Some("4"));
    e.cleanup().await;
}
