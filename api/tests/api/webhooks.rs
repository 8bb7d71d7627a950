//! Webhooks end to end against a real local receiver: events come from the outbox written
//! in the state changes' transactions, arrive signed, in order per order, through failures
//! and timeouts (deduplicated on their id); slow endpoints hold only their own slots.

use crate::helpers::receiver::{Answer, Receiver, Script};
use crate::helpers::*;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use vitaqueue::webhooks::signature;
use vq_core::config::Payment;

/// Delivery tuned for tests: receivers on loopback, short retries and timeouts.
pub fn fast_webhooks(s: &mut vq_core::Settings) {
    s.webhooks.allow_private = true;
    s.webhooks.retry_base_ms = Duration::from_millis(250);
    s.webhooks.retry_max = Duration::from_secs(2);
    s.webhooks.timeout = Duration::from_secs(1);
    s.webhooks.poll = Duration::from_millis(50);
}

pub async fn register(app: &TestApp, url: &str, events: Value) -> (String, String) {
    let body = json!({ "url": url, "events": events, "description": "warehouse" });
    let (st, b) = app
        .call(
            "POST",
            "/v1/admin/webhooks",
            Some(&app.manager()),
            Some(body),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let secret = b["secret"].as_str().unwrap().to_string();
    (b["id"].as_str().unwrap().to_string(), secret)
}

fn types_of(events: &[Value], key: &str, id: i64) -> Vec<String> {
    events
        .iter()
        .filter(|e| {
            e["data"][key].as_i64() == Some(id)
                && (key == "drop_id") == e["type"].as_str().unwrap().starts_with("drop.")
        })
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

async fn pay_and_cancel(app: &TestApp, s: &Shopper, id: i64, pay: bool, cancel: bool) {
    if pay {
        let body = json!({ "payment_method": "pm_card_ok" });
        let (st, b) = app
            .call(
                "POST",
                &format!("/v1/orders/{id}/pay"),
                Some(&s.token),
                Some(body),
            )
            .await;
        assert_eq!(st, 200, "{b}");
    }
    if cancel {
        let (st, b) = app
            .call(
                "POST",
                &format!("/v1/orders/{id}/cancel"),
                Some(&s.token),
                None,
            )
            .await;
        assert_eq!(st, 200, "{b}");
    }
}

#[tokio::test]
async fn events_arrive_signed_and_in_order_through_failures_and_timeouts() {
    let app = spawn_app_tuned(Opts::default(), |s| {
        fast_webhooks(s);
        s.orders.ship_after_s = 0;
        s.orders.deliver_after_s = 0;
    })
    .await;
    // Two failures, then one answer after the sender gave up (processed all the same, so
    // the retry is a duplicate), then every request accepted.
    let script: Script = Arc::new(|n| match n {
        0 | 1 => Answer::Status(500),
        2 => Answer::Stall(Duration::from_millis(1500)),
        _ => Answer::Status(204),
    });
    let rx = Receiver::start(script).await;
    let all: Vec<&str> = vitaqueue::webhooks::EventType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    let (id, secret) = register(&app, &rx.url, json!(all)).await;
    let deliverer = app.start_webhooks();

    let drop = app.create_drop(json!({ "stock": 3 })).await;
    let (a, b, c) = (app.shopper(), app.shopper(), app.shopper());
    let tokens = [
        app.buy(drop, &a, 1).await,
        app.buy(drop, &b, 1).await,
        app.buy(drop, &c, 1).await,
    ];
    app.flush_orders().await;
    let ids: Vec<i64> = futures::future::join_all(
        [&a, &b, &c]
            .iter()
            .zip(&tokens)
            .map(|(s, t)| app.order_of(s, t)),
    )
    .await;
    let mut sched = app.scheduler(Payment::default());
    sched.tick().await.unwrap(); // drop.live, drop.sold_out
    pay_and_cancel(&app, &a, ids[0], true, false).await;
    pay_and_cancel(&app, &b, ids[1], true, true).await; // refunded by the api
    pay_and_cancel(&app, &c, ids[2], false, true).await;
    sched.tick().await.unwrap(); // A ships, then arrives
    let m = app.manager();
    for step in ["pause", "resume", "close"] {
        let (st, body) = app
            .call(
                "POST",
                &format!("/v1/admin/drops/{drop}/{step}"),
                Some(&m),
                None,
            )
            .await;
        assert_eq!(st, 200, "{body}");
    }

    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 15, "one event per state change");
    let got = rx.wait_processed(15, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_after = rx.processed();
    assert_eq!(got_after.len(), 15, "no event beyond the outbox's");
    assert_eq!(got.len(), 15);
    let hits = rx.hits();
    assert!(
        hits.len() > 15,
        "the failures and the timeout were retried: {}",
        hits.len()
    );
    for h in &hits {
        let now = chrono::Utc::now().timestamp();
        signature::verify(&secret, &h.signature, &h.body, now, 300)
            .unwrap_or_else(|e| panic!("{e}: {}", h.signature));
        assert!(signature::verify("whsec_wrong", &h.signature, &h.body, now, 300).is_err());
    }
    let ord = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        types_of(&got, "order_id", ids[0]),
        ord(&[
            "order.reserved",
            "order.paid",
            "order.shipped",
            "order.delivered"
        ])
    );
    assert_eq!(
        types_of(&got, "order_id", ids[1]),
        ord(&[
            "order.reserved",
            "order.paid",
            "order.cancelled",
            "order.refunded"
        ])
    );
    assert_eq!(
        types_of(&got, "order_id", ids[2]),
        ord(&["order.reserved", "order.cancelled"])
    );
    assert_eq!(
        types_of(&got, "drop_id", drop.get()),
        ord(&[
            "drop.live",
            "drop.sold_out",
            "drop.paused",
            "drop.resumed",
            "drop.closed"
        ])
    );
    let first = &got[0];
    assert!(
        first["created_at"].is_string() && first["data"].is_object(),
        "{first}"
    );
    assert!(
        first["data"].get("customer").is_none(),
        "no personal data unless asked"
    );

    // The attempt log shows the failures, the timeout and the deliveries, with latency.
    let (st, log) = app
        .call(
            "GET",
            &format!("/v1/admin/webhooks/{id}/deliveries?limit=500"),
            Some(&m),
            None,
        )
        .await;
    assert_eq!(st, 200, "{log}");
    let log = log.as_array().unwrap().clone();
    assert!(
        log.iter()
            .filter(|a| a["status"] == 500 && a["outcome"] == "retrying")
            .count()
            >= 2
    );
    let timed_out = log
        .iter()
        .find(|a| a["status"].is_null())
        .expect("a timeout");
    assert!(
        timed_out["latency_ms"].as_i64().unwrap() >= 1000,
        "{timed_out}"
    );
    assert!(
        timed_out["error"].as_str().unwrap().contains("no answer"),
        "{timed_out}"
    );
    assert!(log.iter().filter(|a| a["outcome"] == "delivered").count() >= 15);

    // Rotation: both secrets sign for the overlap; a redelivery carries both.
    let (st, rot) = app
        .call(
            "POST",
            &format!("/v1/admin/webhooks/{id}/rotate"),
            Some(&m),
            None,
        )
        .await;
    assert_eq!(st, 200, "{rot}");
    let new_secret = rot["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    let event = got[0]["id"].as_str().unwrap();
    let before = hits.len();
    let path = format!("/v1/admin/webhooks/{id}/events/{event}/redeliver");
    let (st, body) = app.call("POST", &path, Some(&m), None).await;
    assert_eq!(st, 202, "{body}");
    let t0 = std::time::Instant::now();
    while rx.hits().len() == before {
        assert!(t0.elapsed() < Duration::from_secs(10), "no redelivery");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = rx.hits().last().unwrap().clone();
    let sent: Value = serde_json::from_slice(&again.body).unwrap();
    assert_eq!(sent["id"], event, "the same event id, for deduplication");
    assert_eq!(
        again.signature.matches("v1=").count(),
        2,
        "{}",
        again.signature
    );
    let now = chrono::Utc::now().timestamp();
    for s in [&secret, &new_secret] {
        signature::verify(s, &again.signature, &again.body, now, 300).unwrap();
    }
    let unknown = format!(
        "/v1/admin/webhooks/{id}/events/{}/redeliver",
        uuid::Uuid::new_v4()
    );
    let (st, body) = app.call("POST", &unknown, Some(&m), None).await;
    assert_eq!((st, body["code"].as_str()), (404, Some("event_not_found")));

    app.shutdown();
    tokio::time::timeout(Duration::from_secs(15), deliverer)
        .await
        .unwrap()
        .unwrap();
    app.cleanup().await;
}

#[tokio::test]
async fn a_slow_endpoint_holds_only_its_own_slots() {
    let app = spawn_app_tuned(Opts::default(), |s| {
        fast_webhooks(s);
        s.webhooks.timeout = Duration::from_secs(10);
        s.webhooks.max_in_flight = 3;
        s.webhooks.per_endpoint = 2;
    })
    .await;
    let slow = Receiver::start(Arc::new(|_| Answer::Stall(Duration::from_secs(4)))).await;
    let fast = Receiver::start(Arc::new(|_| Answer::Status(200))).await;
    register(&app, &slow.url, json!(["order.reserved"])).await;
    register(&app, &fast.url, json!(["order.reserved"])).await;
    let drop = app.create_drop(json!({ "stock": 6 })).await;
    for _ in 0..6 {
        let s = app.shopper();
        app.buy(drop, &s, 1).await;
    }
    app.flush_orders().await;
    let deliverer = app.start_webhooks();
    let t0 = std::time::Instant::now();
    fast.wait_processed(6, Duration::from_secs(3)).await;
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "the fast endpoint waited for the slow one"
    );
    assert!(
        slow.processed().len() <= 2,
        "the slow one is still on its first two"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        slow.peak.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "its two slots, no more"
    );
    slow.wait_processed(6, Duration::from_secs(20)).await;
    assert!(slow.peak.load(std::sync::atomic::Ordering::SeqCst) <= 2);
    app.shutdown();
    tokio::time::timeout(Duration::from_secs(15), deliverer)
        .await
        .unwrap()
        .unwrap();
    app.cleanup().await;
}

#[tokio::test]
async fn a_rolled_back_transition_leaves_no_event_and_no_subscriber_costs_nothing() {
    let app = spawn_app_tuned(Opts::default(), fast_webhooks).await;
    let drop = app.create_drop(json!({ "stock": 2 })).await;
    let s = app.shopper();
    let t = app.buy(drop, &s, 1).await;
    app.flush_orders().await;
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM webhook_events")
            .fetch_one(&app.db)
            .await
            .unwrap()
    };
    assert_eq!(count().await, 0, "nobody subscribed: nothing written");
    let rx = Receiver::start(Arc::new(|_| Answer::Status(200))).await;
    register(&app, &rx.url, json!(["order.cancelled", "order.paid"])).await;
    let id = vitaqueue::orders::OrderId(app.order_of(&s, &t).await);
    let mut tx = app.db.begin().await.unwrap();
    let o = vitaqueue::orders::lock(&mut tx, id, None).await.unwrap();
    let from = [vitaqueue::orders::Status::PendingPayment];
    let to = vitaqueue::orders::Status::Cancelled;
    vitaqueue::orders::apply(&mut tx, &o, &from, to, chrono::Utc::now(), None)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count().await, 0, "a rollback invents no event");
    vitaqueue::orders::cancel(&app.db, id, s.user.0, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(count().await, 1, "the committed cancel wrote one");
    app.cleanup().await;
}

#[tokio::test]
async fn an_endpoint_failing_too_long_is_disabled() {
    let app = spawn_app_tuned(Opts::default(), |s| {
        fast_webhooks(s);
        s.webhooks.disable_after = Duration::from_secs(1);
    })
    .await;
    let rx = Receiver::start(Arc::new(|_| Answer::Status(503))).await;
    let (id, _) = register(&app, &rx.url, json!(["drop.paused"])).await;
    let drop = app.create_drop(json!({})).await;
    let m = app.manager();
    app.call(
        "POST",
        &format!("/v1/admin/drops/{drop}/pause"),
        Some(&m),
        None,
    )
    .await;
    let deliverer = app.start_webhooks();
    let t0 = std::time::Instant::now();
    let ep = loop {
        let (_, ep) = app
            .call("GET", &format!("/v1/admin/webhooks/{id}"), Some(&m), None)
            .await;
        if ep["enabled"] == json!(false) {
            break ep;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "still enabled: {ep}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ep["disabled_reason"], "failing", "{ep}");
    let tries = rx.hits().len();
    assert!(tries >= 2, "{tries}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rx.hits().len(), tries, "no more tries once disabled");
    let (_, again) = app
        .call(
            "POST",
            &format!("/v1/admin/webhooks/{id}/enable"),
            Some(&m),
            None,
        )
        .await;
    assert_eq!(
        (again["enabled"].clone(), again["failing_since"].clone()),
        (json!(true), Value::Null)
    );
    app.shutdown();
    tokio::time::timeout(Duration::from_secs(15), deliverer)
        .await
        .unwrap()
        .unwrap();
    app.cleanup().await;
}
