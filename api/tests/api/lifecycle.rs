//! Order lifecycle: payment, D+1 shipping, D+2 delivery, cancel before shipping, returns in
//! the window, expiry of unpaid reservations, and exactly-once restocks under races.

use crate::helpers::*;
use serde_json::{json, Value};
use vq_core::config::Payment;
use vq_core::Clock;

pub(crate) const DAY: i64 = 86_400_000;

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(crate) async fn app_with_clock() -> (TestApp, Clock) {
    let clock = Clock::manual(now_ms());
    (
        spawn_app_with(Opts {
            clock: clock.clone(),
            ..Opts::default()
        })
        .await,
        clock,
    )
}

pub(crate) async fn order_call(
    app: &TestApp,
    s: &Shopper,
    id: i64,
    action: &str,
    body: Option<Value>,
) -> (u16, Value) {
    app.call(
        "POST",
        &format!("/v1/orders/{id}/{action}"),
        Some(&s.token),
        body,
    )
    .await
}

#[tokio::test]
async fn an_order_is_paid_shipped_delivered_returned_and_restocked_on_schedule() {
    let (app, clock) = app_with_clock().await;
    let drop = app.create_drop(json!({ "stock": 5 })).await;
    let s = app.shopper();
    let token = app.buy(drop, &s, 1).await;
    app.flush_orders().await;
    let id = app.order_of(&s, &token).await;

    let (st, list) = app.call("GET", "/v1/orders", Some(&s.token), None).await;
    assert_eq!((st, list["items"][0]["id"].as_i64()), (200, Some(id)));
    assert_eq!(list["items"][0]["status"], "PENDING_PAYMENT");
    let other = app.shopper();
    let (st, b) = app
        .call("GET", &format!("/v1/orders/{id}"), Some(&other.token), None)
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (404, Some("order_not_found")),
        "owner only"
    );
    let (_, b) = app
        .call("GET", "/v1/orders", Some(&other.token), None)
        .await;
    assert_eq!(b["items"], json!([]));

    let (st, b) = order_call(
        &app,
        &s,
        id,
        "pay",
        Some(json!({ "payment_method": "pm_card_ok" })),
    )
    .await;
    assert_eq!((st, b["status"].as_str()), (200, Some("PAID")), "{b}");
    let (st, b) = order_call(
        &app,
        &s,
        id,
        "pay",
        Some(json!({ "payment_method": "pm_card_ok" })),
    )
    .await;
    assert_eq!(
        (st, b["code"].as_str(), b["state"].as_str()),
        (409, Some("invalid_transition"), Some("PAID"))
    );
    let (st, b) = order_call(&app, &s, id, "return", None).await;
    assert_eq!(
        (st, b["state"].as_str()),
        (409, Some("PAID")),
        "no return before delivery"
    );

    let mut sched = app.scheduler(Payment::default());
    clock.advance(DAY - 1000);
    assert_eq!(sched.tick().await.unwrap().shipped, 0, "not before D+1");
    clock.advance(1000);
    assert_eq!(sched.tick().await.unwrap().shipped, 1);
    let (st, b) = order_call(&app, &s, id, "cancel", None).await;
    assert_eq!(
        (st, b["state"].as_str()),
        (409, Some("SHIPPING")),
        "no cancel once shipped"
    );
    clock.advance(DAY);
    assert_eq!(sched.tick().await.unwrap().delivered, 1);
    let (_, b) = app
        .call("GET", &format!("/v1/orders/{id}"), Some(&s.token), None)
        .await;
    assert_eq!(b["status"], "DELIVERED");
    assert!(
        b["paid_at"].is_string() && b["shipped_at"].is_string() && b["delivered_at"].is_string()
    );

    assert_eq!(app.remaining(drop).await, 4);
    let (st, b) = order_call(&app, &s, id, "return", None).await;
    assert_eq!((st, b["status"].as_str()), (200, Some("RETURN_REQUESTED")));
    clock.advance(DAY);
    let r = sched.tick().await.unwrap();
    assert_eq!((r.returned, r.restocked), (1, 1));
    assert_eq!(
        app.remaining(drop).await,
        5,
        "the returned unit is back on sale"
    );
    assert_eq!(sched.tick().await.unwrap().restocked, 0, "once");
    app.cleanup().await;
}
