//! What admit.lua and join.lua record for the fairness report: each admission as "user#n"
//! in admission order (up to the cap) beside join.lua's own record of the score each join
//! got, the most admissions in any 1000 ms, and how many buyers were still queued when the
//! drop turned final sold_out.

use crate::env::*;
use vq_core::scripts::AdmitStatus;

async fn admission_order(e: &mut Env) -> Vec<String> {
    let key = e.k.admorder();
    e.q(redis::cmd("LRANGE").arg(key).arg(0).arg(-1)).await
}

/// join.lua's record of each listed admission's join (None: no record).
async fn join_scores(e: &mut Env, order: &[String]) -> Vec<Option<f64>> {
    let key = e.k.joins();
    e.q(redis::cmd("HMGET").arg(key).arg(order)).await
}

#[tokio::test]
async fn admissions_name_the_join_they_came_from_and_stop_at_the_cap() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(6);
    e.join_all(&us).await;
    assert_eq!(e.admit(4).await.admitted.len(), 4);
    let order = admission_order(&mut e).await;
    let want: Vec<String> = us[..4].iter().map(|u| format!("{u}#1")).collect();
    assert_eq!(order, want, "each buyer's first join");
    // After the start a score is 1 + the join number, as join.lua recorded it.
    let scores = join_scores(&mut e, &order).await;
    assert_eq!(scores, vec![Some(2.0), Some(3.0), Some(4.0), Some(5.0)]);

    // Past the first million admissions nothing more is listed (the report says capped).
    let _: () = e
        .q(redis::cmd("SET").arg(e.k.admitted()).arg(1_000_000))
        .await;
    e.clock.advance(1_000);
    assert_eq!(e.admit(4).await.admitted.len(), 2);
    assert_eq!(admission_order(&mut e).await.len(), 4);
    e.cleanup().await;
}

#[tokio::test]
async fn a_buyer_who_queues_again_is_admitted_under_the_new_join() {
    let mut e = Env::with(DropCfg::default()).await;
    let (a, b) = (user(), user());
    e.join_all(&[a, b]).await;
    assert_eq!(admitted_users(&e.admit(1).await), ids(&[a]));
    // a's turn runs out unused; a queues again, behind b.
    e.clock.advance(TTL + 1);
    let _ = e.join(a).await;
    assert_eq!(admitted_users(&e.admit(5).await), ids(&[b, a]));
    let order = admission_order(&mut e).await;
    assert_eq!(
        order,
        vec![format!("{a}#1"), format!("{b}#1"), format!("{a}#2")]
    );
    let scores = join_scores(&mut e, &order).await;
    assert_eq!(
        scores,
        vec![Some(2.0), Some(3.0), Some(4.0)],
        "in join order"
    );
    e.cleanup().await;
}

#[tokio::test]
async fn join_records_stop_at_the_cap_but_joins_do_not() {
    let mut e = Env::with(DropCfg::default()).await;
    // Each join adds two fields (the count and the score) while under the cap.
    e.set_cfg("joins_cap", 4).await;
    let us = users(3);
    e.join_all(&us).await;
    assert_eq!(e.queue_len().await, 3, "every buyer queued");
    let fields: Vec<String> = e.q(redis::cmd("HKEYS").arg(e.k.joins())).await;
    assert!(fields.contains(&format!("{}#1", us[0])), "{fields:?}");
    assert!(fields.contains(&format!("{}#1", us[1])), "{fields:?}");
    assert!(
        !fields.contains(&format!("{}#1", us[2])),
        "past the cap: {fields:?}"
    );
    assert!(fields.contains(&us[2].to_string()), "the count is kept");
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
