//! Shared steps of the account tests: an app wired to a loopback SMTP sink, the e-mail
//! code round trip, accounts made directly, logins, and raw calls that keep headers.

use crate::helpers::*;
use crate::smtp_sink::SmtpSink;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use vq_core::Settings;

pub const PASSWORD: &str = "correct horse 42";

/// An app whose mail goes to a fresh sink; `configure` may change more settings.
pub async fn spawn_with_mail(
    clock: vq_core::Clock,
    configure: impl FnOnce(&mut Settings) + Send + 'static,
) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let port = sink.port;
    let app = spawn_app_with(Opts {
        clock,
        configure: Some(Box::new(move |s: &mut Settings| {
            s.smtp.port = port;
            configure(s);
        })),
        ..Opts::default()
    })
    .await;
    (app, sink)
}

pub fn email() -> String {
    format!(
        "Buyer.{}@Example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

pub fn profile(email: &str, code: &str) -> Value {
    json!({
        "email": email,
        "code": code,
        "password": PASSWORD,
        "name": "Ann Lee",
        "address": "Main Street 1\n10115 Berlin",
        "phone": "+49 (30) 123-4567",
    })
}

/// Asks for a code, checks the answer never carries it, and reads it from the mail.
pub async fn request_code(app: &TestApp, sink: &mut SmtpSink, email: &str) -> String {
    let (st, body) = app
        .call(
            "POST",
            "/v1/auth/email-code",
            None,
            Some(json!({ "email": email })),
        )
        .await;
    assert_eq!(st, 202, "{body}");
    let mail = sink.next().await;
    assert_eq!(mail.to, vec![email.to_lowercase()]);
    let code = mail.code();
    assert!(!body.to_string().contains(&code), "code leaked: {body}");
    code
}

/// The whole signup flow; returns the new account id.
pub async fn sign_up(app: &TestApp, sink: &mut SmtpSink, email: &str) -> uuid::Uuid {
    let code = request_code(app, sink, email).await;
    let (st, body) = app
        .call("POST", "/v1/auth/signup", None, Some(profile(email, &code)))
        .await;
    assert_eq!(st, 201, "{body}");
    assert!(!body.to_string().contains(&code));
    body["id"].as_str().unwrap().parse().unwrap()
}

/// An account stored directly (no mail), as the CLI does.
pub async fn make_account(app: &TestApp, email: &str, manager: bool) -> uuid::Uuid {
    let input = vq_api::accounts::ProfileInput {
        email: Some(email.into()),
        password: Some(PASSWORD.into()),
        name: Some("Max Muster".into()),
        address: Some("Hauptstrasse 5, 80331 Munich".into()),
        phone: Some("+49 89 7654321".into()),
    };
    if manager {
        return vq_api::accounts::create_manager(&app.settings, &input)
            .await
            .unwrap()
            .0;
    }
    let mut c = vq_core::domain::Checker::default();
    let acc = input.parse(vq_core::auth::Role::Shopper, &mut c).unwrap();
    let accounts = app.state.accounts.as_ref().expect("accounts on");
    accounts
        .create(&app.db, acc, accounts.argon2.enter().await.unwrap())
        .await
        .unwrap()
        .0
}

pub async fn login(app: &TestApp, email: &str, password: &str) -> (u16, Value) {
    app.call(
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({ "email": email, "password": password })),
    )
    .await
}

/// Logs in and returns (access token, refresh token).
pub async fn tokens(app: &TestApp, email: &str) -> (String, String) {
    let (st, b) = login(app, email, PASSWORD).await;
    assert_eq!(st, 200, "{b}");
    (
        b["access_token"].as_str().unwrap().to_string(),
        b["refresh_token"].as_str().unwrap().to_string(),
    )
}

pub async fn refresh(app: &TestApp, token: &str) -> (u16, Value) {
    app.call(
        "POST",
        "/v1/auth/refresh",
        None,
        Some(json!({ "refresh_token": token })),
    )
    .await
}

/// Like `call`, but also returns the response headers.
pub async fn call_h(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, HeaderMap, Value) {
    let mut req = app.http.request(method.parse().unwrap(), app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap_or_default();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// Asserts a 429 `rate_limited` with a positive whole-second Retry-After.
pub fn assert_limited(status: u16, headers: &HeaderMap, body: &Value) {
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "rate_limited", "{body}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "Retry-After {retry}");
    assert_eq!(body["retry_after"], retry);
}

pub async fn user_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap()
}
