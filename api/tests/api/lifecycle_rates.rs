//! Order lifecycle, continued: return windows and bad payment input, declines, cancels and
//! expiry each restocking once, and the simulated buyers' rates.

use crate::lifecycle::{app_with_clock, order_call, DAY};
use serde_json::json;
use vq_core::config::Payment;

#[tokio::test]
async fn returns_close_after_the_window_and_bad_payment_input_changes_nothing() {
    let (app, clock) = app_with_clock().await;
    let drop = app.create_drop(json!({ "stock": 5 })).await;
    let s = app.shopper();
    let token = app.buy(drop, &s, 1).await;
    app.flush_orders().await;
    let id = app.order_of(&s, &token).await;
    for (body, status, code) in [
        (
            json!({ "payment_method": "4242" }),
            422,
            "validation_failed",
        ),
        (json!({}), 422, "invalid_body"),
        (
            json!({ "payment_method": "pm_card_ok", "cvv": 1 }),
            422,
            "invalid_body",
        ),
    ] {
        let (st, b) = order_call(&app, &s, id, "pay", Some(body)).await;
        assert_eq!((st, b["code"].as_str()), (status, Some(code)));
    }
    let (st, b) = order_call(
        &app,
        &s,
        999_999,
        "pay",
        Some(json!({ "payment_method": "pm_card_ok" })),
    )
    .await;
    assert_eq!((st, b["code"].as_str()), (404, Some("order_not_found")));
    let (st, _) = app
        .call("GET", "/v1/orders/abc", Some(&s.token), None)
        .await;
    assert_eq!(st, 404);
    let (st, b) = app
        .call("GET", "/v1/orders?limit=0", Some(&s.token), None)
        .await;
    assert_eq!((st, b["code"].as_str()), (422, Some("validation_failed")));
    let (_, b) = app
        .call("GET", &format!("/v1/orders/{id}"), Some(&s.token), None)
        .await;
    assert_eq!(b["status"], "PENDING_PAYMENT", "nothing changed");

    order_call(
        &app,
        &s,
        id,
        "pay",
        Some(json!({ "payment_method": "pm_card_ok" })),
    )
    .await;
    let mut sched = app.scheduler(Payment::default());
    for _ in 0..2 {
        clock.advance(DAY);
        sched.tick().await.unwrap();
    }
    clock.advance(14 * DAY + 1000);
    let (st, b) = order_call(&app, &s, id, "return", None).await;
    assert_eq!(
        (st, b["code"].as_str(), b["state"].as_str()),
        (409, Some("return_window_closed"), Some("DELIVERED"))
    );
    assert!(b["closed_at"].is_string());
    app.cleanup().await;
}

#[tokio::test]
async fn declined_payments_cancels_and_expiry_each_restock_once() {
    let (app, clock) = app_with_clock().await;
    let drop = app
        .create_drop(json!({ "stock": 10, "per_user_limit": 3 }))
        .await;
    let (a, b, c) = (app.shopper(), app.shopper(), app.shopper());
    let (ta, tb, tc) = (
        app.buy(drop, &a, 2).await,
        app.buy(drop, &b, 3).await,
        app.buy(drop, &c, 1).await,
    );
    app.flush_orders().await;
    let (ia, ib, ic) = (
        app.order_of(&a, &ta).await,
        app.order_of(&b, &tb).await,
        app.order_of(&c, &tc).await,
    );
    assert_eq!(app.remaining(drop).await, 4);

    let (st, r) = order_call(
        &app,
        &a,
        ia,
        "pay",
        Some(json!({ "payment_method": "pm_card_declined" })),
    )
    .await;
    assert_eq!(
        (st, r["status"].as_str(), r["failure_reason"].as_str()),
        (200, Some("PAYMENT_FAILED"), Some("card_declined"))
    );
    assert_eq!(app.remaining(drop).await, 6, "declined: 2 back at once");

    // 20 concurrent cancels of one order: one wins, the rest see the new state.
    let calls = (0..20).map(|_| order_call(&app, &b, ib, "cancel", None));
    let results = futures::future::join_all(calls).await;
    let ok = results.iter().filter(|(st, _)| *st == 200).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(results
        .iter()
        .all(|(st, b)| *st == 200 || (*st == 409 && b["state"] == "CANCELLED")));
    assert_eq!(app.remaining(drop).await, 9, "cancelled: 3 back, once");

    // Unpaid past the payment window: two schedulers race to expire it.
    clock.advance(600_000 + 1);
    let (mut s1, mut s2) = (
        app.scheduler(Payment::default()),
        app.scheduler(Payment::default()),
    );
    let (r1, r2) = tokio::join!(s1.tick(), s2.tick());
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    assert_eq!(r1.expired + r2.expired, 1);
    assert_eq!(app.remaining(drop).await, 10);
    let (_, o) = app
        .call("GET", &format!("/v1/orders/{ic}"), Some(&c.token), None)
        .await;
    assert_eq!(o["status"], "EXPIRED");

    // Retried appliers and ticks change nothing more.
    let mut r = app.redis.clone();
    let again = vitaqueue::orders::restock::apply_pending(
        &app.db,
        &mut r,
        &vq_core::Scripts::default(),
        &app.keys,
        None,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(again, 0);
    s1.tick().await.unwrap();
    assert_eq!(app.remaining(drop).await, 10);
    let restocks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM restocks")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(restocks, 3);
    let buyers: std::collections::HashMap<String, i64> =
        redis::AsyncCommands::hgetall(&mut r, app.keys.drop(drop).buyers())
            .await
            .unwrap();
    assert!(
        buyers.is_empty(),
        "per-account counts were given back too: {buyers:?}"
    );
    let rec = vq_api::stock::reconcile(&app.db, &mut r, &app.keys, drop)
        .await
        .unwrap();
    assert!(rec.ok, "{rec:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn simulated_buyers_pay_abandon_or_fail_by_the_configured_rates() {
    let (app, clock) = app_with_clock().await;
    let drop = app.create_drop(json!({ "stock": 60 })).await;
    for _ in 0..60 {
        app.buy(drop, &app.shopper(), 1).await;
    }
    app.flush_orders().await;
    let pay = Payment {
        autopay: true,
        abandon_rate: 0.25,
        failure_rate: 0.25,
        latency_ms: 1,
    };
    let mut sched = app.scheduler(pay);
    let r = sched.tick().await.unwrap();
    assert_eq!(r.autopaid + r.abandoned, 60);
    assert!(
        r.abandoned > 3 && r.abandoned < 30,
        "about a quarter abandon: {r:?}"
    );
    let count = |status: &'static str| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM orders WHERE status = $1")
                .bind(status)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    let (paid, failed) = (count("PAID").await, count("PAYMENT_FAILED").await);
    assert_eq!(paid + failed, r.autopaid as i64);
    assert!(failed > 2 && paid > failed, "paid {paid}, failed {failed}");
    clock.advance(600_001);
    let r2 = sched.tick().await.unwrap();
    assert_eq!(r2.expired, r.abandoned, "abandoned orders expire");
    assert_eq!(
        app.remaining(drop).await,
        60 - paid,
        "everything not paid is back"
    );
    let mut conn = app.redis.clone();
    let rec = vq_api::stock::reconcile(&app.db, &mut conn, &app.keys, drop)
        .await
        .unwrap();
    assert!(rec.ok && rec.pg_sold == paid, "{rec:?}");
    app.cleanup().await;
}
