//! Stock accounting: the Redis → PostgreSQL sync, `reconcile` drift reports, and rebuilding
//! Redis from PostgreSQL after the drop's Redis data is lost, without overselling.

use crate::helpers::*;
use redis::AsyncCommands;
use serde_json::json;
use vq_core::config::Payment;

#[tokio::test]
async fn reconcile_reports_drift_and_the_sync_copies_stock_to_postgres() {
    let app = spawn_app().await;
    let drop = app
        .create_drop(json!({ "stock": 10, "per_user_limit": 2 }))
        .await;
    let buyers: Vec<Shopper> = (0..3).map(|_| app.shopper()).collect();
    let mut tokens = Vec::new();
    for s in &buyers {
        tokens.push(app.buy(drop, s, 2).await);
    }
    let mut r = app.redis.clone();
    let rec = vq_api::stock::reconcile(&app.db, &mut r, &app.keys, drop)
        .await
        .unwrap();
    assert!(rec.ok, "in-flight reservations are accounted for: {rec:?}");
    assert_eq!(
        (rec.in_flight, rec.redis_reserved, rec.redis_remaining),
        (6, 6, 4)
    );
    app.flush_orders().await;
    let rec = vq_api::stock::reconcile(&app.db, &mut r, &app.keys, drop)
        .await
        .unwrap();
    assert_eq!((rec.ok, rec.in_flight, rec.pg_reserved), (true, 0, 6));

    let mut sched = app.scheduler(Payment::default());
    sched.tick().await.unwrap();
    let synced: Option<i32> =
        sqlx::query_scalar("SELECT remaining_synced FROM drops WHERE id = $1")
            .bind(drop.get())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(synced, Some(4));

    let _: () = r.incr(app.keys.drop(drop).stock(), 1).await.unwrap();
    let rec = vq_api::stock::reconcile(&app.db, &mut r, &app.keys, drop)
        .await
        .unwrap();
    assert_eq!(
        (rec.ok, rec.drift),
        (false, 1),
        "a unit that came from nowhere is drift"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn redis_is_rebuilt_from_postgres_after_data_loss_without_overselling() {
    let app = spawn_app().await;
    let drop = app
        .create_drop(json!({ "stock": 10, "per_user_limit": 2 }))
        .await;
    let buyers: Vec<Shopper> = (0..4).map(|_| app.shopper()).collect();
    let mut tokens = Vec::new();
    for s in &buyers {
        tokens.push(app.buy(drop, s, 2).await);
    }
    app.flush_orders().await;
    let cancelled = app.order_of(&buyers[0], &tokens[0]).await;
    let (st, _) = app
        .call(
            "POST",
            &format!("/v1/orders/{cancelled}/cancel"),
            Some(&buyers[0].token),
            None,
        )
        .await;
    assert_eq!(st, 200);
    let failed = app.order_of(&buyers[1], &tokens[1]).await;
    // Declined, but its restock is not applied to Redis before the loss.
    sqlx::query("UPDATE orders SET status = 'PAYMENT_FAILED' WHERE id = $1")
        .bind(failed)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO restocks (order_id, drop_id, user_id, token, quantity, reason, created_at) \
                 SELECT id, drop_id, user_id, token, quantity, 'PAYMENT_FAILED', now() FROM orders WHERE id = $1")
        .bind(failed)
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(app.remaining(drop).await, 4);

    // Redis loses everything of this test.
    let mut r = app.redis.clone();
    delete_prefix(&mut r, app.keys.prefix()).await;
    let stock = vq_api::stock::rebuild(&app.db, &mut r, &app.keys, drop)
        .await
        .unwrap();
    assert_eq!(
        stock, 4,
        "10 - 2 pending (b, c, d: 6) = 4; the failed 2 come back when applied"
    );
    let rec = vq_api::stock::reconcile(&app.db, &mut r, &app.keys, drop)
        .await
        .unwrap();
    assert!(rec.ok, "{rec:?}");
    let mut sched = app.scheduler(Payment::default());
    assert_eq!(sched.tick().await.unwrap().restocked, 1);
    assert_eq!(app.remaining(drop).await, 6);
    let (st, _) = app
        .call(
            "POST",
            &format!("/v1/orders/{cancelled}/cancel"),
            Some(&buyers[0].token),
            None,
        )
        .await;
    assert_eq!(st, 409);
    let mut again = app.redis.clone();
    vitaqueue::orders::restock::apply_pending(
        &app.db,
        &mut again,
        &vq_core::Scripts::default(),
        &app.keys,
        None,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        app.remaining(drop).await,
        6,
        "the cancel applied before the loss is not applied again"
    );

    // Per-account limits survived: c already holds 2 (the limit) and cannot buy more.
    let (st, b) = app.join(drop, &buyers[2]).await;
    assert_eq!((st, b["code"].as_str()), (409, Some("limit_reached")));
    // Selling on stops exactly at the drop's size.
    let mut sold_after = 0;
    for _ in 0..8 {
        let s = app.shopper();
        app.join(drop, &s).await;
        app.admitter().tick_drop(drop).await.unwrap();
        let (_, q) = app.place(drop, &s).await;
        if let Some(t) = q["token"].as_str() {
            if app.purchase(drop, &s, t, 1).await.0 == 201 {
                sold_after += 1;
            }
        }
    }
    assert_eq!(sold_after, 6);
    app.flush_orders().await;
    let taken: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(quantity), 0)::bigint FROM orders WHERE drop_id = $1 AND status IN ('PENDING_PAYMENT','PAID')",
    )
    .bind(drop.get())
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(taken, 10, "never more than the drop had");
    let rec = vq_api::stock::reconcile(&app.db, &mut r, &app.keys, drop)
        .await
        .unwrap();
    assert!(rec.ok && rec.redis_remaining == 0, "{rec:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn manager_actions_after_redis_loss_answer_needs_rebuild_and_never_recreate_stock() {
    let app = spawn_app().await;
    let drop = app.create_drop(json!({ "stock": 5 })).await;
    let buyer = app.shopper();
    app.buy(drop, &buyer, 1).await;
    app.flush_orders().await;
    let mut r = app.redis.clone();
    delete_prefix(&mut r, app.keys.prefix()).await;

    let m = app.manager();
    let admin = format!("/v1/admin/drops/{drop}");
    let patch = json!({ "admission_rate": 7 });
    for (method, path, body) in [
        ("PATCH", admin.clone(), Some(patch.clone())),
        ("POST", format!("{admin}/pause"), None),
        ("POST", format!("{admin}/close"), None),
    ] {
        let (st, b) = app.call(method, &path, Some(&m), body).await;
        assert_eq!(
            (st, b["code"].as_str()),
            (503, Some("needs_rebuild")),
            "{path}"
        );
    }
    let stock: Option<i64> = r.get(app.keys.drop(drop).stock()).await.unwrap();
    assert_eq!(stock, None, "no manager action recreated the stock");
    let (state, rate): (String, i32) =
        sqlx::query_as("SELECT state, admission_rate FROM drops WHERE id = $1")
            .bind(drop.get())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((state.as_str(), rate), ("active", 1000), "nothing changed");

    let rebuilt = vq_api::stock::rebuild(&app.db, &mut r, &app.keys, drop)
        .await
        .unwrap();
    assert_eq!(rebuilt, 4, "5 minus the one unit reserved");
    let unpaid: i64 = r.hlen(app.keys.drop(drop).unpaid()).await.unwrap();
    assert_eq!(unpaid, 1, "the unpaid reservation may still come back");
    let (st, _) = app
        .call("POST", &format!("{admin}/pause"), Some(&m), None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(app.remaining(drop).await, 4);
    app.cleanup().await;
}
