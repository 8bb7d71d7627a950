//! Login, access tokens, refresh rotation with reuse detection, logout and revocation,
//! and the role checks on every manager route.

use crate::accounts::*;
use crate::helpers::*;
use base64::Engine;
use serde_json::{json, Value};

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

#[tokio::test]
async fn login_issues_a_short_lived_access_token_and_wrong_passwords_are_401() {
    let app = spawn_app().await;
    let addr = email();
    let id = make_account(&app, &addr, false).await;
    let (st, b) = login(&app, &addr, PASSWORD).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["expires_in"], 900);
    let c = claims_of(b["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], id.to_string());
    assert_eq!(c["role"], "shopper");
    assert!(c["jti"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    let left = c["exp"].as_i64().unwrap() - chrono::Utc::now().timestamp();
    assert!((890..=900).contains(&left), "{left}");
    assert!(b["refresh_token"].as_str().unwrap().len() >= 43);

    for (who, pw) in [
        (addr.as_str(), "wrong horse 42"),
        ("nobody@example.com", PASSWORD),
    ] {
        let (st, h, b) = call_h(
            &app,
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({ "email": who, "password": pw })),
        )
        .await;
        assert_eq!(
            (st, b["code"].as_str()),
            (401, Some("invalid_credentials")),
            "{b}"
        );
        assert_eq!(h["www-authenticate"], "Bearer");
    }
    let (st, b) = app
        .call("POST", "/v1/auth/login", None, Some(json!({})))
        .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(b["fields"]["password"], "is required");
    app.cleanup().await;
}

#[tokio::test]
async fn refresh_rotates_and_reusing_an_old_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    let addr = email();
    make_account(&app, &addr, false).await;
    let (access1, r1) = tokens(&app, &addr).await;
    let (other_access, other_refresh) = tokens(&app, &addr).await;

    let (st, b) = refresh(&app, &r1).await;
    assert_eq!(st, 200, "{b}");
    let (access2, r2) = (
        b["access_token"].as_str().unwrap().to_string(),
        b["refresh_token"].as_str().unwrap().to_string(),
    );
    assert_ne!(r1, r2);
    assert_ne!(claims_of(&access1)["jti"], claims_of(&access2)["jti"]);
    let (st, _) = app.call("GET", "/v1/me", Some(&access2), None).await;
    assert_eq!(st, 200);

    // r1 was rotated: presenting it again is theft; everything of the family dies.
    let (st, b) = refresh(&app, &r1).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (401, Some("refresh_token_reused")),
        "{b}"
    );
    let (st, b) = refresh(&app, &r2).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (401, Some("invalid_refresh_token")),
        "{b}"
    );
    for t in [&access1, &access2] {
        let (st, b) = app.call("GET", "/v1/me", Some(t), None).await;
        assert_eq!(
            (st, b["code"].as_str()),
            (401, Some("token_revoked")),
            "{b}"
        );
    }
    // Another login's session is untouched.
    let (st, _) = app.call("GET", "/v1/me", Some(&other_access), None).await;
    assert_eq!(st, 200);
    let (st, b) = refresh(&app, &other_refresh).await;
    assert_eq!(st, 200, "{b}");

    let (st, b) = refresh(&app, "made-up-token").await;
    assert_eq!(
        (st, b["code"].as_str()),
        (401, Some("invalid_refresh_token")),
        "{b}"
    );
    let (st, b) = app
        .call("POST", "/v1/auth/refresh", None, Some(json!({})))
        .await;
    assert_eq!(st, 422, "{b}");
    app.cleanup().await;
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let app = spawn_app().await;
    let addr = email();
    make_account(&app, &addr, false).await;
    let (_, r) = tokens(&app, &addr).await;
    sqlx::query("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'")
        .execute(&app.db)
        .await
        .unwrap();
    let (st, b) = refresh(&app, &r).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (401, Some("invalid_refresh_token")),
        "{b}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn logout_revokes_the_access_token_until_it_expires_and_the_refresh_family() {
    let app = spawn_app().await;
    let addr = email();
    make_account(&app, &addr, false).await;
    let drop = app.create_drop(json!({})).await;
    let (access, r) = tokens(&app, &addr).await;
    let (other_access, _) = tokens(&app, &addr).await;
    let queue = format!("/v1/drops/{drop}/queue");
    let (st, b) = app.call("POST", &queue, Some(&access), None).await;
    assert_eq!(st, 200, "{b}");

    let (st, b) = app
        .call("POST", "/v1/auth/logout", Some(&access), None)
        .await;
    assert_eq!(st, 204, "{b}");
    for (m, path) in [
        ("GET", "/v1/me"),
        ("POST", queue.as_str()),
        ("GET", queue.as_str()),
    ] {
        let (st, h, b) = call_h(&app, m, path, Some(&access), None).await;
        assert_eq!(
            (st, b["code"].as_str()),
            (401, Some("token_revoked")),
            "{path} {b}"
        );
        assert_eq!(h["www-authenticate"], "Bearer");
    }
    let (st, b) = refresh(&app, &r).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (401, Some("invalid_refresh_token")),
        "{b}"
    );
    let (st, _) = app.call("GET", "/v1/me", Some(&other_access), None).await;
    assert_eq!(st, 200, "other sessions stay signed in");

    // The revocation marker lives exactly as long as the token could.
    let jti: uuid::Uuid = claims_of(&access)["jti"].as_str().unwrap().parse().unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(app.keys.revoked_jti(&jti))
        .query_async(&mut app.redis.clone())
        .await
        .unwrap();
    assert!((890..=901).contains(&ttl), "{ttl}");
    let (st, _) = app.call("POST", "/v1/auth/logout", None, None).await;
    assert_eq!(st, 401);
    app.cleanup().await;
}

