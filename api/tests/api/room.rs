//! The waiting room over WebSocket: idempotent join, reconnect keeps the place, pushed
//! position/admitted/sold_out/closed messages, client messages, and O(1) broadcast cost.

use crate::helpers::*;
use futures::SinkExt;
use serde_json::json;
use std::time::Duration;
use vq_core::Clock;

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
        assert!(m["eta_s"].is_u64());
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

#[tokio::test]
async fn bad_messages_get_errors_oversize_frames_close_and_leave_works() {
    let app = spawn_app().await;
    let drop = app.create_drop(json!({})).await;
    let s = app.shopper();
    let mut ws = app.ws(drop, &s).await;
    next_of(&mut ws, "position", 2000).await.unwrap();
    send_text(&mut ws, "not json").await;
    let e = next_of(&mut ws, "error", 2000).await.unwrap();
    assert_eq!(e["code"], "bad_message");
    send_text(&mut ws, r#"{"type":"buy_everything"}"#).await;
    assert_eq!(
        next_of(&mut ws, "error", 2000).await.unwrap()["code"],
        "bad_message"
    );
    ws.send(tokio_tungstenite::tungstenite::Message::Binary(
        vec![1, 2, 3].into(),
    ))
    .await
    .unwrap();
    assert_eq!(
        next_of(&mut ws, "error", 2000).await.unwrap()["code"],
        "bad_message"
    );
    send_text(&mut ws, r#"{"type":"ping"}"#).await;
    assert!(
        next_of(&mut ws, "pong", 2000).await.is_some(),
        "still connected after bad input"
    );
    send_text(&mut ws, r#"{"type":"status"}"#).await;
    assert_eq!(
        next_of(&mut ws, "position", 2000).await.unwrap()["position"],
        1
    );

    send_text(&mut ws, &"x".repeat(64 * 1024)).await;
    assert_eq!(close_code(&mut ws, 3000).await, Some(1009));
    let (_, b) = app.place(drop, &s).await;
    assert_eq!(b["position"], 1, "bad input changed nothing");

    let mut ws = app.ws(drop, &s).await;
    next_of(&mut ws, "position", 2000).await.unwrap();
    send_text(&mut ws, r#"{"type":"leave"}"#).await;
    assert!(next_of(&mut ws, "left", 2000).await.is_some());
    let (st, b) = app.place(drop, &s).await;
    assert_eq!((st, b["code"].as_str()), (404, Some("not_in_queue")));

    let res = app
        .http
        .get(app.url(&format!("/v1/drops/{drop}/room")))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 426, "a plain GET is told to upgrade");
    let url = format!("ws://127.0.0.1:{}/v1/drops/{drop}/room", app.port);
    assert!(
        tokio_tungstenite::connect_async(url).await.is_err(),
        "no token, no room"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn shutdown_closes_sockets_telling_clients_to_reconnect() {
    let app = spawn_app().await;
    let drop = app.create_drop(json!({})).await;
    let mut ws = app.ws(drop, &app.shopper()).await;
    next_of(&mut ws, "position", 2000).await.unwrap();
    app.shutdown();
    assert_eq!(
        close_code(&mut ws, 3000).await,
        Some(vq_api::room::CLOSE_RECONNECT)
    );
    app.cleanup().await;
}

/// Counts Redis commands on a private server while 100 buyers watch 10 ticks: the cost
/// must follow the ticks, not the connections.
#[tokio::test]
async fn position_broadcast_costs_o1_redis_calls_per_tick() {
    let redis = PrivateRedis::start().await;
    let clock = Clock::manual(chrono::Utc::now().timestamp_millis());
    let app = spawn_app_with(Opts {
        clock: clock.clone(),
        redis_url: redis.url.clone(),
        resync_ms: 600_000,
        // No periodic re-read in the window: presence refreshes run at a third of the grace.
        configure: Some(Box::new(|s| s.ws.leave_grace_ms = 3_600_000)),
    })
    .await;
    // rate 4/s → one admission per 250 ms of (manual) time.
    let drop = app
        .create_drop(json!({ "admission_rate": 4, "stock": 1000 }))
        .await;
    const N: usize = 100;
    const TICKS: usize = 10;
    let mut sockets = Vec::new();
    for _ in 0..N {
        let mut ws = app.ws(drop, &app.shopper()).await;
        next_of(&mut ws, "position", 2000).await.unwrap();
        sockets.push(ws);
    }
    let mut adm = app.admitter();
    adm.tick_drop(drop).await.unwrap(); // drains the initial burst allowance (1)
    tokio::time::sleep(Duration::from_millis(200)).await;
    let monitor = Monitor::start(&redis.url);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..TICKS {
        clock.advance(250);
        assert_eq!(adm.tick_drop(drop).await.unwrap().admitted.len(), 1);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cmds = monitor.stop();
    // The ticks themselves, plus at most one exact re-read per admitted buyer.
    let evalsha = cmds
        .iter()
        .filter(|c| c.eq_ignore_ascii_case("evalsha"))
        .count();
    assert!(evalsha >= TICKS, "the ticks ran: {cmds:?}");
    assert!(
        cmds.len() <= 2 * TICKS + 2,
        "{} client commands for {TICKS} ticks and {N} sockets: {cmds:?}",
        cmds.len()
    );

    let last = sockets.last_mut().unwrap();
    let mut latest = None;
    while let Some(m) = next_json(last, 300).await {
        if m["type"] == "position" {
            latest = m["position"].as_u64();
        }
    }
    assert_eq!(
        latest,
        Some((N - TICKS - 1) as u64),
        "the last buyer moved up once per tick"
    );
    std::mem::drop(sockets);
    app.cleanup().await;
}

/// `redis-cli monitor`, keeping the names of commands sent by clients (not by scripts).
struct Monitor {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Monitor {
    fn start(url: &str) -> Monitor {
        use std::io::BufRead;
        let mut child = std::process::Command::new("redis-cli")
            .args(["-u", url, "monitor"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("redis-cli on PATH");
        let out = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                // e.g. 1700000000.123456 [0 127.0.0.1:5555] "EVALSHA" "abc" ...
                if line.contains(" lua] ") || !line.contains('"') {
                    continue;
                }
                if let Some(cmd) = line.split('"').nth(1) {
                    sink.lock().unwrap().push(cmd.to_string());
                }
            }
        });
        Monitor { child, lines }
    }

    fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.lines.lock().unwrap().clone()
    }
}

/// Position pushes to one socket are spaced out (ws.position_interval_ms) however fast the
/// ticks come, and the latest place still arrives.
#[tokio::test]
async fn position_pushes_are_spaced_out_but_the_latest_arrives() {
    let clock = Clock::manual(chrono::Utc::now().timestamp_millis());
    let opts = Opts {
        clock: clock.clone(),
        resync_ms: 600_000,
        ..Opts::default()
    };
    let app = spawn_app_tuned(opts, |s| s.ws.position_interval_ms = 600).await;
    let drop = app
        .create_drop(json!({ "admission_rate": 4, "stock": 1000 }))
        .await;
    for _ in 0..5 {
        app.join(drop, &app.shopper()).await;
    }
    let mut ws = app.ws(drop, &app.shopper()).await;
    assert_eq!(
        next_of(&mut ws, "position", 2000).await.unwrap()["position"],
        6
    );
    let mut adm = app.admitter();
    for _ in 0..4 {
        assert_eq!(adm.tick_drop(drop).await.unwrap().admitted.len(), 1);
        clock.advance(250);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut seen = Vec::new();
    while let Some(m) = next_json(&mut ws, 200).await {
        seen.push(m["position"].as_u64().unwrap());
    }
    assert_eq!(seen, vec![5], "one push for four ticks within the interval");
    tokio::time::sleep(Duration::from_millis(600)).await;
    adm.tick_drop(drop).await.unwrap();
    let m = next_of(&mut ws, "position", 2000).await.unwrap();
    assert_eq!(m["position"], 1, "the latest place, not a stale one");
    app.cleanup().await;
}
