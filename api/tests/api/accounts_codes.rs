//! E-mail codes on a hostile day: a per-address daily cap and a per-IP sign-up limit
//! (both in Redis), and SMTP failures that never put an address in the logs.

use crate::accounts::*;
use crate::helpers::*;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use vq_core::config::Limit;
use vq_core::Clock;

const OFF: Limit = Limit {
    per_minute: 0,
    burst: 0,
};

#[tokio::test]
async fn accounts_an_address_gets_at_most_its_daily_cap_of_mails() {
    let (app, mut sink) = spawn_with_mail(Clock::Redis, |s| {
        s.limits.email_code_account = OFF;
        s.limits.email_code_ip = OFF;
        s.limits.email_code_daily = 3;
    })
    .await;
    let addr = email();
    let code = request_code(&app, &mut sink, &addr).await;
    for _ in 0..2 {
        assert_eq!(request_code(&app, &mut sink, &addr).await, code);
    }
    let body = json!({ "email": addr });
    let (st, h, b) = call_h(&app, "POST", "/v1/auth/email-code", None, Some(body)).await;
    assert_limited(st, &h, &b);
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 3600, "the cap refills over the day: {retry}");
    assert!(sink.is_empty().await, "no fourth mail");
    request_code(&app, &mut sink, &email()).await;
    app.cleanup().await;
}

#[tokio::test]
async fn accounts_sign_up_attempts_are_limited_per_ip() {
    let (app, mut sink) = spawn_with_mail(Clock::Redis, |s| {
        s.limits.signup_ip = Limit {
            per_minute: 1,
            burst: 2,
        };
    })
    .await;
    let addr = email();
    let code = request_code(&app, &mut sink, &addr).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..2 {
        let (st, b) = app
            .call(
                "POST",
                "/v1/auth/signup",
                None,
                Some(profile(&email(), wrong)),
            )
            .await;
        assert_eq!(st, 410, "{b}");
    }
    let (st, h, b) = call_h(
        &app,
        "POST",
        "/v1/auth/signup",
        None,
        Some(profile(&addr, &code)),
    )
    .await;
    assert_limited(st, &h, &b);
    assert_eq!(user_count(&app).await, 0);
    app.cleanup().await;
}

/// An SMTP server that refuses every recipient, quoting the address as real ones do.
async fn refusing_smtp() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 refuser ready\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let up = line.to_ascii_uppercase();
                    let reply = if up.starts_with("EHLO") || up.starts_with("HELO") {
                        "250 refuser\r\n".to_string()
                    } else if up.starts_with("RCPT TO:") {
                        format!("550 5.1.1 {}: mailbox unavailable\r\n", line[8..].trim())
                    } else if up.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        "250 ok\r\n".to_string()
                    };
                    if w.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn accounts_smtp_errors_name_no_address() {
    let port = refusing_smtp().await;
    let cfg = vq_core::config::Smtp {
        port,
        ..Default::default()
    };
    let mailer = vq_api::accounts::mail::Mailer::new(&cfg, 300).unwrap();
    let addr = email();
    let to = vq_core::account::Email::parse(&addr).unwrap();
    let code = vq_core::account::EmailCode::random();
    let err = mailer.send_code(&to, &code).await.unwrap_err();
    let shown = format!("{err} | {err:?} | {err:#}");
    assert!(
        shown.contains("permanent") && shown.contains("550"),
        "{shown}"
    );
    assert!(
        !shown.to_lowercase().contains(&addr.to_lowercase()),
        "{shown}"
    );
    assert!(!shown.contains('@'), "{shown}");

    let app = spawn_app_tuned(Opts::default(), move |s| s.smtp.port = port).await;
    let body = json!({ "email": addr });
    let (st, _, b) = call_h(&app, "POST", "/v1/auth/email-code", None, Some(body)).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (503, Some("mail_unavailable")),
        "{b}"
    );
    app.cleanup().await;
}
