//! Rate limits: per IP and per account on login, code sending, joining (HTTP and
//! WebSocket) and purchasing; 429 `rate_limited` with Retry-After, nothing done.

use crate::accounts::*;
use crate::helpers::*;
use serde_json::json;
use vq_core::config::Limit;
use vq_core::Clock;

const OFF: Limit = Limit {
    per_minute: 0,
    burst: 0,
};
const TWO: Limit = Limit {
    per_minute: 1,
    burst: 2,
};

async fn spawn_limited(set: impl FnOnce(&mut vq_core::config::Limits) + Send + 'static) -> TestApp {
    spawn_app_with(Opts {
        configure: Some(Box::new(move |s: &mut vq_core::Settings| {
            let l = &mut s.limits;
            for b in [
                &mut l.login_ip,
                &mut l.login_account,
                &mut l.email_code_ip,
                &mut l.email_code_account,
                &mut l.join_ip,
                &mut l.join_account,
                &mut l.purchase_ip,
                &mut l.purchase_account,
            ] {
                *b = OFF;
            }
            set(l);
        })),
        ..Opts::default()
    })
    .await
}

async fn try_login(
    app: &TestApp,
    who: &str,
    pw: &str,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let body = json!({ "email": who, "password": pw });
    call_h(app, "POST", "/v1/auth/login", None, Some(body)).await
}

#[tokio::test]
async fn login_is_limited_per_account_even_with_the_right_password() {
    let app = spawn_limited(|l| l.login_account = TWO).await;
    let addr = email();
    make_account(&app, &addr, false).await;
    for _ in 0..2 {
        let (st, _, b) = try_login(&app, &addr, "guess number 1").await;
        assert_eq!(st, 401, "{b}");
    }
    let (st, h, b) = try_login(&app, &addr, PASSWORD).await;
    assert_limited(st, &h, &b);
    // Case does not dodge the per-account bucket; other accounts are unaffected.
    let (st, h, b) = try_login(&app, &addr.to_uppercase(), PASSWORD).await;
    assert_limited(st, &h, &b);
    let (st, _, b) = try_login(&app, &email(), PASSWORD).await;
    assert_eq!(st, 401, "{b}");
    app.cleanup().await;
}

#[tokio::test]
async fn login_is_limited_per_ip_across_accounts() {
    let app = spawn_limited(|l| l.login_ip = TWO).await;
    for _ in 0..2 {
        let (st, _, b) = try_login(&app, &email(), PASSWORD).await;
        assert_eq!(st, 401, "{b}");
    }
    let (st, h, b) = try_login(&app, &email(), PASSWORD).await;
    assert_limited(st, &h, &b);
    app.cleanup().await;
}

#[tokio::test]
async fn code_sending_is_limited_per_address_and_per_ip() {
    let (app, mut sink) = spawn_with_mail(Clock::Redis, |s| {
        s.limits.email_code_account = TWO;
        s.limits.email_code_ip = Limit {
            per_minute: 1,
            // The account-limited request above also took a cell from the IP bucket.
            burst: 4,
        };
    })
    .await;
    let addr = email();
    request_code(&app, &mut sink, &addr).await;
    request_code(&app, &mut sink, &addr).await;
    let body = json!({ "email": addr.to_uppercase() });
    let (st, h, b) = call_h(&app, "POST", "/v1/auth/email-code", None, Some(body)).await;
    assert_limited(st, &h, &b);
    assert!(sink.is_empty().await, "a refused request sends no mail");
    request_code(&app, &mut sink, &email()).await;
    let body = json!({ "email": email() });
    let (st, h, b) = call_h(&app, "POST", "/v1/auth/email-code", None, Some(body)).await;
    assert_limited(st, &h, &b);
    assert!(sink.is_empty().await);
    app.cleanup().await;
}

#[tokio::test]
async fn joining_is_limited_per_account_over_http_and_websocket() {
    let app = spawn_limited(|l| l.join_account = TWO).await;
    let drop = app.create_drop(json!({})).await;
    let s = app.shopper();
    for _ in 0..2 {
        let (st, b) = app.join(drop, &s).await;
        assert_eq!(st, 200, "{b}");
    }
    let path = format!("/v1/drops/{drop}/queue");
    let (st, h, b) = call_h(&app, "POST", &path, Some(&s.token), None).await;
    assert_limited(st, &h, &b);
    let url = format!("ws://127.0.0.1:{}/v1/drops/{drop}/room", app.port);
    match tokio_tungstenite::connect_async(crate::helpers::ws_request(&url, &s.token)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status().as_u16(), 429);
            assert!(res.headers().contains_key("retry-after"));
        }
        other => panic!("expected a 429 refusal, got {:?}", other.map(|_| ())),
    }
    let (st, b) = app.join(drop, &app.shopper()).await;
    assert_eq!(st, 200, "other accounts still join: {b}");
    app.cleanup().await;
}

