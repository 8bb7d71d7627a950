//! Purchase over HTTP: single-use tokens bound to one account, every rejection reason,
//! expiry freeing the slot, and bad input changing nothing.

use crate::helpers::*;
use serde_json::{json, Value};
use vq_core::domain::DropId;
use vq_core::Clock;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn remaining(app: &TestApp, drop: DropId) -> i64 {
    let (_, d) = app
        .call("GET", &format!("/v1/drops/{drop}"), None, None)
        .await;
    d["remaining"].as_i64().unwrap()
}

#[tokio::test]
async fn tokens_are_single_use_bound_to_their_account_with_clear_reasons() {
    let app = spawn_app_with(Opts {
        clock: Clock::manual(now_ms()),
        ..Opts::default()
    })
    .await;
    let drop = app
        .create_drop(json!({ "stock": 3, "per_user_limit": 2 }))
        .await;
    let (a, b, c) = (app.shopper(), app.shopper(), app.shopper());
    for s in [&a, &b, &c] {
        let (st, body) = app.join(drop, s).await;
        assert_eq!((st, body["status"].as_str()), (200, Some("queued")));
    }
    let out = app.admitter().tick_drop(drop).await.unwrap();
    assert_eq!(out.admitted.len(), 3);
    let (ta, tb, tc) = (
        app.admitted_token(drop, &a).await,
        app.admitted_token(drop, &b).await,
        app.admitted_token(drop, &c).await,
    );

    let (st, body) = app.purchase(drop, &b, &ta, 1).await;
    assert_eq!((st, body["code"].as_str()), (403, Some("not_your_token")));
    let (st, body) = app.purchase(drop, &a, "forged.1", 1).await;
    assert_eq!((st, body["code"].as_str()), (403, Some("invalid_token")));
    assert_eq!(remaining(&app, drop).await, 3, "rejections change nothing");

    let (st, body) = app.purchase(drop, &a, &ta, 1).await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["remaining"].as_i64()),
        (Some("reserved"), Some(2))
    );
    let (st, again) = app.purchase(drop, &a, &ta, 1).await;
    assert_eq!(
        (st, &again),
        (201, &body),
        "a retry replays the same success"
    );
    let (st, body) = app.purchase(drop, &a, &ta, 2).await;
    assert_eq!((st, body["code"].as_str()), (409, Some("token_used")));

    let (st, body) = app.purchase(drop, &b, &tb, 3).await;
    assert_eq!(
        (st, body["code"].as_str(), body["allowance"].as_i64()),
        (409, Some("limit_reached"), Some(2))
    );
    let (st, body) = app.purchase(drop, &b, &tb, 2).await;
    assert_eq!(
        (st, body["remaining"].as_i64()),
        (201, Some(0)),
        "token kept after a too-big quantity"
    );
    let (st, body) = app.purchase(drop, &c, &tc, 1).await;
    assert_eq!((st, body["code"].as_str()), (409, Some("sold_out")));
    let (st, body) = app.purchase(drop, &c, &tc, 1).await;
    assert_eq!(
        (st, body["code"].as_str()),
        (409, Some("token_used")),
        "sold_out burned the token"
    );
    let (st, body) = app.join(drop, &app.shopper()).await;
    assert_eq!((st, body["code"].as_str()), (409, Some("sold_out")));
    app.cleanup().await;
}

