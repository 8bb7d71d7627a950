//! Property tests of the credentials a request carries: purchase tokens (random, shaped
//! like real ones, mutated real ones, another account's, replayed, expired) and bearer
//! JWTs (random, forged with another key, expired, unsigned). Each is refused with a clear
//! JSON error and changes nothing; the rightful owner can still use an untouched token.

use crate::fuzz_http::{clear_error, run, send, snapshot, Body};
use crate::helpers::*;
use proptest::prelude::*;
use serde_json::json;
use std::sync::Arc;
use vq_core::auth::{JwtKeys, Role};
use vq_core::config::Secret;
use vq_core::domain::{DropId, UserId};
use vq_core::Clock;

async fn admitted(app: &TestApp, drop: DropId, s: &Shopper) -> String {
    app.join(drop, s).await;
    app.admitter().tick_drop(drop).await.unwrap();
    let (st, b) = app.place(drop, s).await;
    assert_eq!(st, 200, "{b}");
    b["token"].as_str().expect("admitted").to_string()
}

/// What a sale changes: stock, per-buyer totals, the order stream and reservations, the
/// queue, and the orders in PostgreSQL.
async fn sale_state(app: &TestApp, drop: DropId) -> Vec<Option<Vec<u8>>> {
    let k = app.keys.drop(drop);
    let mut conn = app.redis.clone();
    let mut out = Vec::new();
    for key in [
        k.stock(),
        k.buyers(),
        k.orders(),
        k.reservations(),
        k.queue(),
    ] {
        out.push(
            redis::cmd("DUMP")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap(),
        );
    }
    out.push(Some(app.orders(drop).await.to_be_bytes().to_vec()));
    out
}

fn purchase_body(token: &str) -> Body {
    Body::Json(json!({ "token": token, "quantity": 1 }))
}