#[tokio::test]
async fn joining_is_limited_per_ip_across_accounts() {
    let app = spawn_limited(|l| l.join_ip = TWO).await;
    let drop = app.create_drop(json!({})).await;
    for _ in 0..2 {
        let (st, b) = app.join(drop, &app.shopper()).await;
        assert_eq!(st, 200, "{b}");
    }
    let s = app.shopper();
    let path = format!("/v1/drops/{drop}/queue");
    let (st, h, b) = call_h(&app, "POST", &path, Some(&s.token), None).await;
    assert_limited(st, &h, &b);
    let in_queue: u64 = redis::cmd("ZCARD")
        .arg(app.keys.drop(drop).queue())
        .query_async(&mut app.redis.clone())
        .await
        .unwrap();
    assert_eq!(in_queue, 2, "the refused join took no place");
    app.cleanup().await;
}

#[tokio::test]
async fn purchasing_is_limited_per_account_and_per_ip() {
    let app = spawn_limited(|l| {
        l.purchase_account = TWO;
        l.purchase_ip = Limit {
            per_minute: 1,
            // The account-limited request above also took a cell from the IP bucket.
            burst: 4,
        };
    })
    .await;
    let drop = app.create_drop(json!({})).await;
    let s = app.shopper();
    let path = format!("/v1/drops/{drop}/purchase");
    let body = json!({ "token": "not-a-real-token", "quantity": 1 });
    for _ in 0..2 {
        let (st, b) = app.purchase(drop, &s, "not-a-real-token", 1).await;
        assert_eq!(
            (st, b["code"].as_str()),
            (403, Some("invalid_token")),
            "{b}"
        );
    }
    let (st, h, b) = call_h(&app, "POST", &path, Some(&s.token), Some(body.clone())).await;
    assert_limited(st, &h, &b);
    let other = app.shopper();
    let (st, b) = app.purchase(drop, &other, "not-a-real-token", 1).await;
    assert_eq!(st, 403, "another account is not limited: {b}");
    let (st, h, b) = call_h(&app, "POST", &path, Some(&app.shopper().token), Some(body)).await;
    assert_limited(st, &h, &b);
    app.cleanup().await;
}

/// The revocation check rides in the limits' round trip: a revoked token is still 401
/// first (before the limits, a bad body and the role check) and leaves every bucket as
/// it was, so the address's budget is whole for the next account.
#[tokio::test]
async fn a_revoked_token_is_refused_first_and_takes_no_cell() {
    let app = spawn_limited(|l| {
        l.purchase_ip = TWO;
        l.join_ip = TWO;
    })
    .await;
    let drop = app.create_drop(json!({})).await;
    let revoked = app.shopper();
    let manager = app.manager();
    let mut r = app.redis.clone();
    for token in [&revoked.token, &manager] {
        let jti = app.state.jwt.verify_claims(token).unwrap().jti;
        let _: () = redis::cmd("SET")
            .arg(app.keys.revoked_jti(&jti))
            .arg(1)
            .arg("EX")
            .arg(600)
            .query_async(&mut r)
            .await
            .unwrap();
    }
    let purchase = format!("/v1/drops/{drop}/purchase");
    let queue = format!("/v1/drops/{drop}/queue");
    let good = json!({ "token": "not-a-real-token", "quantity": 1 });
    for (token, path, body) in [
        (&revoked.token, &purchase, Some(good.clone())),
        (&revoked.token, &purchase, Some(json!({ "token": 5 }))),
        (&revoked.token, &queue, None),
        (&manager, &purchase, Some(good.clone())),
        (&manager, &queue, None),
    ] {
        for _ in 0..3 {
            let (st, b) = app.call("POST", path, Some(token), body.clone()).await;
            assert_eq!(
                (st, b["code"].as_str()),
                (401, Some("token_revoked")),
                "{b}"
            );
        }
    }
    let other = app.shopper();
    for _ in 0..2 {
        let (st, b) = app.purchase(drop, &other, "not-a-real-token", 1).await;
        assert_eq!(st, 403, "the address's purchase budget is whole: {b}");
        let (st, b) = app.call("POST", &queue, Some(&other.token), None).await;
        assert_eq!(st, 200, "the address's join budget is whole: {b}");
    }
    let (st, h, b) = call_h(&app, "POST", &purchase, Some(&other.token), Some(good)).await;
    assert_limited(st, &h, &b);
    let (st, h, b) = call_h(&app, "POST", &queue, Some(&other.token), None).await;
    assert_limited(st, &h, &b);
    app.cleanup().await;
}
