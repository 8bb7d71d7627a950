//! What the pages need from the api: orders with their product name and payment deadline,
//! the console's capped history of samples (manager only, recorded once per interval
//! fleet-wide), and a queue peek that tells why a join would be refused.

use crate::helpers::*;
use redis::AsyncCommands;
use serde_json::json;
use vq_api::drops::{history, store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_carry_the_product_name_and_the_payment_deadline_while_unpaid() {
    let app = spawn_app().await;
    let drop = app
        .create_drop(json!({ "product_name": "Deadline Boot", "price_cents": 4500 }))
        .await;
    let s = app.shopper();
    let token = app.buy(drop, &s, 1).await;
    app.flush_orders().await;
    let id = app.order_of(&s, &token).await;

    let (st, list) = app.call("GET", "/v1/orders", Some(&s.token), None).await;
    assert_eq!(st, 200, "{list}");
    let o = &list["items"][0];
    assert_eq!(o["product_name"], "Deadline Boot");
    assert_eq!(o["amount_cents"], 4500);
    let reserved =
        chrono::DateTime::parse_from_rfc3339(o["reserved_at"].as_str().unwrap()).unwrap();
    let pay_by = chrono::DateTime::parse_from_rfc3339(o["pay_by"].as_str().unwrap()).unwrap();
    assert_eq!(
        (pay_by - reserved).num_seconds(),
        app.settings.orders.payment_ttl_s as i64
    );

    let pay = json!({ "payment_method": "pm_card_ok" });
    let (st, paid) = app
        .call(
            "POST",
            &format!("/v1/orders/{id}/pay"),
            Some(&s.token),
            Some(pay),
        )
        .await;
    assert_eq!((st, paid["status"].as_str()), (200, Some("PAID")), "{paid}");
    let (st, one) = app
        .call("GET", &format!("/v1/orders/{id}"), Some(&s.token), None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(one["product_name"], "Deadline Boot");
    assert!(one["pay_by"].is_null(), "no deadline once paid: {one}");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_history_is_sampled_capped_and_for_managers_only() {
    let app = spawn_app().await;
    let drop = app.create_drop(json!({ "stock": 7 })).await;
    let path = format!("/v1/admin/drops/{drop}/history");
    let (st, _) = app
        .call("GET", &path, Some(&app.shopper().token), None)
        .await;
    assert_eq!(st, 403, "shoppers see no history");

    // The api's sampler records the open drop about once a second.
    let mut samples = Vec::new();
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (st, body) = app.call("GET", &path, Some(&app.manager()), None).await;
        assert_eq!(st, 200, "{body}");
        samples = body["samples"].as_array().unwrap().clone();
        if samples.len() >= 2 {
            break;
        }
    }
    assert!(samples.len() >= 2, "{samples:?}");
    assert_eq!(samples[0]["remaining"], 7);
    assert!(samples[1]["t_ms"].as_i64() > samples[0]["t_ms"].as_i64());

    // One sample per interval fleet-wide: a second call inside the interval records nothing.
    let row = store::load(&app.state, drop).await.unwrap();
    let k = app.keys.drop(drop);
    let mut conn = app.redis.clone();
    let _: () = conn.del(k.history_gate()).await.unwrap();
    assert!(history::record(&app.state, &row, 1000).await.unwrap());
    assert!(!history::record(&app.state, &row, 1000).await.unwrap());

    // Bounded: however long the drop runs, the list keeps the newest CAP samples.
    let filler: Vec<String> = (0..history::CAP + 10).map(|_| "{}".to_string()).collect();
    let _: () = conn.rpush(k.history(), filler).await.unwrap();
    let _: () = conn.del(k.history_gate()).await.unwrap();
    assert!(history::record(&app.state, &row, 1000).await.unwrap());
    let len: isize = conn.llen(k.history()).await.unwrap();
    assert_eq!(len, history::CAP);
    let (_, body) = app.call("GET", &path, Some(&app.manager()), None).await;
    assert_eq!(
        body["samples"].as_array().unwrap().len(),
        1,
        "bad entries skipped"
    );

    let (st, body) = app
        .call(
            "GET",
            "/v1/admin/drops/999999/history",
            Some(&app.manager()),
            None,
        )
        .await;
    assert_eq!((st, body["code"].as_str()), (404, Some("drop_not_found")));
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_peek_says_already_bought_and_not_open_without_joining() {
    let app = spawn_app().await;
    let drop = app.create_drop(json!({ "stock": 5 })).await;
    let s = app.shopper();
    app.buy(drop, &s, 1).await;
    let (st, b) = app.place(drop, &s).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (409, Some("limit_reached")),
        "{b}"
    );

    let starts = chrono::Utc::now() + chrono::Duration::hours(2);
    let later = app
        .create_drop(json!({ "starts_at": starts.to_rfc3339(), "prequeue_s": 600 }))
        .await;
    let (st, b) = app.place(later, &s).await;
    assert_eq!((st, b["code"].as_str()), (409, Some("not_open")), "{b}");
    assert!(b["opens_at"].is_string(), "{b}");
    let (st, b) = app.place(drop, &app.shopper()).await;
    assert_eq!((st, b["code"].as_str()), (404, Some("not_in_queue")), "{b}");
    app.cleanup().await;
}
