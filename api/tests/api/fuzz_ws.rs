//! Property test of the WebSocket client-message parser: random text, random JSON,
//! near-miss `type`s, binary frames and oversize frames on a live room connection. Each
//! gets `pong`, a `position` or a JSON `error` (bad_message), or — past 4 KiB — a close
//! with 1009 after which a reconnect finds the same place; nothing in the stores changes.

use crate::fuzz_http::{json_value, run, snapshot};
use crate::helpers::*;
use futures::SinkExt;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use vq_core::Clock;

#[derive(Debug, Clone)]
enum WsMsg {
    Text(String),
    Binary(Vec<u8>),
    /// A text frame past the 4 KiB message limit.
    Big(usize),
}

fn messages() -> impl Strategy<Value = WsMsg> {
    let kinds = vec![
        "ping", "status", "PING", "pong", "join", "", "Status", "purchase",
    ];
    let typed = (prop::sample::select(kinds), json_value())
        .prop_map(|(t, extra)| json!({ "type": t, "extra": extra }).to_string());
    prop_oneof![
        3 => ".{0,200}".prop_map(WsMsg::Text),
        3 => json_value().prop_map(|v| WsMsg::Text(v.to_string())),
        3 => typed.prop_map(WsMsg::Text),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(WsMsg::Binary),
        1 => (4097..16_384usize).prop_map(WsMsg::Big),
    ]
    // Leaving the queue is a real change; it has its own tests.
    .prop_filter(
        "not a leave",
        |m| !matches!(m, WsMsg::Text(t) if t.contains("leave")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_client_message_gets_a_clear_answer_and_changes_nothing() {
    let opts = Opts {
        clock: Clock::manual(chrono::Utc::now().timestamp_millis()),
        resync_ms: 600_000,
        ..Opts::default()
    };
    // The per-socket frame budget has its own test (room_guard); here every frame counts.
    let app = Arc::new(
        spawn_app_tuned(opts, |s| {
            unlimited_accounts(s);
            s.ws.client_msgs_per_s = 100_000;
            s.ws.client_msgs_burst = 100_000;
        })
        .await,
    );
    let drop = app.create_drop(json!({ "stock": 5 })).await;
    for _ in 0..3 {
        app.join(drop, &app.shopper()).await;
    }
    let me = Arc::new(app.shopper());
    let mut ws = app.ws(drop, &me).await;
    let place = next_of(&mut ws, "position", 2000).await.expect("position");
    assert_eq!(place["position"], 4);
    let ws = Arc::new(Mutex::new(ws));
    let (a, m, w, p) = (app.clone(), me.clone(), ws.clone(), place.clone());
    run(128, messages(), move |msg| {
        let (app, me, ws, place) = (a.clone(), m.clone(), w.clone(), p.clone());
        Box::pin(async move {
            let before = snapshot(&app, drop).await;
            let mut ws = ws.lock().await;
            let frame = match &msg {
                WsMsg::Text(t) => Message::Text(t.clone().into()),
                WsMsg::Binary(b) => Message::Binary(b.clone().into()),
                WsMsg::Big(n) => Message::Text(
                    format!("{{\"type\":\"ping\",\"pad\":\"{}\"}}", "x".repeat(*n)).into(),
                ),
            };
            ws.send(frame)
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            if let WsMsg::Big(_) = msg {
                prop_assert_eq!(close_code(&mut ws, 3000).await, Some(1009));
                *ws = app.ws(drop, &me).await;
                let again = next_of(&mut ws, "position", 2000).await;
                prop_assert_eq!(
                    again.map(|v| v["position"].clone()),
                    Some(place["position"].clone())
                );
            } else {
                let Some(reply) = answer_to(&mut ws, &msg).await else {
                    return Err(TestCaseError::fail(format!("no answer to {msg:?}")));
                };
                check_reply(&msg, &reply)?;
            }
            prop_assert_eq!(
                snapshot(&app, drop).await,
                before,
                "{:?} changed state",
                msg
            );
            Ok(())
        })
    });
    // The connection (or its replacement) still works after all of that.
    let mut ws = ws.lock().await;
    send_text(&mut ws, r#"{"type":"ping"}"#).await;
    assert_eq!(next_json(&mut ws, 2000).await.unwrap()["type"], "pong");
    drop_ws(&mut ws).await;
    std::mem::drop(ws);
    Arc::try_unwrap(app)
        .ok()
        .expect("one handle")
        .cleanup()
        .await;
}

async fn drop_ws(ws: &mut Ws) {
    let _ = ws.close(None).await;
}

/// The server's answer to `msg`. The room also pushes positions on its own (the periodic
/// resync, a changed estimate), so a position is the answer only to a `status` request;
/// any other message must still get its own pong or error, past such pushes.
async fn answer_to(ws: &mut Ws, msg: &WsMsg) -> Option<Value> {
    let asks_status = matches!(msg, WsMsg::Text(t) if t.contains("status"));
    for _ in 0..5 {
        let reply = next_json(ws, 3000).await?;
        if asks_status || reply["type"] != "position" {
            return Some(reply);
        }
    }
    None
}

fn check_reply(msg: &WsMsg, reply: &Value) -> Result<(), TestCaseError> {
    let text = match msg {
        WsMsg::Text(t) => t.as_str(),
        _ => "",
    };
    match reply["type"].as_str() {
        Some("pong") => prop_assert!(text.contains("ping"), "pong for {:?}", msg),
        Some("position") => prop_assert!(text.contains("status"), "position for {:?}", msg),
        Some("error") => {
            prop_assert_eq!(reply["code"].as_str(), Some("bad_message"));
            prop_assert!(reply["message"].is_string());
        }
        _ => return Err(TestCaseError::fail(format!("{msg:?} got {reply}"))),
    }
    Ok(())
}
