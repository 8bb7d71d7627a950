//! What keeps a room socket honest: frame budget, `status` from the cache, per-account
//! socket cap, ping/pong, shopper-only routes, single-use tickets and session checks.

use crate::accounts::{email, make_account, tokens};
use crate::helpers::*;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use vq_core::auth::{JwtKeys, Role};
use vq_core::domain::UserId;

async fn total_commands(url: &str) -> u64 {
    let c = redis::Client::open(url).unwrap();
    let mut conn = c.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn status_is_answered_from_the_cached_position_without_redis() {
    let redis = PrivateRedis::start().await;
    let app = spawn_app_with(Opts {
        redis_url: redis.url.clone(),
        // A periodic re-read in the window would cost Redis commands of its own.
        resync_ms: NO_RESYNC_MS,
        configure: Some(Box::new(|s| {
            s.ws.leave_grace_ms = NO_RESYNC_GRACE_MS;
            s.ws.client_msgs_per_s = 100_000;
            s.ws.client_msgs_burst = 100_000;
        })),
        ..Opts::default()
    })
    .await;
    let drop = app.create_drop(json!({})).await;
    app.join(drop, &app.shopper()).await;
    let mut ws = app.ws(drop, &app.shopper()).await;
    next_of(&mut ws, "position", 2000).await.unwrap();
    let before = total_commands(&redis.url).await;
    for _ in 0..3000 {
        send_text(&mut ws, r#"{"type":"status"}"#).await;
    }
    for i in 0..3000 {
        let m = next_json(&mut ws, 3000)
            .await
            .expect("an answer per status");
        assert_eq!(
            (m["type"].as_str(), m["position"].as_u64()),
            (Some("position"), Some(2)),
            "#{i}"
        );
    }
    let used = total_commands(&redis.url).await - before;
    assert!(used <= 5, "3000 status frames cost {used} Redis commands");
    app.cleanup().await;
}

#[tokio::test]
async fn a_flooding_socket_is_rate_limited_then_closed() {
    let app = spawn_app().await;
    let drop = app.create_drop(json!({})).await;
    let mut ws = app.ws(drop, &app.shopper()).await;
    next_of(&mut ws, "position", 2000).await.unwrap();
    for _ in 0..200 {
        send_text(&mut ws, r#"{"type":"ping"}"#).await;
    }
    let (mut pongs, mut limited) = (0, 0);
    while let Some(m) = next_json(&mut ws, 2000).await {
        match (m["type"].as_str(), m["code"].as_str()) {
            (Some("pong"), _) => pongs += 1,
            (Some("error"), Some("rate_limited")) => limited += 1,
            _ => {}
        }
    }
    assert!((20..=22).contains(&pongs), "the burst is answered: {pongs}");
    assert!(limited > 0, "the excess is refused");
    let mut again = app.ws(drop, &app.shopper()).await;
    next_of(&mut again, "position", 2000).await.unwrap();
    for _ in 0..200 {
        send_text(&mut again, r#"{"type":"ping"}"#).await;
    }
    assert_eq!(
        close_code(&mut again, 3000).await,
        Some(1008),
        "sustained abuse"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_new_socket_over_the_account_cap_closes_the_oldest() {
    let app = spawn_app().await;
    let drop = app.create_drop(json!({})).await;
    let s = app.shopper();
    let mut socks = Vec::new();
    for _ in 0..4 {
        let mut w = app.ws(drop, &s).await;
        next_of(&mut w, "position", 2000).await.unwrap();
        socks.push(w);
    }
    assert_eq!(close_code(&mut socks[0], 2000).await, Some(4008));
    assert_eq!(
        close_code(&mut socks[3], 300).await,
        None,
        "the newest stays"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_silent_peer_is_cut_after_two_ping_intervals() {
    let app = spawn_app_tuned(Opts::default(), |s| s.ws.ping_interval_ms = 200).await;
    let drop = app.create_drop(json!({})).await;
    let mut silent = app.ws(drop, &app.shopper()).await;
    let mut alive = app.ws(drop, &app.shopper()).await;
    next_of(&mut silent, "position", 2000).await.unwrap();
    // Reading answers the server's pings; the silent one reads nothing for a while.
    assert_eq!(
        close_code(&mut alive, 1200).await,
        None,
        "a live peer stays"
    );
    assert_eq!(close_code(&mut silent, 2000).await, Some(1001));
    app.cleanup().await;
}

#[tokio::test]
async fn queue_room_and_purchase_are_shopper_only() {
    let app = spawn_app().await;
    let drop = app.create_drop(json!({})).await;
    let m = app.manager();
    let q = format!("/v1/drops/{drop}/queue");
    let buy = format!("/v1/drops/{drop}/purchase");
    let ticket = format!("/v1/drops/{drop}/ticket");
    for (method, path, body) in [
        ("POST", &q, None),
        ("GET", &q, None),
        ("DELETE", &q, None),
        ("POST", &buy, Some(json!({"token": "x", "quantity": 1}))),
        ("POST", &ticket, None),
    ] {
        let (st, b) = app.call(method, path, Some(&m), body).await;
        assert_eq!(
            (st, b["code"].as_str()),
            (403, Some("wrong_role")),
            "{method} {path} {b}"
        );
    }
    let url = format!("ws://127.0.0.1:{}/v1/drops/{drop}/room", app.port);
    match tokio_tungstenite::connect_async(ws_request(&url, &m)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status().as_u16(), 403);
            let b: serde_json::Value =
                serde_json::from_slice(res.body().as_deref().unwrap()).unwrap();
            assert_eq!(b["code"], "wrong_role");
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    app.cleanup().await;
}

async fn refused(url: String) -> (u16, String) {
    match tokio_tungstenite::connect_async(url.into_client_request().unwrap()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            let b: serde_json::Value =
                serde_json::from_slice(res.body().as_deref().unwrap_or(b"null"))
                    .unwrap_or_default();
            (
                res.status().as_u16(),
                b["code"].as_str().unwrap_or("").to_string(),
            )
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn room_tickets_are_single_use_short_lived_and_bound_to_the_drop() {
    let app = spawn_app_tuned(Opts::default(), |s| s.ws.ticket_ttl_s = 1).await;
    let (drop, other) = (
        app.create_drop(json!({})).await,
        app.create_drop(json!({})).await,
    );
    let s = app.shopper();
    let get = |d| {
        let app = &app;
        let tok = s.token.clone();
        async move {
            let (st, b) = app
                .call("POST", &format!("/v1/drops/{d}/ticket"), Some(&tok), None)
                .await;
            assert_eq!(st, 201, "{b}");
            assert_eq!(b["expires_in"], 1);
            b["ticket"].as_str().unwrap().to_string()
        }
    };
    let room = |d, t: &str| format!("ws://127.0.0.1:{}/v1/drops/{d}/room?ticket={t}", app.port);
    let t = get(drop).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(room(drop, &t))
        .await
        .unwrap();
    next_of(&mut ws, "position", 2000)
        .await
        .expect("a ticket opens the room");
    assert_eq!(
        refused(room(drop, &t)).await,
        (401, "invalid_ticket".into()),
        "single use"
    );
    let t = get(other).await;
    assert_eq!(
        refused(room(drop, &t)).await,
        (401, "invalid_ticket".into()),
        "other drop"
    );
    let t = get(drop).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        refused(room(drop, &t)).await,
        (401, "invalid_ticket".into()),
        "expired"
    );
    let jwt = format!(
        "ws://127.0.0.1:{}/v1/drops/{drop}/room?access_token={}",
        app.port, s.token
    );
    assert_eq!(refused(jwt).await.0, 401, "no JWT in URLs");
    app.cleanup().await;
}

#[tokio::test]
async fn a_socket_closes_when_its_session_is_revoked_or_expires() {
    let app = spawn_app_with(Opts {
        resync_ms: 200,
        ..Opts::default()
    })
    .await;
    let drop = app.create_drop(json!({})).await;
    let addr = email();
    make_account(&app, &addr, false).await;
    let (access, _) = tokens(&app, &addr).await;
    let mut ws = {
        let url = format!("ws://127.0.0.1:{}/v1/drops/{drop}/room", app.port);
        tokio_tungstenite::connect_async(ws_request(&url, &access))
            .await
            .unwrap()
            .0
    };
    next_of(&mut ws, "position", 2000).await.unwrap();
    let (st, b) = app
        .call("POST", "/v1/auth/logout", Some(&access), None)
        .await;
    assert_eq!(st, 204, "{b}");
    assert_eq!(close_code(&mut ws, 3000).await, Some(4003), "revoked");

    let keys = JwtKeys::new(app.settings.auth.jwt_secret.as_ref().unwrap());
    let user = UserId(uuid::Uuid::new_v4());
    let short = Shopper {
        user,
        token: keys.issue(user, Role::Shopper, 2),
    };
    let mut ws = app.ws(drop, &short).await;
    next_of(&mut ws, "position", 2000).await.unwrap();
    assert_eq!(close_code(&mut ws, 5000).await, Some(4001), "expired");
    app.cleanup().await;
}
