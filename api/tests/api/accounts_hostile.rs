//! Hostile-day account hardening: key lengths at start, JWT nbf/iss/aud, absolute session
//! lifetime, no lockout by strangers, fleet-wide limits and trusted proxies.

use crate::accounts::*;
use crate::helpers::*;
use serde_json::{json, Value};
use vq_core::auth::{Claims, JwtKeys, Role};
use vq_core::config::{Limit, Secret, TrustedProxies};
use vq_core::domain::UserId;
use vq_core::Settings;

const OFF: Limit = Limit {
    per_minute: 0,
    burst: 0,
};
const TWO: Limit = Limit {
    per_minute: 1,
    burst: 2,
};

fn limits_off(s: &mut Settings) {
    let l = &mut s.limits;
    for b in [
        &mut l.login_ip,
        &mut l.login_account,
        &mut l.email_code_ip,
        &mut l.email_code_account,
        &mut l.signup_ip,
        &mut l.join_ip,
        &mut l.join_account,
        &mut l.purchase_ip,
        &mut l.purchase_account,
    ] {
        *b = OFF;
    }
}

/// A login as seen from `client` (through the trusted loopback proxy).
async fn login_from(app: &TestApp, client: &str, who: &str, pw: &str) -> (u16, Value) {
    let res = app
        .http
        .post(app.url("/v1/auth/login"))
        .header("x-forwarded-for", client)
        .json(&json!({ "email": who, "password": pw }))
        .send()
        .await
        .unwrap();
    let st = res.status().as_u16();
    (st, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn accounts_short_or_empty_keys_stop_the_api_with_a_clear_message() {
    // Real stores, so the only reason left for the build to fail is the keys.
    let app = spawn_app().await;
    let good = || {
        let mut s = Settings::default();
        s.auth.jwt_secret = Some(Secret::new("j".repeat(32)));
        s.auth.pii_key = Some(random_key());
        s.auth.email_hash_key = Some(random_key());
        s
    };
    let mut cases: Vec<(Settings, &str)> = Vec::new();
    for jwt in ["", "short-secret", &"x".repeat(31)] {
        let mut s = good();
        s.auth.jwt_secret = Some(Secret::new(jwt));
        cases.push((s, "auth.jwt_secret"));
    }
    let mut s = good();
    s.auth.jwt_secret = None;
    cases.push((s, "auth.jwt_secret"));
    let mut s = good();
    s.auth.pii_key = Some(Secret::new(""));
    cases.push((s, "auth.pii_key"));
    let mut s = good();
    s.auth.email_hash_key = Some(Secret::new("c2hvcnQ="));
    cases.push((s, "auth.email_hash_key"));
    for (s, needle) in cases {
        let (_t, stop) = vq_core::shutdown::channel();
        let err = vq_api::Application::build(
            &s,
            app.redis.clone(),
            app.db.clone(),
            vq_core::Clock::Redis,
            stop,
        )
        .await
        .err()
        .expect("the build must fail")
        .to_string();
        assert!(err.contains(needle) && err.contains("32 bytes"), "{err}");
    }
}

#[tokio::test]
async fn accounts_tokens_for_another_audience_or_issuer_or_not_yet_valid_get_401() {
    let app = spawn_app().await;
    let keys = JwtKeys::new(app.settings.auth.jwt_secret.as_ref().unwrap());
    let good = Claims::new(UserId(uuid::Uuid::new_v4()), Role::Manager, 600);
    let (st, b) = app
        .call("GET", "/v1/admin/drops", Some(&keys.sign(&good)), None)
        .await;
    assert_ne!(st, 401, "the well-formed token is accepted: {b}");
    let bad = [
        Claims {
            aud: "some-other-api".into(),
            ..good.clone()
        },
        Claims {
            iss: "not-vitaqueue".into(),
            ..good.clone()
        },
        Claims {
            nbf: good.nbf + 300,
            ..good.clone()
        },
    ];
    for c in bad {
        let (st, b) = app
            .call("GET", "/v1/admin/drops", Some(&keys.sign(&c)), None)
            .await;
        assert_eq!(st, 401, "{c:?}: {b}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn accounts_a_session_ends_at_its_absolute_lifetime_however_often_it_rotates() {
    let app = spawn_app_tuned(Opts::default(), |s| s.auth.session_max_s = 3600).await;
    let addr = email();
    make_account(&app, &addr, false).await;
    let (_, mut rt) = tokens(&app, &addr).await;
    for _ in 0..3 {
        let (st, b) = refresh(&app, &rt).await;
        assert_eq!(st, 200, "{b}");
        let left = b["refresh_expires_in"].as_i64().unwrap();
        assert!(
            (3590..=3600).contains(&left),
            "capped by the session: {left}"
        );
        rt = b["refresh_token"].as_str().unwrap().to_string();
    }
    // The login was an hour ago: rotation did not extend the session.
    sqlx::query("UPDATE refresh_tokens SET created_at = created_at - interval '3601 seconds'")
        .execute(&app.db)
        .await
        .unwrap();
    let (st, b) = refresh(&app, &rt).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (401, Some("invalid_refresh_token")),
        "{b}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn accounts_failures_from_other_addresses_never_lock_the_owner_out() {
    let app = spawn_app_tuned(Opts::default(), |s| {
        limits_off(s);
        s.limits.login_account = TWO;
        s.http.trusted_proxies = TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    })
    .await;
    let addr = email();
    make_account(&app, &addr, false).await;
    for attacker in ["203.0.113.1", "203.0.113.2"] {
        for _ in 0..2 {
            let (st, b) = login_from(&app, attacker, &addr, "wrong guess 1").await;
            assert_eq!(st, 401, "{b}");
        }
        let (st, b) = login_from(&app, attacker, &addr, "wrong guess 2").await;
        assert_eq!((st, b["code"].as_str()), (429, Some("rate_limited")), "{b}");
        let (st, _) = login_from(&app, attacker, &addr, PASSWORD).await;
        assert_eq!(st, 429, "the guessing client itself stays limited");
    }
    let (st, b) = login_from(&app, "198.51.100.7", &addr, PASSWORD).await;
    assert_eq!(st, 200, "the owner from a fresh address gets in: {b}");
    // Successes are not what the limit counts.
    for _ in 0..4 {
        let (st, b) = login_from(&app, "198.51.100.7", &addr, PASSWORD).await;
        assert_eq!(st, 200, "{b}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn accounts_forwarded_for_is_believed_only_from_trusted_proxies() {
    for trusted in [false, true] {
        let app = spawn_app_tuned(Opts::default(), move |s| {
            limits_off(s);
            s.limits.login_ip = TWO;
            if trusted {
                s.http.trusted_proxies = TrustedProxies::parse(&["127.0.0.0/8"]).unwrap();
            }
        })
        .await;
        let mut statuses = Vec::new();
        for i in 0..4 {
            let (st, _) = login_from(&app, &format!("192.0.2.{i}"), &email(), PASSWORD).await;
            statuses.push(st);
        }
        let want = if trusted {
            vec![401; 4] // each forwarded client has its own bucket
        } else {
            vec![401, 401, 429, 429] // a client cannot pick its own bucket
        };
        assert_eq!(statuses, want, "trusted proxy: {trusted}");
        app.cleanup().await;
    }
}

#[tokio::test]
async fn accounts_two_api_instances_share_one_budget() {
    let prefix = format!("vqt{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let hash_key = random_key();
    let mk = |prefix: String, key: Secret| {
        move |s: &mut Settings| {
            limits_off(s);
            s.limits.login_ip = TWO;
            s.limits.email_code_account = TWO;
            s.redis.prefix = prefix;
            s.auth.email_hash_key = Some(key);
        }
    };
    let a = spawn_app_tuned(Opts::default(), mk(prefix.clone(), hash_key.clone())).await;
    let b = spawn_app_tuned(Opts::default(), mk(prefix.clone(), hash_key.clone())).await;
    let (st, _) = login(&a, &email(), PASSWORD).await;
    assert_eq!(st, 401);
    let (st, _) = login(&b, &email(), PASSWORD).await;
    assert_eq!(st, 401);
    for app in [&a, &b] {
        let body = json!({ "email": email(), "password": PASSWORD });
        let (st, h, body) = call_h(app, "POST", "/v1/auth/login", None, Some(body)).await;
        assert_limited(st, &h, &body);
    }
    a.cleanup().await;
    b.cleanup().await;
}
