//! The waiting room over WebSocket: idempotent join, reconnect keeps the place, pushed
//! position/admitted/sold_out/closed messages, client messages, and O(1) broadcast cost.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn join_is_idempotent_and_reconnect_keeps_the_place() {
    let app = spawn_app().await;
    let drop = app.create_drop(json!({ "max_holders": 1 })).await;
    let shoppers: Vec<Shopper> = (0..3).map(|_| app.shopper()).collect();
    let mut sockets = Vec::new();
    for (i, s) in shoppers.iter().enumerate() {
        let mut ws = app.ws(drop, s).await;
        let m = next_of(&mut ws, "position", 2000).await.expect("position");
        assert_eq!(m["position"], i as u64 + 1);
        assert_eq!(m["ahead"], i as u64);
        assert!(m["eta_s"].is_number() && m["eta_hi_s"].is_number());
        assert!(m["units_left"].is_u64() && m["chance"].is_string());
        sockets.push(ws);
    }
    drop_socket(sockets.remove(1)).await;
    let mut again = app.ws(drop, &shoppers[1]).await;
    let m = next_of(&mut again, "position", 2000).await.unwrap();
    assert_eq!(m["position"], 2, "reconnecting keeps the place");
    let (_, b) = app.join(drop, &shoppers[1]).await;
    assert_eq!(b["position"], 2, "joining twice keeps the place");
    let mut fourth = app.ws(drop, &app.shopper()).await;
    assert_eq!(
        next_of(&mut fourth, "position", 2000).await.unwrap()["position"],
        4
    );
    let queue: u64 =
        redis::AsyncCommands::zcard(&mut app.redis.clone(), app.keys.drop(drop).queue())
            .await
            .unwrap();
    assert_eq!(queue, 4, "one place per account");
    app.cleanup().await;
}

async fn drop_socket(mut ws: Ws) {
    let _ = ws.close(None).await;
}

#[tokio::test]
async fn positions_advance_and_the_token_is_pushed_on_admission() {
    let app = spawn_app().await;
    let drop = app
        .create_drop(json!({ "max_holders": 1, "per_user_limit": 1, "stock": 5 }))
        .await;
    let shoppers: Vec<Shopper> = (0..3).map(|_| app.shopper()).collect();
    let mut ws = Vec::new();
    for s in &shoppers {
        let mut w = app.ws(drop, s).await;
        next_of(&mut w, "position", 2000).await.unwrap();
        ws.push(w);
    }
    let mut adm = app.admitter();
    assert_eq!(adm.tick_drop(drop).await.unwrap().admitted.len(), 1);
    let m = next_of(&mut ws[0], "admitted", 3000)
        .await
        .expect("admitted pushed");
    let token = m["token"].as_str().unwrap().to_string();
    assert!(m["expires_at"].is_string());
    assert_eq!(
        next_of(&mut ws[1], "position", 3000).await.unwrap()["position"],
        1
    );
    assert_eq!(
        next_of(&mut ws[2], "position", 3000).await.unwrap()["position"],
        2
    );

    let (st, b) = app.purchase(drop, &shoppers[0], &token, 1).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(
        adm.tick_drop(drop).await.unwrap().admitted.len(),
        1,
        "the used token freed the slot"
    );
    let m = next_of(&mut ws[1], "admitted", 3000).await.unwrap();
    assert_ne!(m["token"], token.as_str());
    assert_eq!(
        next_of(&mut ws[2], "position", 3000).await.unwrap()["position"],
        1
    );

    // A reconnecting admitted buyer gets the same token again.
    let mut back = app.ws(drop, &shoppers[1]).await;
    assert_eq!(
        next_of(&mut back, "admitted", 2000).await.unwrap()["token"],
        m["token"]
    );
    app.cleanup().await;
}

#[tokio::test]
async fn sold_out_and_closed_are_pushed_to_the_room() {
    let app = spawn_app().await;
    let drop = app
        .create_drop(json!({ "stock": 1, "max_holders": 1 }))
        .await;
    let (a, b) = (app.shopper(), app.shopper());
    let mut wa = app.ws(drop, &a).await;
    let mut wb = app.ws(drop, &b).await;
    next_of(&mut wb, "position", 2000).await.unwrap();
    app.admitter().tick_drop(drop).await.unwrap();
    let token = next_of(&mut wa, "admitted", 3000).await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.purchase(drop, &a, &token, 1).await.0, 201);
    // The unpaid reservation may still come back: B stays on the waitlist, socket open.
    let m = next_of(&mut wb, "sold_out", 3000).await.unwrap();
    assert_eq!(
        (m["final"].as_bool(), m["waitlist"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(close_code(&mut wb, 300).await, None, "a waiter may stay");
    // Paid: nothing can come back; the next tick says so and the room closes.
    let k = app.keys.drop(drop);
    assert!(vq_core::Scripts::default()
        .settle_reservation(&mut app.redis.clone(), &k, &token)
        .await
        .unwrap());
    app.admitter().tick_drop(drop).await.unwrap();
    let m = next_of(&mut wb, "sold_out", 3000).await.unwrap();
    assert_eq!(m["final"], true, "{m}");
    assert_eq!(close_code(&mut wb, 2000).await, Some(1000));

    let other = app.create_drop(json!({})).await;
    let mut wc = app.ws(other, &app.shopper()).await;
    next_of(&mut wc, "position", 2000).await.unwrap();
    let (st, _) = app
        .call(
            "POST",
            &format!("/v1/admin/drops/{other}/pause"),
            Some(&app.manager()),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert!(next_of(&mut wc, "paused", 3000).await.is_some());
    app.call(
        "POST",
        &format!("/v1/admin/drops/{other}/close"),
        Some(&app.manager()),
        None,
    )
    .await;
    assert!(next_of(&mut wc, "closed", 3000).await.is_some());
    let (st, body) = app
        .call(
            "GET",
            &format!("/v1/drops/{other}/room"),
            Some(&app.shopper().token),
            None,
        )
        .await;
    assert_eq!((st, body["code"].as_str()), (409, Some("drop_closed")));
    app.cleanup().await;
}