/// Token strings: random text, the real format with random hex, and the real token of
/// another account with one character changed, cut or extended.
fn tokens(real: String) -> impl Strategy<Value = String> {
    let r2 = real.clone();
    prop_oneof![
        ".{0,200}",
        "[0-9a-f]{32}\\.[0-9]{1,4}",
        (0..real.len(), any::<char>()).prop_map(move |(i, c)| {
            let mut t: Vec<char> = real.chars().collect();
            t[i] = c;
            t.into_iter().collect()
        }),
        (0..r2.len()).prop_map(move |i| r2[..i].to_string()),
        Just("x".repeat(129)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_foreign_replayed_and_expired_purchase_tokens_change_nothing() {
    let clock = Clock::manual(chrono::Utc::now().timestamp_millis());
    let app = Arc::new(
        spawn_app_tuned(
            Opts {
                clock: clock.clone(),
                ..Opts::default()
            },
            unlimited_accounts,
        )
        .await,
    );
    let drop = app
        .create_drop(json!({ "stock": 5, "token_ttl_s": 30, "admission_rate": 1000 }))
        .await;
    let (owner, thief) = (app.shopper(), app.shopper());
    let real = admitted(&app, drop, &owner).await;
    let path = format!("/v1/drops/{drop}/purchase");

    // Random and mutated tokens, and the owner's real one, presented by another account.
    let (a, p, jwt) = (app.clone(), path.clone(), thief.token.clone());
    let strategy = prop_oneof![3 => tokens(real.clone()), 1 => Just(real.clone())];
    run(128, strategy, move |t| {
        let (app, path, jwt) = (a.clone(), p.clone(), jwt.clone());
        Box::pin(async move {
            let before = snapshot(&app, drop).await;
            let (st, text) = send(&app, "POST", &path, &jwt, &purchase_body(&t)).await;
            let code = clear_error(st, &text)?;
            prop_assert!(st >= 400, "a foreign or forged token bought: {}", text);
            prop_assert!(
                [
                    "invalid_token",
                    "not_your_token",
                    "validation_failed",
                    "malformed_json"
                ]
                .contains(&code.as_str()),
                "{} {}",
                st,
                code
            );
            prop_assert_eq!(snapshot(&app, drop).await, before);
            Ok(())
        })
    });

    // The owner's token survived all of that; used once, the owner's retry replays the
    // same success and anyone else's is refused.
    let (st, b) = app.purchase(drop, &owner, &real, 1).await;
    assert_eq!(st, 201, "{b}");
    let before = snapshot(&app, drop).await;
    assert_eq!(app.purchase(drop, &owner, &real, 1).await, (201, b));
    let (st, text) = send(&app, "POST", &path, &thief.token, &purchase_body(&real)).await;
    assert_eq!(clear_error(st, &text).unwrap(), "not_your_token");
    assert_eq!(snapshot(&app, drop).await, before, "replays change nothing");

    // An expired token: 410, and nothing is sold. (The script retires the token on the
    // spot, freeing its holder slot as the next admission tick would: housekeeping only.)
    let late = app.shopper();
    let token = admitted(&app, drop, &late).await;
    clock.advance(31_000);
    let before = sale_state(&app, drop).await;
    let (st, text) = send(&app, "POST", &path, &late.token, &purchase_body(&token)).await;
    assert_eq!(
        (st, clear_error(st, &text).unwrap().as_str()),
        (410, "token_expired")
    );
    assert_eq!(sale_state(&app, drop).await, before);
    Arc::try_unwrap(app)
        .ok()
        .expect("one handle")
        .cleanup()
        .await;
}

/// Bearer tokens: random text, forged (other key), expired, `alg: none`, truncated.
fn bearers(real: String, forged: String, expired: String) -> impl Strategy<Value = String> {
    let none = {
        let parts: Vec<&str> = real.split('.').collect();
        format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1])
    };
    let r = real.clone();
    prop_oneof![
        "[A-Za-z0-9_.-]{0,300}",
        Just(forged),
        Just(expired),
        Just(none),
        (1..r.len()).prop_map(move |i| r[..i].to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_forged_and_expired_jwts_are_refused_everywhere() {
    let app = Arc::new(spawn_app_tuned(Opts::default(), unlimited_accounts).await);
    let drop = app.create_drop(json!({ "stock": 5 })).await;
    let user = UserId(uuid::Uuid::new_v4());
    let real = app.manager();
    let forged = JwtKeys::new(&Secret::new("not-the-secret")).issue(user, Role::Manager, 3600);
    let expired = {
        let me = JwtKeys::new(app.settings.auth.jwt_secret.as_ref().unwrap());
        me.issue(user, Role::Manager, -120)
    };
    let routes = vec![
        ("POST", "/v1/admin/drops".to_string()),
        ("PATCH", format!("/v1/admin/drops/{drop}")),
        ("POST", format!("/v1/admin/drops/{drop}/close")),
        ("POST", format!("/v1/drops/{drop}/queue")),
        ("POST", format!("/v1/drops/{drop}/purchase")),
        ("GET", format!("/v1/drops/{drop}/room")),
        ("DELETE", format!("/v1/drops/{drop}/queue")),
    ];
    let a = app.clone();
    let strategy = (prop::sample::select(routes), bearers(real, forged, expired));
    run(96, strategy, move |((method, path), jwt)| {
        let app = a.clone();
        Box::pin(async move {
            let before = snapshot(&app, drop).await;
            let body = Body::Json(json!({ "admission_rate": 1, "token": "t" }));
            let (st, text) = send(&app, method, &path, &jwt, &body).await;
            let code = clear_error(st, &text)?;
            prop_assert_eq!((st, code.as_str()), (401, "unauthorized"), "{}", text);
            prop_assert_eq!(snapshot(&app, drop).await, before);
            Ok(())
        })
    });
    Arc::try_unwrap(app)
        .ok()
        .expect("one handle")
        .cleanup()
        .await;
}
