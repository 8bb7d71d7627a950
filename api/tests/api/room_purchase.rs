//! Purchase over the room socket (`{"type": "purchase", ...}`): the same script, reasons,
//! idempotency and rate limits as `POST /v1/drops/{id}/purchase`, answered as `purchased`
//! or `purchase_rejected` on the socket the buyer already holds.

use crate::helpers::*;
use serde_json::{json, Value};
use vq_core::config::Limit;
use vq_core::domain::DropId;

/// Opens a socket per shopper, admits them all and returns each socket with its token.
async fn admitted(app: &TestApp, drop: DropId, shoppers: &[Shopper]) -> Vec<(Ws, String)> {
    let mut socks = Vec::new();
    for s in shoppers {
        let mut w = app.ws(drop, s).await;
        next_of(&mut w, "position", 2000).await.expect("position");
        socks.push(w);
    }
    app.admitter().tick_drop(drop).await.unwrap();
    let mut out = Vec::new();
    for mut w in socks {
        let m = next_of(&mut w, "admitted", 3000).await.expect("admitted");
        let token = m["token"].as_str().unwrap().to_string();
        out.push((w, token));
    }
    out
}

/// Sends a purchase and returns the answer (either kind), without its `type`.
async fn buy(ws: &mut Ws, body: Value) -> Value {
    send_text(ws, &body.to_string()).await;
    loop {
        let m = next_json(ws, 3000)
            .await
            .expect("an answer to the purchase");
        if m["type"] == "purchased" || m["type"] == "purchase_rejected" {
            return m;
        }
    }
}

fn purchase(token: &str, qty: i64) -> Value {
    json!({ "type": "purchase", "token": token, "quantity": qty })
}

#[tokio::test]
async fn a_socket_purchase_answers_what_http_answers_and_replays_idempotently() {
    let app = spawn_app().await;
    let drop = app
        .create_drop(json!({ "stock": 3, "per_user_limit": 2, "max_holders": 3 }))
        .await;
    let shoppers: Vec<Shopper> = (0..3).map(|_| app.shopper()).collect();
    let mut socks = admitted(&app, drop, &shoppers).await;
    let (ta, tb) = (socks[0].1.clone(), socks[1].1.clone());

    let m = buy(&mut socks[1].0, purchase(&ta, 1)).await;
    assert_eq!(
        (
            m["type"].as_str(),
            m["http_status"].as_u64(),
            m["code"].as_str()
        ),
        (Some("purchase_rejected"), Some(403), Some("not_your_token"))
    );
    let mut req = purchase(&ta, 1);
    req["request_id"] = json!("r-1");
    let m = buy(&mut socks[0].0, req.clone()).await;
    assert_eq!(m["type"], "purchased", "{m}");
    assert_eq!(m["request_id"], "r-1");
    assert_eq!(
        (m["status"].as_str(), m["remaining"].as_i64()),
        (Some("reserved"), Some(2))
    );
    assert!(m["order_id"].as_i64().is_some(), "{m}");

    // The token is the idempotency key on both transports: a retry replays the receipt.
    assert_eq!(buy(&mut socks[0].0, req).await, m, "socket retry replays");
    let (st, http) = app.purchase(drop, &shoppers[0], &ta, 1).await;
    let mut wire = m.as_object().unwrap().clone();
    wire.remove("type");
    wire.remove("request_id");
    assert_eq!(
        (st, http),
        (201, Value::Object(wire)),
        "HTTP replays the same body"
    );
    let m = buy(&mut socks[0].0, purchase(&ta, 2)).await;
    assert_eq!(
        (m["http_status"].as_u64(), m["code"].as_str()),
        (Some(409), Some("token_used"))
    );

    let m = buy(&mut socks[1].0, purchase(&tb, 3)).await;
    assert_eq!(
        (m["code"].as_str(), m["allowance"].as_i64()),
        (Some("limit_reached"), Some(2)),
        "details are carried as over HTTP"
    );
    let m = buy(&mut socks[1].0, purchase(&tb, 2)).await;
    assert_eq!(
        (m["type"].as_str(), m["remaining"].as_i64()),
        (Some("purchased"), Some(0))
    );
    let tc = socks[2].1.clone();
    let m = buy(&mut socks[2].0, purchase(&tc, 1)).await;
    assert_eq!(
        (m["http_status"].as_u64(), m["code"].as_str()),
        (Some(409), Some("sold_out"))
    );

    app.flush_orders().await;
    assert_eq!(app.orders(drop).await, 2, "one order per reserved token");
    assert_eq!(app.remaining(drop).await, 0);
    app.cleanup().await;
}