#[tokio::test]
async fn bad_purchase_bodies_are_rejected_and_change_nothing() {
    let app = spawn_app().await;
    let drop = app
        .create_drop(json!({ "stock": 5, "per_user_limit": 5 }))
        .await;
    let s = app.shopper();
    app.join(drop, &s).await;
    app.admitter().tick_drop(drop).await.unwrap();
    let token = app.admitted_token(drop, &s).await;
    let path = format!("/v1/drops/{drop}/purchase");
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({ "token": token, "quantity": 0 }),
            422,
            "validation_failed",
        ),
        (
            json!({ "token": token, "quantity": 101 }),
            422,
            "validation_failed",
        ),
        (
            json!({ "token": token, "quantity": -1 }),
            422,
            "validation_failed",
        ),
        (
            json!({ "token": token, "quantity": "two" }),
            422,
            "invalid_body",
        ),
        (json!({ "quantity": 1 }), 422, "invalid_body"),
        (
            json!({ "token": "", "quantity": 1 }),
            422,
            "validation_failed",
        ),
        (
            json!({ "token": "x".repeat(500) }),
            422,
            "validation_failed",
        ),
        (
            json!({ "token": token, "extra": true }),
            422,
            "invalid_body",
        ),
    ];
    for (body, status, code) in cases {
        let (st, b) = app
            .call("POST", &path, Some(&s.token), Some(body.clone()))
            .await;
        assert_eq!((st, b["code"].as_str()), (status, Some(code)), "{body}");
        assert!(b["message"].is_string());
    }
    let res = app
        .http
        .post(app.url(&path))
        .bearer_auth(&s.token)
        .header("content-type", "application/json")
        .body("{\"token\":")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let (st, _) = app
        .call("POST", &path, None, Some(json!({ "token": token })))
        .await;
    assert_eq!(st, 401);
    assert_eq!(remaining(&app, drop).await, 5);
    let (st, b) = app.purchase(drop, &s, &token, 4).await;
    assert_eq!(
        (st, b["remaining"].as_i64()),
        (201, Some(1)),
        "the token survived all of it"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn expired_tokens_are_rejected_and_free_their_slot() {
    let clock = Clock::manual(now_ms());
    let app = spawn_app_with(Opts {
        clock: clock.clone(),
        ..Opts::default()
    })
    .await;
    let drop = app
        .create_drop(json!({ "stock": 10, "max_holders": 2, "token_ttl_s": 5 }))
        .await;
    let shoppers: Vec<Shopper> = (0..4).map(|_| app.shopper()).collect();
    for s in &shoppers {
        app.join(drop, s).await;
    }
    let mut adm = app.admitter();
    assert_eq!(adm.tick_drop(drop).await.unwrap().admitted.len(), 2);
    clock.advance(1000);
    let out = adm.tick_drop(drop).await.unwrap();
    assert_eq!(
        (out.admitted.len(), out.live_holders),
        (0, 2),
        "holder cap reached"
    );
    let first = app.admitted_token(drop, &shoppers[0]).await;

    clock.advance(4001);
    let (st, b) = app.purchase(drop, &shoppers[0], &first, 1).await;
    assert_eq!((st, b["code"].as_str()), (410, Some("token_expired")));
    let out = adm.tick_drop(drop).await.unwrap();
    assert_eq!(out.expired, 1, "the other stale token is swept by the tick");
    assert_eq!(out.admitted.len(), 2, "both slots were freed");
    let users: Vec<String> = out.admitted.iter().map(|a| a.user.clone()).collect();
    assert_eq!(
        users,
        vec![shoppers[2].user.to_string(), shoppers[3].user.to_string()]
    );

    let (st, b) = app.place(drop, &shoppers[0]).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (404, Some("not_in_queue")),
        "the turn is gone"
    );
    let (st, b) = app.join(drop, &shoppers[0]).await;
    assert_eq!(
        (st, b["status"].as_str(), b["position"].as_u64()),
        (200, Some("queued"), Some(1))
    );
    assert_eq!(remaining(&app, drop).await, 10);
    app.cleanup().await;
}

#[tokio::test]
async fn closing_a_drop_stops_purchases_and_joins() {
    let app = spawn_app().await;
    let drop = app
        .create_drop(json!({ "stock": 4, "per_user_limit": 10 }))
        .await;
    let s = app.shopper();
    app.join(drop, &s).await;
    app.admitter().tick_drop(drop).await.unwrap();
    let token = app.admitted_token(drop, &s).await;
    let (st, b) = app.purchase(drop, &s, &token, 5).await;
    assert_eq!(
        (st, b["code"].as_str(), b["remaining"].as_i64()),
        (409, Some("insufficient_stock"), Some(4))
    );
    app.call(
        "POST",
        &format!("/v1/admin/drops/{drop}/close"),
        Some(&app.manager()),
        None,
    )
    .await;
    let (st, b) = app.purchase(drop, &s, &token, 1).await;
    assert_eq!((st, b["code"].as_str()), (409, Some("drop_closed")));
    let (st, b) = app.join(drop, &app.shopper()).await;
    assert_eq!((st, b["code"].as_str()), (409, Some("drop_closed")));
    assert_eq!(remaining(&app, drop).await, 4);
    app.cleanup().await;
}

/// Every 201 names its order (deterministic from the token), so no client polls: a retry
/// after a lost reply gets the identical body, and the order has that id once written.
#[tokio::test]
async fn a_purchase_names_its_order_and_a_retry_gets_the_same_body() {
    let app = spawn_app().await;
    let drop = app
        .create_drop(json!({ "stock": 5, "per_user_limit": 2 }))
        .await;
    let (a, b) = (app.shopper(), app.shopper());
    for s in [&a, &b] {
        app.join(drop, s).await;
    }
    app.admitter().tick_drop(drop).await.unwrap();
    let (ta, tb) = (
        app.admitted_token(drop, &a).await,
        app.admitted_token(drop, &b).await,
    );
    let (st, first) = app.purchase(drop, &b, &tb, 2).await;
    assert_eq!(st, 201, "{first}");
    let (st, again) = app.purchase(drop, &b, &tb, 2).await;
    assert_eq!((st, &again), (201, &first), "identical replay");
    let id_b = first["order_id"].as_i64().expect("order_id");
    let (_, other) = app.purchase(drop, &a, &ta, 1).await;
    let id_a = other["order_id"].as_i64().expect("order_id");
    assert_ne!(id_a, id_b);
    assert_eq!(id_a >> 32, drop.get(), "the drop's id space");

    let w = app.run_worker(app.worker("W", 60_000, 100).await);
    app.wait_orders(drop, 2).await;
    w.abort();
    for (s, id, qty) in [(&b, id_b, 2), (&a, id_a, 1)] {
        let (st, o) = app
            .call("GET", &format!("/v1/orders/{id}"), Some(&s.token), None)
            .await;
        assert_eq!(st, 200, "{o}");
        assert_eq!(
            (o["id"].as_i64(), o["quantity"].as_i64()),
            (Some(id), Some(qty))
        );
    }
    app.cleanup().await;
}
