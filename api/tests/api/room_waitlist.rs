//! Sell-out, waitlist and restock in the room; leave detection with the grace; exactly one
//! `admitted` per token on every node; a buyer who left over HTTP is told on every socket.

use crate::helpers::*;
use crate::procs::api_node;
use redis::AsyncCommands;
use serde_json::{json, Value};
use std::time::Duration;
use vq_core::Clock;

/// Every message of `ws` in the next `ms`.
async fn drain(ws: &mut Ws, ms: u64) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    let mut all = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_json(ws, left.as_millis() as u64).await {
            Some(m) => all.push(m),
            None => return all,
        }
    }
}

/// The final `sold_out` (a waitlist one may come first).
async fn final_sold_out(ws: &mut Ws) -> Value {
    loop {
        let m = next_of(ws, "sold_out", 3000).await.expect("final sold_out");
        if m["final"] == true {
            return m;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_after_sell_out_goes_to_the_earliest_connected_waiter() {
    const BUYERS: usize = 300;
    const STOCK: usize = 100;
    let app = spawn_app_with(Opts {
        resync_ms: 300,
        // Presence refreshes (exact re-reads) every 300 ms; gone buyers lapse after 900 ms.
        configure: Some(Box::new(|s| s.ws.leave_grace_ms = 900)),
        ..Opts::default()
    })
    .await;
    let drop = app
        .create_drop(
            json!({ "stock": STOCK, "admission_rate": 1000, "max_holders": STOCK,
                             "per_user_limit": 1, "token_ttl_s": 120 }),
        )
        .await;
    let k = app.keys.drop(drop);
    let mut r = app.redis.clone();
    let grace: u64 = r.hget(k.cfg(), "leave_grace_ms").await.unwrap();
    assert_eq!(grace, 900, "the setting is written into the drop's cfg");
    let shoppers: Vec<Shopper> = (0..BUYERS).map(|_| app.shopper()).collect();
    let mut ws = Vec::new();
    for s in &shoppers {
        let mut w = app.ws(drop, s).await;
        next_of(&mut w, "position", 3000).await.expect("position");
        ws.push(Some(w));
    }
    let mut adm = app.admitter();
    assert_eq!(adm.tick_drop(drop).await.unwrap().admitted.len(), STOCK);
    let mut tokens = Vec::new();
    for (i, s) in shoppers.iter().enumerate().take(STOCK) {
        let m = next_of(ws[i].as_mut().unwrap(), "admitted", 3000)
            .await
            .unwrap();
        assert_eq!(m["seq"], i as u64 + 1, "{m}");
        let t = m["token"].as_str().unwrap().to_string();
        assert_eq!(app.purchase(drop, s, &t, 1).await.0, 201);
        tokens.push(t);
    }
    let out = adm.tick_drop(drop).await.unwrap();
    assert_eq!(out.status, "sold_out_pending");
    for w in ws.iter_mut().skip(STOCK) {
        let m = next_of(w.as_mut().unwrap(), "sold_out", 3000)
            .await
            .unwrap();
        assert_eq!(
            (m["final"].as_bool(), m["waitlist"].as_bool()),
            (Some(false), Some(true))
        );
    }
    // The first two waiters go away; the others stay (their sockets keep them present).
    for i in [STOCK, STOCK + 1] {
        let mut w = ws[i].take().unwrap();
        let _ = w.close(None).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    app.flush_orders().await;
    let order = app.order_of(&shoppers[0], &tokens[0]).await;
    let path = format!("/v1/orders/{order}/cancel");
    let (st, b) = app
        .call("POST", &path, Some(&shoppers[0].token), None)
        .await;
    assert_eq!(st, 200, "{b}");
    let out = adm.tick_drop(drop).await.unwrap();
    assert_eq!(out.admitted.len(), 1, "one unit back, one token: {out:?}");
    assert_eq!(out.admitted[0].user, shoppers[STOCK + 2].user.to_string());
    let gone = [
        shoppers[STOCK].user.to_string(),
        shoppers[STOCK + 1].user.to_string(),
    ];
    assert_eq!(
        out.left,
        gone.to_vec(),
        "gone past the grace: removed, not admitted"
    );
    let left: u64 = r.get(k.left()).await.unwrap();
    assert_eq!(left, 2, "counted");

    let winner = ws[STOCK + 2].as_mut().unwrap();
    let m = next_of(winner, "admitted", 3000).await.unwrap();
    assert_eq!(m["seq"], STOCK as u64 + 1);
    let token = m["token"].as_str().unwrap().to_string();
    for i in [STOCK + 3, STOCK + 50, BUYERS - 1] {
        let msgs = drain(ws[i].as_mut().unwrap(), 700).await;
        assert!(
            msgs.iter()
                .any(|m| m["type"] == "phase" && m["phase"] == "live"),
            "{msgs:?}"
        );
        assert!(!msgs.iter().any(|m| m["type"] == "admitted"), "{msgs:?}");
    }
    assert_eq!(
        app.purchase(drop, &shoppers[STOCK + 2], &token, 1).await.0,
        201
    );

    // Every reservation paid: nothing can come back, every waiting socket is told and closed.
    let open: Vec<String> = r.hkeys(k.unpaid()).await.unwrap();
    for t in &open {
        let s = vq_core::Scripts::default();
        s.settle_reservation(&mut r, &k, t).await.unwrap();
    }
    assert_eq!(adm.tick_drop(drop).await.unwrap().status, "sold_out");
    for w in ws.iter_mut().skip(STOCK + 3) {
        let w = w.as_mut().unwrap();
        final_sold_out(w).await;
        assert_eq!(close_code(w, 2000).await, Some(1000));
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_reconnect_inside_the_grace_keeps_the_place_and_after_it_the_buyer_is_gone() {
    let t0 = chrono::Utc::now().timestamp_millis();
    let clock = Clock::manual(t0);
    let app = spawn_app_with(Opts {
        clock: clock.clone(),
        resync_ms: 600_000,
        configure: Some(Box::new(|s| s.ws.leave_grace_ms = 60_000)),
        ..Opts::default()
    })
    .await;
    let drop = app.create_drop(json!({ "max_holders": 1 })).await;
    let (a, b) = (app.shopper(), app.shopper());
    let mut wa = app.ws(drop, &a).await;
    next_of(&mut wa, "position", 2000).await.unwrap();
    assert_eq!(app.join(drop, &b).await.0, 200);
    let _ = wa.close(None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    clock.advance(50_000);
    let mut wa = app.ws(drop, &a).await;
    let m = next_of(&mut wa, "position", 2000).await.unwrap();
    assert_eq!(m["position"], 1, "back inside the grace: same place");
    assert_eq!(
        app.place(drop, &b).await.0,
        200,
        "b's client polls (marks presence)"
    );
    let _ = wa.close(None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    for step in [40_000, 25_000] {
        clock.advance(step);
        assert_eq!(app.place(drop, &b).await.0, 200, "b stays present");
    }
    let out = app.admitter().tick_drop(drop).await.unwrap();
    assert_eq!(out.left, vec![a.user.to_string()]);
    assert_eq!(
        out.admitted[0].user,
        b.user.to_string(),
        "a is never admitted"
    );
    let (st, body) = app.place(drop, &a).await;
    assert_eq!(
        (st, body["code"].as_str()),
        (404, Some("not_in_queue")),
        "{body}"
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_admitted_with_seq_per_socket_on_two_nodes_and_http_leave_closes_every_socket() {
    let app = spawn_app().await;
    let (_node, port_b) = api_node(&app.settings, "api-b", &[]).await;
    let drop = app.create_drop(json!({ "max_holders": 1 })).await;
    let (a, b) = (app.shopper(), app.shopper());
    let mut a1 = app.ws(drop, &a).await;
    let mut a2 = app.ws_port(port_b, drop, &a).await;
    let mut b1 = app.ws(drop, &b).await;
    let mut b2 = app.ws_port(port_b, drop, &b).await;
    for w in [&mut a1, &mut a2, &mut b1, &mut b2] {
        next_of(w, "position", 3000).await.unwrap();
    }
    app.admitter().tick_drop(drop).await.unwrap();
    for w in [&mut a1, &mut a2] {
        let msgs = drain(w, 800).await;
        let adm: Vec<&Value> = msgs.iter().filter(|m| m["type"] == "admitted").collect();
        assert_eq!(adm.len(), 1, "exactly one admitted per socket: {msgs:?}");
        assert_eq!(adm[0]["seq"], 1);
    }
    // A reconnect hears its token again, once, with the same seq (from Redis).
    let mut a3 = app.ws_port(port_b, drop, &a).await;
    let msgs = drain(&mut a3, 800).await;
    let adm: Vec<&Value> = msgs.iter().filter(|m| m["type"] == "admitted").collect();
    assert_eq!((adm.len(), &adm[0]["seq"]), (1, &json!(1)), "{msgs:?}");

    let path = format!("/v1/drops/{drop}/queue");
    assert_eq!(app.call("DELETE", &path, Some(&b.token), None).await.0, 204);
    for w in [&mut b1, &mut b2] {
        assert!(
            next_of(w, "left", 3000).await.is_some(),
            "told on every node"
        );
        assert_eq!(close_code(w, 2000).await, Some(1000));
    }
    let seen: Option<String> = app
        .redis
        .clone()
        .hget(app.keys.drop(drop).seen(), b.user.to_string())
        .await
        .unwrap();
    assert_eq!(seen, None, "the last-seen entry goes with the place");
    app.cleanup().await;
}
