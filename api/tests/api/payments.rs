//! Payments outside the database transaction (CHARGING, the provider asked with the order id
//! as idempotency key, then PAID or PAYMENT_FAILED), crash recovery, prices fixed at
//! reservation, refunds, and the per-account pay limit.

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use vitaqueue::orders::payment::{PaymentProvider, PaymentResult, SimulatedProvider};
use vitaqueue::orders::{OrderId, Status};
use vq_core::config::{Limit, Payment};
use vq_core::Clock;

const DAY: i64 = 86_400_000;
const OFF: Limit = Limit {
    per_minute: 0,
    burst: 0,
};

fn provider(app: &TestApp) -> SimulatedProvider {
    SimulatedProvider::from_config(&Payment::default(), app.redis.clone(), app.keys.prefix())
}

async fn pay(app: &TestApp, s: &Shopper, id: i64, method: &str) -> (u16, Value) {
    let body = json!({ "payment_method": method });
    let path = format!("/v1/orders/{id}/pay");
    app.call("POST", &path, Some(&s.token), Some(body)).await
}

async fn order(app: &TestApp, s: &Shopper, id: i64) -> Value {
    let (st, b) = app
        .call("GET", &format!("/v1/orders/{id}"), Some(&s.token), None)
        .await;
    assert_eq!(st, 200, "{b}");
    b
}

async fn bought(app: &TestApp, drop: vq_core::domain::DropId, qty: i64) -> (Shopper, i64) {
    let s = app.shopper();
    let token = app.buy(drop, &s, qty).await;
    app.flush_orders().await;
    let id = app.order_of(&s, &token).await;
    (s, id)
}

async fn unpaid_open(app: &TestApp, drop: vq_core::domain::DropId) -> i64 {
    redis::AsyncCommands::hlen(&mut app.redis.clone(), app.keys.drop(drop).unpaid())
        .await
        .unwrap()
}

#[tokio::test]
async fn forty_concurrent_pays_charge_once_while_other_requests_stay_fast() {
    let app = spawn_app_tuned(Opts::default(), |s| {
        s.payment.latency_ms = 1500;
        s.limits.pay_account = OFF;
    })
    .await;
    let drop = app.create_drop(json!({ "stock": 5 })).await;
    let (s, id) = bought(&app, drop, 1).await;
    let pays = futures::future::join_all((0..40).map(|_| pay(&app, &s, id, "pm_card_ok")));
    let gets = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let one = || async {
            let t = Instant::now();
            let (st, _) = app.call("GET", "/v1/drops", None, None).await;
            assert_eq!(st, 200);
            t.elapsed()
        };
        futures::future::join_all((0..20).map(|_| one())).await
    };
    let (results, mut lat) = tokio::join!(pays, gets);
    lat.sort();
    let p99 = lat[lat.len() * 99 / 100 - usize::from(lat.len() * 99 % 100 == 0)];
    assert!(
        p99 < Duration::from_millis(300),
        "GET /v1/drops p99 {p99:?} during pays"
    );
    let paid: Vec<_> = results.iter().filter(|(st, _)| *st == 200).collect();
    assert_eq!(paid.len(), 1, "{results:?}");
    assert_eq!(paid[0].1["status"], "PAID");
    for (st, b) in &results {
        let busy = *st == 409 && b["code"] == "payment_in_progress" && b["state"] == "CHARGING";
        let done = *st == 409 && b["code"] == "invalid_transition" && b["state"] == "PAID";
        assert!(*st == 200 || busy || done, "{st} {b}");
    }
    let p = provider(&app);
    assert_eq!(p.charge_calls(OrderId(id)).await.unwrap(), 1, "one charge");
    assert_eq!(unpaid_open(&app, drop).await, 0, "paid: settled in Redis");
    app.cleanup().await;
}

