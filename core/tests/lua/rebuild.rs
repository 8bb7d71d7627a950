//! Lost Redis state is never papered over: with the cfg but no stock key every script says
//! needs_rebuild and changes nothing; without a cfg they say no_drop; none creates the stock.

use crate::env::*;
use serde_json::Value as Json;
use vq_core::scripts::RestockOutcome;
use vq_core::scripts::{AdmitStatus, JoinOutcome, JoinReject, ManageOutcome, PurchaseReject};

#[tokio::test]
async fn every_script_answers_needs_rebuild_without_the_stock_key_and_changes_nothing() {
    let mut e = Env::with(DropCfg::default()).await;
    let (holder, buyer) = (user(), user());
    let token = e.admit_one(holder).await;
    let bought = e.admit_one(buyer).await;
    assert_eq!(e.purchase(&bought, buyer, 1).await, reserved(99, 1));
    let waiting = users(2);
    e.join_all(&waiting).await;
    let _: i64 = e.q(redis::cmd("DEL").arg(e.k.stock())).await;
    let mut ps = e.subscribe().await;

    let lost = JoinOutcome::Rejected(JoinReject::NeedsRebuild);
    assert_eq!(e.join(user()).await, lost);
    assert_eq!(e.join(waiting[0]).await, lost);
    assert_eq!(e.peek(waiting[1]).await, lost);
    assert_eq!(e.queue_len().await, 2);

    let out = e.admit(10).await;
    assert_eq!(out.status, AdmitStatus::NeedsRebuild);
    assert!(out.admitted.is_empty());
    assert_eq!(e.queue_len().await, 2, "nobody popped");

    assert_eq!(
        e.purchase(&token, holder, 1).await,
        rejected(PurchaseReject::NeedsRebuild)
    );
    assert_eq!(e.token_state(&token).await, Some(format!("L|{holder}")));
    assert_eq!(
        e.purchase(&bought, buyer, 1).await,
        rejected(PurchaseReject::NeedsRebuild),
        "not even a replay answers before the state is back"
    );

    assert_eq!(
        e.restock(7, buyer, 1, &bought).await,
        RestockOutcome::NeedsRebuild
    );
    assert_eq!(
        e.len("SCARD", e.k.restocked()).await,
        0,
        "not marked applied"
    );
    assert_eq!(e.bought(buyer).await, Some(1));

    assert_eq!(
        e.manage(&[("state", "paused")]).await,
        ManageOutcome::NeedsRebuild
    );
    assert_eq!(e.cfg_field("state").await.as_deref(), Some("active"));

    assert!(!e.exists(e.k.stock()).await, "no script created the stock");
    assert_eq!(
        e.events(&mut ps).await,
        Vec::<Json>::new(),
        "nothing published"
    );
    e.cleanup().await;
}

#[tokio::test]
async fn without_the_cfg_every_script_answers_no_drop_and_creates_nothing() {
    let mut e = Env::bare().await;
    let u = user();
    assert_eq!(e.join(u).await, JoinOutcome::Rejected(JoinReject::NoDrop));
    assert_eq!(e.admit(10).await.status, AdmitStatus::NoDrop);
    assert_eq!(
        e.purchase("x.1", u, 1).await,
        rejected(PurchaseReject::NoDrop)
    );
    assert_eq!(e.restock(1, u, 1, "x.1").await, RestockOutcome::NoDrop);
    assert_eq!(
        e.manage(&[("state", "paused")]).await,
        ManageOutcome::NoDrop
    );
    assert!(!e.touch(u).await);
    for key in e.k.all() {
        assert!(!e.exists(key.clone()).await, "{key} was created");
    }

    // A stock key without its cfg is half a drop: the manager's change is refused.
    e.set_stock(5).await;
    assert_eq!(
        e.manage(&[("state", "paused")]).await,
        ManageOutcome::NeedsRebuild
    );
    assert!(!e.exists(e.k.cfg()).await);
    e.cleanup().await;
}

#[tokio::test]
async fn manage_writes_the_fields_of_a_whole_drop_and_leaves_the_stock_alone() {
    let mut e = Env::with(DropCfg::default()).await;
    assert_eq!(
        e.manage(&[("state", "paused"), ("rate", "7")]).await,
        ManageOutcome::Applied
    );
    assert_eq!(e.cfg_field("state").await.as_deref(), Some("paused"));
    assert_eq!(e.cfg_field("rate").await.as_deref(), Some("7"));
    assert_eq!(e.cfg_field("limit").await.as_deref(), Some("2"));
    assert_eq!(e.stock().await, 100);
    e.cleanup().await;
}

#[tokio::test]
async fn restock_wrapper_refuses_lost_state_so_the_outbox_keeps_it() {
    let mut e = Env::with(DropCfg::default()).await;
    let _: i64 = e.q(redis::cmd("DEL").arg(e.k.stock())).await;
    let r = vq_core::scripts::Restock {
        order_id: 1,
        user: user().0,
        quantity: 1,
        token: "t.1".into(),
    };
    let err = e
        .scripts
        .restock(&mut e.conn, &e.k, &r)
        .await
        .expect_err("lost state is an error");
    assert!(err.to_string().contains("needs_rebuild"), "{err}");
    assert!(!e.exists(e.k.stock()).await);
    e.cleanup().await;
}
