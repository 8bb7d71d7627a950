//! Drop manager API, continued: validation (422 with every field error, nothing changed),
//! auth on admin routes, and JSON errors for unknown routes and methods.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn invalid_config_is_422_with_every_field_error_and_creates_nothing() {
    let app = spawn_app().await;
    let m = app.manager();
    let bad = json!({
        "product_name": "  ",
        "stock": 0,
        "starts_at": "tomorrow",
        "admission_rate": -3,
        "token_ttl_s": 1,
        "per_user_limit": 1000,
    });
    let (s, body) = app
        .call("POST", "/v1/admin/drops", Some(&m), Some(bad))
        .await;
    assert_eq!(s, 422);
    assert_eq!(body["code"], "validation_failed");
    let fields = body["fields"].as_object().unwrap();
    for f in [
        "product_name",
        "stock",
        "starts_at",
        "admission_rate",
        "token_ttl_s",
        "per_user_limit",
    ] {
        assert!(fields.contains_key(f), "missing error for {f}: {body}");
    }
    let (s, body) = app
        .call("POST", "/v1/admin/drops", Some(&m), Some(json!({})))
        .await;
    assert_eq!(s, 422);
    assert_eq!(body["fields"]["stock"], "is required");

    let (s, body) = app
        .call(
            "POST",
            "/v1/admin/drops",
            Some(&m),
            Some(json!({ "stock": "ten" })),
        )
        .await;
    assert_eq!((s, body["code"].as_str()), (422, Some("invalid_body")));
    let (s, body) = app
        .call(
            "POST",
            "/v1/admin/drops",
            Some(&m),
            Some(json!({ "stok": 1 })),
        )
        .await;
    assert_eq!((s, body["code"].as_str()), (422, Some("invalid_body")));
    assert!(body["message"].as_str().unwrap().contains("stok"));

    let res = app
        .http
        .post(app.url("/v1/admin/drops"))
        .bearer_auth(&m)
        .header("content-type", "application/json")
        .body("{\"stock\": 1,")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "malformed_json");

    let res = app
        .http
        .post(app.url("/v1/admin/drops"))
        .bearer_auth(&m)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);

    let huge = json!({ "product_name": "x".repeat(100_000) });
    let (s, body) = app
        .call("POST", "/v1/admin/drops", Some(&m), Some(huge))
        .await;
    assert_eq!((s, body["code"].as_str()), (413, Some("body_too_large")));

    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM drops")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 0, "no bad request created a drop");
    app.cleanup().await;
}

#[tokio::test]
async fn patch_rejects_bad_values_and_fixed_fields_without_changing_anything() {
    let app = spawn_app().await;
    let m = app.manager();
    let id = app.create_drop(json!({ "admission_rate": 30 })).await;
    let path = format!("/v1/admin/drops/{id}");
    let (s, b) = app
        .call(
            "PATCH",
            &path,
            Some(&m),
            Some(json!({ "admission_rate": 0, "max_holders": 5 })),
        )
        .await;
    assert_eq!((s, b["code"].as_str()), (422, Some("validation_failed")));
    assert!(b["fields"]["admission_rate"].is_string());
    let (s, b) = app
        .call("PATCH", &path, Some(&m), Some(json!({ "stock": 5 })))
        .await;
    assert_eq!((s, b["code"].as_str()), (422, Some("invalid_body")));
    let (s, b) = app
        .call(
            "PATCH",
            &path,
            Some(&m),
            Some(json!({ "starts_at": "2030-01-01T00:00:00Z" })),
        )
        .await;
    assert_eq!((s, b["code"].as_str()), (409, Some("already_open")));
    let (_, d) = app.call("GET", &path, Some(&m), None).await;
    assert_eq!(d["admission_rate"], 30);
    assert_eq!(d["max_holders"], 1000);
    assert_eq!(d["stock"], 10);

    let future = app
        .create_drop(json!({ "starts_at": "2099-01-01T00:00:00Z", "prequeue_s": 600 }))
        .await;
    let (s, d) = app
        .call(
            "PATCH",
            &format!("/v1/admin/drops/{future}"),
            Some(&m),
            Some(json!({ "starts_at": "2098-06-01T12:00:00Z" })),
        )
        .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["phase"], "scheduled");
    assert!(d["starts_at"]
        .as_str()
        .unwrap()
        .starts_with("2098-06-01T12:00:00"));
    app.cleanup().await;
}

