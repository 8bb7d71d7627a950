//! The webhook endpoints' admin surface: validation, the SSRF refusal by default, the
//! endpoint bound, secrets shown once, disable and delete, and the OpenAPI document.

use crate::helpers::*;
use serde_json::{json, Value};

#[tokio::test]
async fn endpoints_are_validated_bounded_and_refuse_private_targets_by_default() {
    let app = spawn_app_tuned(Opts::default(), |s| s.webhooks.max_endpoints = 2).await;
    let m = app.manager();
    let post = |body: Value| {
        let m = m.clone();
        let app = &app;
        async move {
            app.call("POST", "/v1/admin/webhooks", Some(&m), Some(body))
                .await
        }
    };
    for url in [
        "http://127.0.0.1:9/hook",
        "https://127.0.0.1/hook",
        "https://localhost/x",
        "https://10.0.0.8/x",
        "https://[::1]/x",
    ] {
        let (st, b) = post(json!({ "url": url, "events": ["order.paid"] })).await;
        assert_eq!(
            (st, b["code"].as_str()),
            (422, Some("validation_failed")),
            "{url}: {b}"
        );
        assert!(b["fields"]["url"].is_string(), "{b}");
    }
    let (st, b) = post(json!({ "url": "https://93.184.216.34/x", "events": ["order.nope"] })).await;
    assert_eq!(st, 422, "{b}");
    assert!(b["fields"]["events"]
        .as_str()
        .unwrap()
        .contains("order.nope"));
    let (st, _) = post(json!({ "url": "https://93.184.216.34/x", "events": [] })).await;
    assert_eq!(st, 422);
    let mut ids = vec![];
    for _ in 0..2 {
        let (st, b) =
            post(json!({ "url": "https://93.184.216.34/x", "events": ["order.paid"] })).await;
        assert_eq!(st, 201, "{b}");
        assert!(b["secret"].as_str().unwrap().starts_with("whsec_"));
        ids.push(b["id"].as_str().unwrap().to_string());
    }
    let (st, b) = post(json!({ "url": "https://93.184.216.34/x", "events": ["order.paid"] })).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (409, Some("limit_reached")),
        "{b}"
    );
    let (st, list) = app.call("GET", "/v1/admin/webhooks", Some(&m), None).await;
    assert_eq!(st, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        list.to_string().find("whsec_").is_none(),
        "secrets are shown once only"
    );
    let (st, b) = app
        .call(
            "POST",
            &format!("/v1/admin/webhooks/{}/disable", ids[0]),
            Some(&m),
            None,
        )
        .await;
    assert_eq!(
        (st, &b["enabled"], b["disabled_reason"].as_str()),
        (200, &json!(false), Some("manager"))
    );
    let (st, _) = app
        .call(
            "DELETE",
            &format!("/v1/admin/webhooks/{}", ids[1]),
            Some(&m),
            None,
        )
        .await;
    assert_eq!(st, 204);
    let (st, b) = app
        .call(
            "GET",
            &format!("/v1/admin/webhooks/{}", ids[1]),
            Some(&m),
            None,
        )
        .await;
    assert_eq!((st, b["code"].as_str()), (404, Some("webhook_not_found")));
    let (st, _) = app
        .call("GET", "/v1/admin/webhooks/not-a-uuid", Some(&m), None)
        .await;
    assert_eq!(st, 404);
    let s = app.shopper();
    let (st, _) = app
        .call("GET", "/v1/admin/webhooks", Some(&s.token), None)
        .await;
    assert_eq!(st, 403);
    app.cleanup().await;
}

#[tokio::test]
async fn the_event_types_and_routes_are_in_the_openapi_document() {
    let app = spawn_app().await;
    let doc = crate::openapi::fetch_document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let types = schemas["EventType"].to_string();
    for t in vitaqueue::webhooks::EventType::ALL {
        assert!(
            types.contains(&format!("\"{t}\"")),
            "{t} missing from {types}"
        );
    }
    assert!(
        schemas["Event"]["properties"]["type"].is_object(),
        "{}",
        schemas["Event"]
    );
    for path in [
        "/v1/admin/webhooks",
        "/v1/admin/webhooks/{id}/deliveries",
        "/v1/admin/webhooks/{id}/events/{event_id}/redeliver",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    app.cleanup().await;
}
