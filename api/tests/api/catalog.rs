//! Catalog: product CRUD, cursor pagination, drop list with live phases, drop deletion.

use crate::helpers::*;
use serde_json::json;
use std::collections::HashSet;
use vq_core::Clock;

#[tokio::test]
async fn managers_maintain_products_and_everyone_pages_through_them() {
    let app = spawn_app().await;
    let m = app.manager();
    let s = app.shopper();
    let (st, b) = app
        .call(
            "POST",
            "/v1/admin/products",
            Some(&s.token),
            Some(json!({ "name": "x", "price_cents": 1 })),
        )
        .await;
    assert_eq!((st, b["code"].as_str()), (403, Some("forbidden")));
    let (st, b) = app
        .call(
            "POST",
            "/v1/admin/products",
            Some(&m),
            Some(json!({ "name": " ", "price_cents": -1, "description": "d".repeat(6000) })),
        )
        .await;
    assert_eq!(st, 422);
    for f in ["name", "price_cents", "description"] {
        assert!(b["fields"][f].is_string(), "{f}: {b}");
    }
    let mut ids = Vec::new();
    for i in 0..5 {
        let (st, p) = app
            .call(
                "POST",
                "/v1/admin/products",
                Some(&m),
                Some(json!({ "name": format!("Shoe {i}"), "price_cents": 1000 + i })),
            )
            .await;
        assert_eq!(st, 201, "{p}");
        ids.push(p["id"].as_i64().unwrap());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/products?limit=2&cursor={c}"),
            None => "/v1/products?limit=2".into(),
        };
        let (st, page) = app.call("GET", &path, None, None).await;
        assert_eq!(st, 200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|p| p["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first, "every product once, newest first");
    for bad in [
        "/v1/products?limit=0",
        "/v1/products?limit=101",
        "/v1/products?cursor=xyz",
        "/v1/products?sort=name",
    ] {
        let (st, b) = app.call("GET", bad, None, None).await;
        assert_eq!(st, 422, "{bad}: {b}");
    }

    let pid = ids[0];
    let (st, p) = app
        .call(
            "PATCH",
            &format!("/v1/admin/products/{pid}"),
            Some(&m),
            Some(json!({ "price_cents": 4200 })),
        )
        .await;
    assert_eq!(
        (st, p["price_cents"].as_i64(), p["name"].as_str()),
        (200, Some(4200), Some("Shoe 0"))
    );
    let drop = app
        .create_drop(json!({ "product_id": pid, "product_name": null, "price_cents": null }))
        .await;
    let (_, d) = app
        .call("GET", &format!("/v1/drops/{drop}"), None, None)
        .await;
    assert_eq!(
        (d["product_name"].as_str(), d["price_cents"].as_i64()),
        (Some("Shoe 0"), Some(4200)),
        "defaults from the product"
    );
    let (st, detail) = app
        .call("GET", &format!("/v1/products/{pid}"), None, None)
        .await;
    assert_eq!(
        (st, detail["drops"][0]["id"].as_i64()),
        (200, Some(drop.get()))
    );
    assert_eq!(detail["drops"][0]["remaining"], 10);
    let (st, b) = app
        .call(
            "DELETE",
            &format!("/v1/admin/products/{pid}"),
            Some(&m),
            None,
        )
        .await;
    assert_eq!((st, b["code"].as_str()), (409, Some("product_in_use")));
    let (st, _) = app
        .call(
            "DELETE",
            &format!("/v1/admin/products/{}", ids[1]),
            Some(&m),
            None,
        )
        .await;
    assert_eq!(st, 204);
    let (st, b) = app
        .call("GET", &format!("/v1/products/{}", ids[1]), None, None)
        .await;
    assert_eq!((st, b["code"].as_str()), (404, Some("product_not_found")));
    let (st, b) = app.call("POST", "/v1/admin/drops", Some(&m), Some(json!({ "product_id": 999999, "stock": 1, "starts_at": "2030-01-01T00:00:00Z", "admission_rate": 1 }))).await;
    assert_eq!(
        (st, b["fields"]["product_id"].as_str()),
        (422, Some("no such product"))
    );
    app.cleanup().await;
}

#[tokio::test]
async fn the_drop_list_shows_each_drops_live_phase() {
    let now = chrono::Utc::now();
    let clock = Clock::manual(now.timestamp_millis());
    let app = spawn_app_with(Opts {
        clock: clock.clone(),
        ..Opts::default()
    })
    .await;
    let m = app.manager();
    let at = |mins: i64| (now + chrono::Duration::minutes(mins)).to_rfc3339();
    let scheduled = app
        .create_drop(json!({ "starts_at": at(60), "prequeue_s": 600 }))
        .await;
    let pre = app
        .create_drop(json!({ "starts_at": at(5), "prequeue_s": 600 }))
        .await;
    let live = app.create_drop(json!({})).await;
    let paused = app.create_drop(json!({})).await;
    app.call(
        "POST",
        &format!("/v1/admin/drops/{paused}/pause"),
        Some(&m),
        None,
    )
    .await;
    let closed = app.create_drop(json!({})).await;
    app.call(
        "POST",
        &format!("/v1/admin/drops/{closed}/close"),
        Some(&m),
        None,
    )
    .await;
    let sold = app.create_drop(json!({ "stock": 1 })).await;
    app.buy(sold, &app.shopper(), 1).await;

    let (st, page) = app.call("GET", "/v1/drops?limit=100", None, None).await;
    assert_eq!(st, 200);
    let phase = |id: vq_core::domain::DropId| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id.get())
            .unwrap()["phase"]
            .clone()
    };
    assert_eq!(phase(scheduled), "scheduled");
    assert_eq!(phase(pre), "pre_queue");
    assert_eq!(phase(live), "live");
    assert_eq!(phase(paused), "paused");
    assert_eq!(phase(closed), "ended");
    assert_eq!(phase(sold), "sold_out");
    let (_, first) = app.call("GET", "/v1/drops?limit=4", None, None).await;
    let (_, second) = app
        .call(
            "GET",
            &format!(
                "/v1/drops?limit=4&cursor={}",
                first["next_cursor"].as_str().unwrap()
            ),
            None,
            None,
        )
        .await;
    let ids: HashSet<i64> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 6);
    assert!(second["next_cursor"].is_null());
    let (st, admin) = app
        .call("GET", "/v1/admin/drops?limit=2", Some(&m), None)
        .await;
    assert_eq!((st, admin["items"].as_array().unwrap().len()), (200, 2));
    assert!(admin["items"][0]["stats"].is_object());

    let (st, _) = app
        .call(
            "DELETE",
            &format!("/v1/admin/drops/{scheduled}"),
            Some(&m),
            None,
        )
        .await;
    assert_eq!(st, 204, "nobody could have joined yet");
    let (st, _) = app
        .call("GET", &format!("/v1/drops/{scheduled}"), None, None)
        .await;
    assert_eq!(st, 404);
    let (st, b) = app
        .call("DELETE", &format!("/v1/admin/drops/{pre}"), Some(&m), None)
        .await;
    assert_eq!((st, b["code"].as_str()), (409, Some("already_open")));
    app.cleanup().await;
}