#[tokio::test]
async fn admin_routes_need_a_manager() {
    let app = spawn_app().await;
    let id = app.create_drop(json!({})).await;
    let shopper = app.shopper();
    for (method, path) in [
        ("POST", "/v1/admin/drops".to_string()),
        ("GET", format!("/v1/admin/drops/{id}")),
        ("PATCH", format!("/v1/admin/drops/{id}")),
        ("POST", format!("/v1/admin/drops/{id}/pause")),
        ("POST", format!("/v1/admin/drops/{id}/close")),
    ] {
        let res = app
            .http
            .request(method.parse().unwrap(), app.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{method} {path}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized");
        let (s, b) = app
            .call(method, &path, Some(&shopper.token), Some(json!({})))
            .await;
        assert_eq!(
            (s, b["code"].as_str()),
            (403, Some("forbidden")),
            "{method} {path}"
        );
        let (s, _) = app.call(method, &path, Some("not-a-jwt"), None).await;
        assert_eq!(s, 401);
    }
    let (_, d) = app
        .call(
            "GET",
            &format!("/v1/admin/drops/{id}"),
            Some(&app.manager()),
            None,
        )
        .await;
    assert_eq!(d["state"], "active", "nothing changed");
    app.cleanup().await;
}

#[tokio::test]
async fn unknown_drops_routes_and_methods_are_json_errors() {
    let app = spawn_app().await;
    let m = app.manager();
    let s = app.shopper();
    for (method, path, token) in [
        ("GET", "/v1/admin/drops/999999", &m),
        ("PATCH", "/v1/admin/drops/999999", &m),
        ("POST", "/v1/admin/drops/999999/pause", &m),
        ("GET", "/v1/admin/drops/abc", &m),
        ("GET", "/v1/drops/999999", &s.token),
        ("GET", "/v1/drops/-4", &s.token),
        ("POST", "/v1/drops/999999/queue", &s.token),
        ("GET", "/v1/drops/999999/queue", &s.token),
        ("DELETE", "/v1/drops/999999/queue", &s.token),
        ("GET", "/v1/drops/999999/room", &s.token),
    ] {
        let (st, b) = app.call(method, path, Some(token), Some(json!({}))).await;
        assert_eq!(
            (st, b["code"].as_str()),
            (404, Some("drop_not_found")),
            "{method} {path}: {b}"
        );
    }
    let (st, b) = app
        .call(
            "POST",
            "/v1/drops/999999/purchase",
            Some(&s.token),
            Some(json!({ "token": "x" })),
        )
        .await;
    assert_eq!((st, b["code"].as_str()), (404, Some("drop_not_found")));
    let (st, b) = app.call("GET", "/v1/nothing/here", None, None).await;
    assert_eq!((st, b["code"].as_str()), (404, Some("not_found")));
    let (st, b) = app.call("DELETE", "/v1/admin/drops", Some(&m), None).await;
    assert_eq!((st, b["code"].as_str()), (405, Some("method_not_allowed")));
    let (st, b) = app.call("GET", "/healthz", None, None).await;
    assert_eq!((st, b["status"].as_str()), (200, Some("ok")));
    let (st, b) = app.call("GET", "/readyz", None, None).await;
    assert_eq!(
        (st, b["redis"].as_bool(), b["postgres"].as_bool()),
        (200, Some(true), Some(true))
    );
    app.cleanup().await;
}