#[tokio::test]
async fn bad_socket_purchases_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let drop = app.create_drop(json!({ "stock": 2 })).await;
    let s = app.shopper();
    let mut socks = admitted(&app, drop, std::slice::from_ref(&s)).await;
    let (ws, token) = &mut socks[0];

    let m = buy(ws, purchase(token, 0)).await;
    assert_eq!(
        (m["http_status"].as_u64(), m["code"].as_str()),
        (Some(422), Some("validation_failed"))
    );
    assert!(m["fields"]["quantity"].is_string(), "{m}");
    let m = buy(ws, purchase(&"x".repeat(129), 1)).await;
    assert_eq!(m["code"], "validation_failed");
    let m = buy(ws, purchase("forged.1", 1)).await;
    assert_eq!(
        (m["http_status"].as_u64(), m["code"].as_str()),
        (Some(403), Some("invalid_token"))
    );

    let mut long = purchase(token, 1);
    long["request_id"] = json!("r".repeat(65));
    send_text(ws, &long.to_string()).await;
    let m = next_of(ws, "error", 3000).await.expect("error");
    assert_eq!(m["code"], "bad_message");
    send_text(ws, r#"{"type":"purchase","quantity":1}"#).await;
    let m = next_of(ws, "error", 3000).await.expect("error");
    assert_eq!(m["code"], "bad_message", "a purchase without a token");

    assert_eq!(app.remaining(drop).await, 2, "nothing was sold");
    let m = buy(ws, purchase(token, 1)).await;
    assert_eq!(m["type"], "purchased", "the token still works: {m}");
    app.cleanup().await;
}

#[tokio::test]
async fn socket_purchases_draw_on_the_same_per_account_limit_as_http() {
    let app = spawn_app_tuned(Opts::default(), |s| {
        s.limits.purchase_account = Limit {
            per_minute: 1,
            burst: 2,
        };
    })
    .await;
    let drop = app.create_drop(json!({ "stock": 5 })).await;
    let s = app.shopper();
    let mut socks = admitted(&app, drop, std::slice::from_ref(&s)).await;
    let (ws, token) = &mut socks[0];
    let (st, _) = app.purchase(drop, &s, "forged.1", 1).await;
    assert_eq!(st, 403, "HTTP takes the first cell");
    let m = buy(ws, purchase("forged.2", 1)).await;
    assert_eq!(m["code"], "invalid_token", "the socket takes the second");
    let m = buy(ws, purchase(token, 1)).await;
    assert_eq!(
        (m["http_status"].as_u64(), m["code"].as_str()),
        (Some(429), Some("rate_limited"))
    );
    assert!(m["retry_after"].as_u64().unwrap() >= 1, "{m}");
    assert_eq!(
        app.remaining(drop).await,
        5,
        "a refused purchase changes nothing"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn an_admitted_socket_moves_to_the_checkout_lane_and_buys_over_its_connection() {
    let app = spawn_app().await;
    let drop = app.create_drop(json!({ "stock": 2 })).await;
    let s = app.shopper();
    let mut socks = admitted(&app, drop, std::slice::from_ref(&s)).await;
    let (ws, token) = &mut socks[0];

    let m = buy(ws, purchase(token, 1)).await;
    assert_eq!(m["type"], "purchased", "{m}");
    // The script call went over the lane's own connection, not the room's shared one.
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut app.redis.clone())
        .await
        .unwrap();
    let name = format!(
        "name={}",
        vq_api::room::checkout::client_name(app.keys.prefix())
    );
    let lane: Vec<&str> = clients
        .lines()
        .filter(|l| l.split(' ').any(|f| f == name))
        .collect();
    assert_eq!(lane.len(), 1, "one lane connection per api: {clients}");
    assert!(lane[0].contains(" cmd=evalsha "), "{}", lane[0]);

    // The socket goes on answering on the lane.
    send_text(ws, r#"{"type":"status"}"#).await;
    let m = next_of(ws, "status", 3000).await.expect("status");
    assert_eq!(m["place"], "admitted");
    let m = buy(ws, purchase(token, 1)).await;
    assert_eq!(m["type"], "purchased", "a retry replays on the lane: {m}");
    assert_eq!(app.remaining(drop).await, 1);
    app.cleanup().await;
}