#[tokio::test]
async fn manager_routes_refuse_shoppers_with_403_and_anonymous_callers_with_401() {
    let app = spawn_app().await;
    let (shopper_mail, manager_mail) = (email(), email());
    make_account(&app, &shopper_mail, false).await;
    make_account(&app, &manager_mail, true).await;
    let (shopper, _) = tokens(&app, &shopper_mail).await;
    let (manager, _) = tokens(&app, &manager_mail).await;
    let drop = app.create_drop(json!({})).await;
    let spec = json!({ "product_name": "Cap", "stock": 3, "starts_at": "2030-01-01T00:00:00Z",
                       "admission_rate": 5 });
    let routes = [
        ("POST", "/v1/admin/drops".to_string(), Some(spec.clone())),
        ("GET", format!("/v1/admin/drops/{drop}"), None),
        (
            "PATCH",
            format!("/v1/admin/drops/{drop}"),
            Some(json!({ "admission_rate": 7 })),
        ),
        ("POST", format!("/v1/admin/drops/{drop}/pause"), None),
        ("POST", format!("/v1/admin/drops/{drop}/resume"), None),
        ("POST", format!("/v1/admin/drops/{drop}/close"), None),
    ];
    for (m, path, body) in &routes {
        let (st, h, b) = call_h(&app, m, path, None, body.clone()).await;
        assert_eq!(
            (st, b["code"].as_str()),
            (401, Some("unauthorized")),
            "{m} {path}"
        );
        assert_eq!(h["www-authenticate"], "Bearer", "{m} {path}");
        let (st, b) = app.call(m, path, Some(&shopper), body.clone()).await;
        assert_eq!(
            (st, b["code"].as_str()),
            (403, Some("forbidden")),
            "{m} {path}"
        );
    }
    let (st, b) = app
        .call("GET", &format!("/v1/admin/drops/{drop}"), None, None)
        .await;
    assert_eq!(st, 401, "{b}");
    // Nothing the shopper tried took effect; the manager's login works on every route.
    let (st, b) = app
        .call(
            "GET",
            &format!("/v1/admin/drops/{drop}"),
            Some(&manager),
            None,
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["admission_rate"], 1000, "{b}");
    for (m, path, body) in &routes {
        let (st, b) = app.call(m, path, Some(&manager), body.clone()).await;
        assert!(st == 200 || st == 201, "{m} {path}: {st} {b}");
    }
    app.cleanup().await;
}
