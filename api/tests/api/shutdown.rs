//! SIGTERM to a real `vitaqueue all` process: WebSockets get a "reconnect" close frame
//! (those moved to the checkout lane too), purchases already in flight finish, and every
//! confirmed purchase has its order.

use crate::helpers::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn sigterm_drains_sockets_and_in_flight_purchases_and_loses_nothing() {
    let app = spawn_app().await;
    let drop_id = app
        .create_drop(json!({ "stock": 100, "max_holders": 1000 }))
        .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = &app.settings;
    let mut child = std::process::Command::new(crate::procs::vitaqueue_bin())
        .arg("all")
        .env("VQ_HTTP__PORT", port.to_string())
        .env("VQ_REDIS__URL", s.redis.url.expose())
        .env("VQ_REDIS__PREFIX", &s.redis.prefix)
        .env("VQ_DATABASE__URL", s.database.url.expose())
        .env(
            "VQ_AUTH__JWT_SECRET",
            s.auth.jwt_secret.as_ref().unwrap().expose(),
        )
        .env("VQ_WORKER__BLOCK_MS", "50")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if app.http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "child server did not start");

    // 61 buyers hold tokens (admitted through the shared Redis); one more waits in a room.
    let mut buyers: Vec<Shopper> = (0..61).map(|_| app.shopper()).collect();
    for b in &buyers {
        app.join(drop_id, b).await;
    }
    // Admitted by the child's controller or ours, whichever ticks first.
    app.admitter().tick_drop(drop_id).await.unwrap();
    let mut tokens = Vec::new();
    for b in &buyers {
        let (_, q) = app.place(drop_id, b).await;
        tokens.push(q["token"].as_str().expect("admitted").to_string());
    }
    let waiting = app.shopper();
    let url = format!("ws://127.0.0.1:{port}/v1/drops/{drop_id}/room");
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_request(&url, &waiting.token))
        .await
        .unwrap();
    next_of(&mut ws, "position", 3000).await.unwrap();
    // The last holder keeps its socket: told `admitted`, it lives on the checkout lane.
    let holder = buyers.pop().unwrap();
    tokens.pop();
    let (mut on_lane, _) = tokio_tungstenite::connect_async(ws_request(&url, &holder.token))
        .await
        .unwrap();
    next_of(&mut on_lane, "admitted", 3000).await.unwrap();

    let http = reqwest::Client::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (b, t) in buyers.iter().zip(&tokens) {
        let req = http
            .post(format!("{base}/v1/drops/{drop_id}/purchase"))
            .bearer_auth(&b.token)
            .json(&json!({ "token": t }))
            .send();
        let tx = tx.clone();
        tokio::spawn(async move { tx.send(req.await.map(|r| r.status().as_u16())) });
    }
    drop(tx);
    // SIGTERM as soon as the first purchase is answered: the others are in flight.
    let first = rx.recv().await.unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    for ws in [&mut ws, &mut on_lane] {
        assert_eq!(
            close_code(ws, 5000).await,
            Some(vq_api::room::CLOSE_RECONNECT)
        );
    }
    // A request the server had not started reading may fail (the client retries on
    // another node); one it started must finish: every reserved unit is answered below.
    let mut confirmed = 0;
    let mut results = vec![first];
    while let Some(r) = rx.recv().await {
        results.push(r);
    }
    for r in results {
        match r {
            Ok(201) => confirmed += 1,
            Ok(other) => panic!("a purchase got {other}"),
            Err(_) => {}
        }
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "clean exit after draining: {status:?}");

    // Every unit that left the stock is a confirmed purchase with an order (the child's
    // worker finished its batch; anything it had not read yet is written now).
    let sold = 100 - app.remaining(drop_id).await;
    assert_eq!(
        sold, confirmed,
        "no reservation without a confirmed response"
    );
    app.flush_orders().await;
    assert_eq!(app.orders(drop_id).await, confirmed);
    assert!(confirmed > 0);
    app.cleanup().await;
}
