//! The restock outbox applier with a drop whose Redis state is lost: that drop's restocks
//! stay pending (and are counted), every other drop's restocks still go through.

use crate::helpers::*;
use redis::AsyncCommands;
use serde_json::json;
use vitaqueue::orders::OrderId;
use vq_core::config::Payment;

#[tokio::test]
async fn a_drop_needing_a_rebuild_does_not_hold_back_other_drops_restocks() {
    let app = spawn_app().await;
    let lost = app.create_drop(json!({ "stock": 3 })).await;
    let fine = app.create_drop(json!({ "stock": 3 })).await;
    let (a, b, c) = (app.shopper(), app.shopper(), app.shopper());
    let ta = app.buy(lost, &a, 1).await;
    let tb = app.buy(fine, &b, 1).await;
    let tc = app.buy(fine, &c, 1).await;
    app.flush_orders().await;
    let mut r = app.redis.clone();
    let stock_key = app.keys.drop(lost).stock();
    let () = r.del(&stock_key).await.unwrap(); // Redis lost this drop's stock
    let at = chrono::Utc::now();
    for (s, t) in [(&a, &ta), (&b, &tb), (&c, &tc)] {
        let id = OrderId(app.order_of(s, t).await);
        vitaqueue::orders::cancel(&app.db, id, s.user.0, at)
            .await
            .unwrap();
    }

    let mut sched = app.scheduler(Payment::default());
    let rep = sched.tick().await.expect("the tick survives the lost drop");
    assert_eq!((rep.restocked, rep.restocks_deferred), (2, 1), "{rep:?}");
    assert_eq!(app.remaining(fine).await, 3, "the other drop got its units");
    let pending: Vec<i64> =
        sqlx::query_scalar("SELECT drop_id FROM restocks WHERE applied_at IS NULL")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(pending, vec![lost.get()], "left pending in the outbox");
    let exists: bool = r.exists(&stock_key).await.unwrap();
    assert!(!exists, "the applier never recreates the stock key");

    // After the rebuild (here: the stock key as rebuild sets it) the restock goes through.
    let () = r.set(&stock_key, 2).await.unwrap();
    let rep = sched.tick().await.unwrap();
    assert_eq!((rep.restocked, rep.restocks_deferred), (1, 0));
    assert_eq!(app.remaining(lost).await, 3);
    app.cleanup().await;
}