#[tokio::test]
async fn the_scheduler_resolves_charges_a_crash_left_with_the_same_key() {
    let clock = Clock::manual(chrono::Utc::now().timestamp_millis());
    let app = spawn_app_with(Opts {
        clock: clock.clone(),
        ..Opts::default()
    })
    .await;
    let drop = app.create_drop(json!({ "stock": 5 })).await;
    let (a, ia) = bought(&app, drop, 1).await;
    let (b, ib) = bought(&app, drop, 1).await;
    let (c, ic) = bought(&app, drop, 1).await;
    let p = provider(&app);
    // The test clock's now (the scheduler's bound): the wall clock ran ahead by the set-up.
    let at = chrono::DateTime::from_timestamp_millis(clock.now_ms()).unwrap();
    let begin = |id: i64, method: &'static str| {
        vitaqueue::orders::pay::begin_charge(&app.db, OrderId(id), None, method, at)
    };
    // a: the api crashed after the provider charged; b: before it asked; c: declined.
    let charging = begin(ia, "pm_card_ok").await.unwrap();
    assert_eq!(charging.status, Status::Charging);
    let first = p
        .charge(OrderId(ia), charging.amount_cents, "pm_card_ok")
        .await;
    begin(ib, "pm_card_ok").await.unwrap();
    begin(ic, "pm_card_declined").await.unwrap();
    let unknown = PaymentResult::Unknown {
        reason: "timeout".into(),
    };
    let still = vitaqueue::orders::pay::finalise(&app.db, OrderId(ib), unknown, at).await;
    assert_eq!(
        still.unwrap().status,
        Status::Charging,
        "no answer: left for recovery"
    );
    let (st, r) = pay(&app, &a, ia, "pm_card_ok").await;
    assert_eq!((st, r["code"].as_str()), (409, Some("payment_in_progress")));
    let (st, r) = app
        .call(
            "POST",
            &format!("/v1/orders/{ia}/cancel"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!((st, r["state"].as_str()), (409, Some("CHARGING")));
    let mut conn = app.redis.clone();
    let rec = vq_api::stock::reconcile(&app.db, &mut conn, &app.keys, drop)
        .await
        .unwrap();
    assert!(rec.ok, "CHARGING units count as reserved: {rec:?}");

    let mut sched = app.scheduler(Payment::default());
    clock.advance(60_000);
    assert_eq!(
        sched.tick().await.unwrap().recovered,
        0,
        "not before the bound"
    );
    assert_eq!(order(&app, &a, ia).await["status"], "CHARGING");
    clock.advance(61_000);
    let r = sched.tick().await.unwrap();
    assert_eq!((r.recovered, r.restocked), (3, 1));
    let ref_a: Option<String> = sqlx::query_scalar("SELECT payment_ref FROM orders WHERE id = $1")
        .bind(ia)
        .fetch_one(&app.db)
        .await
        .unwrap();
    match first {
        PaymentResult::Approved { reference } => {
            assert_eq!(ref_a, Some(reference), "the first charge's answer")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.charge_calls(OrderId(ia)).await.unwrap(), 2, "asked twice");
    assert_eq!(order(&app, &a, ia).await["status"], "PAID");
    assert_eq!(order(&app, &b, ib).await["status"], "PAID");
    assert_eq!(
        p.charge_calls(OrderId(ib)).await.unwrap(),
        1,
        "charged once"
    );
    let failed = order(&app, &c, ic).await;
    assert_eq!(failed["status"], "PAYMENT_FAILED");
    assert_eq!(failed["failure_reason"], "card_declined");
    assert_eq!(
        app.remaining(drop).await,
        3,
        "the declined unit is back once"
    );
    assert_eq!(unpaid_open(&app, drop).await, 0, "paid ones settled");
    assert_eq!(sched.tick().await.unwrap().recovered, 0);
    app.cleanup().await;
}

#[tokio::test]
async fn the_price_is_fixed_at_reservation() {
    let app = spawn_app().await;
    let drop = app
        .create_drop(json!({ "stock": 5, "per_user_limit": 2, "price_cents": 12900 }))
        .await;
    let (s, id) = bought(&app, drop, 2).await;
    let (st, b) = app
        .call(
            "PATCH",
            &format!("/v1/admin/drops/{drop}"),
            Some(&app.manager()),
            Some(json!({ "price_cents": 99900 })),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, paid) = pay(&app, &s, id, "pm_card_ok").await;
    assert_eq!((st, paid["status"].as_str()), (200, Some("PAID")), "{paid}");
    assert_eq!(paid["amount_cents"], 25800, "the price when reserved");
    let record = provider(&app).charge_record(OrderId(id)).await.unwrap();
    assert!(
        record.unwrap().ends_with("|25800"),
        "charged the fixed amount"
    );
    let (later, il) = bought(&app, drop, 1).await;
    assert_eq!(order(&app, &later, il).await["amount_cents"], 99900);
    app.cleanup().await;
}

#[tokio::test]
async fn cancel_after_payment_and_returns_are_refunded_through_the_provider() {
    let clock = Clock::manual(chrono::Utc::now().timestamp_millis());
    let app = spawn_app_with(Opts {
        clock: clock.clone(),
        ..Opts::default()
    })
    .await;
    let drop = app.create_drop(json!({ "stock": 4 })).await;
    let (a, ia) = bought(&app, drop, 1).await;
    let (b, ib) = bought(&app, drop, 1).await;
    for (s, id) in [(&a, ia), (&b, ib)] {
        assert_eq!(pay(&app, s, id, "pm_card_ok").await.1["status"], "PAID");
    }
    assert_eq!(unpaid_open(&app, drop).await, 0);
    assert_eq!(app.remaining(drop).await, 2);

    let (st, c) = app
        .call(
            "POST",
            &format!("/v1/orders/{ia}/cancel"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!((st, c["status"].as_str()), (200, Some("CANCELLED")), "{c}");
    assert!(c["refund_ref"].as_str().unwrap().starts_with("re_"), "{c}");
    assert!(c["refunded_at"].is_string());
    assert_eq!(
        app.remaining(drop).await,
        3,
        "paid, settled, cancelled: back"
    );

    let mut sched = app.scheduler(Payment::default());
    clock.advance(DAY);
    sched.tick().await.unwrap();
    clock.advance(DAY);
    sched.tick().await.unwrap();
    let (st, _) = app
        .call(
            "POST",
            &format!("/v1/orders/{ib}/return"),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!(st, 200);
    clock.advance(DAY);
    let r = sched.tick().await.unwrap();
    assert_eq!((r.returned, r.refunded, r.restocked), (1, 1, 1));
    let ret = order(&app, &b, ib).await;
    assert_eq!(ret["status"], "RETURNED");
    assert!(ret["refund_ref"].is_string() && ret["refunded_at"].is_string());
    assert_eq!(sched.tick().await.unwrap().refunded, 0, "refunded once");
    assert_eq!(app.remaining(drop).await, 4);
    let mut conn = app.redis.clone();
    let rec = vq_api::stock::reconcile(&app.db, &mut conn, &app.keys, drop)
        .await
        .unwrap();
    assert!(rec.ok, "{rec:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn pay_has_a_per_account_limit() {
    let app = spawn_app_tuned(Opts::default(), |s| {
        s.limits.pay_account = Limit {
            per_minute: 1,
            burst: 2,
        };
    })
    .await;
    let s = app.shopper();
    for _ in 0..2 {
        assert_eq!(pay(&app, &s, 999_999, "pm_card_ok").await.0, 404);
    }
    let (st, b) = pay(&app, &s, 999_999, "pm_card_ok").await;
    assert_eq!((st, b["code"].as_str()), (429, Some("rate_limited")), "{b}");
    assert_eq!(
        pay(&app, &app.shopper(), 999_999, "pm_card_ok").await.0,
        404
    );
    app.cleanup().await;
}