#[tokio::test]
async fn control_characters_in_products_and_drops_are_422_and_nothing_is_stored() {
    let app = spawn_app().await;
    let m = app.manager();
    let bodies = [
        json!({ "name": "Boot", "description": "warm\u{0}", "price_cents": 100 }),
        json!({ "name": "Bo\u{0}ot", "price_cents": 100 }),
        json!({ "name": "Boot", "description": "\u{1b}[31mred", "price_cents": 100 }),
    ];
    for b in bodies {
        let (st, e) = app
            .call("POST", "/v1/admin/products", Some(&m), Some(b.clone()))
            .await;
        assert_eq!(
            (st, e["code"].as_str()),
            (422, Some("validation_failed")),
            "{b}: {e}"
        );
        assert!(e["fields"].as_object().is_some_and(|f| f.len() == 1), "{e}");
    }
    let (_, list) = app.call("GET", "/v1/products", None, None).await;
    assert_eq!(list["items"], json!([]), "nothing stored");
    let (st, p) = app
        .call(
            "POST",
            "/v1/admin/products",
            Some(&m),
            Some(json!({ "name": "Boot", "description": "warm\n\tlined", "price_cents": 100 })),
        )
        .await;
    assert_eq!(st, 201, "{p}");
    let id = p["id"].as_i64().unwrap();
    let (st, e) = app
        .call(
            "PATCH",
            &format!("/v1/admin/products/{id}"),
            Some(&m),
            Some(json!({ "description": "x\u{0}" })),
        )
        .await;
    assert_eq!(
        (st, e["fields"]["description"].is_string()),
        (422, true),
        "{e}"
    );
    let (_, p) = app
        .call("GET", &format!("/v1/products/{id}"), None, None)
        .await;
    assert_eq!(p["description"], "warm\n\tlined", "unchanged");
    let spec = json!({ "product_name": "Dr\u{0}op", "stock": 5, "starts_at": "2020-01-01T00:00:00Z",
        "admission_rate": 10 });
    let (st, e) = app
        .call("POST", "/v1/admin/drops", Some(&m), Some(spec))
        .await;
    assert_eq!(
        (st, e["fields"]["product_name"].is_string()),
        (422, true),
        "{e}"
    );
    app.cleanup().await;
}
