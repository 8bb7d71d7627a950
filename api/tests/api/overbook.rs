//! The overbook factor of a drop: validated on create and patch, kept in PostgreSQL and
//! mirrored into the Redis cfg that lua/admit.lua reads for its stock-aware token cap.

use crate::helpers::*;
use redis::AsyncCommands;
use serde_json::json;

async fn cfg_overbook(app: &TestApp, drop: vq_core::domain::DropId) -> Option<String> {
    let mut r = app.redis.clone();
    r.hget(app.keys.drop(drop).cfg(), "overbook").await.unwrap()
}

#[tokio::test]
async fn overbook_is_validated_stored_and_mirrored_for_the_admission_script() {
    let app = spawn_app().await;
    let m = app.manager();
    for bad in [json!(0.5), json!(101), json!("lots")] {
        let mut spec = json!({
            "product_name": "x", "stock": 5, "starts_at": "2020-01-01T00:00:00Z",
            "admission_rate": 10,
        });
        spec["overbook"] = bad.clone();
        let (s, b) = app
            .call("POST", "/v1/admin/drops", Some(&m), Some(spec))
            .await;
        assert_eq!(s, 422, "overbook {bad}: {b}");
    }
    let drops: i64 = sqlx::query_scalar("SELECT count(*) FROM drops")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(drops, 0, "a rejected create stores nothing");

    let plain = app.create_drop(json!({})).await;
    assert_eq!(cfg_overbook(&app, plain).await.as_deref(), Some("1.5"));
    let d = app.create_drop(json!({ "overbook": 2.0 })).await;
    assert_eq!(cfg_overbook(&app, d).await.as_deref(), Some("2"));

    let path = format!("/v1/admin/drops/{}", d.get());
    let (s, b) = app
        .call("PATCH", &path, Some(&m), Some(json!({ "overbook": 0 })))
        .await;
    assert_eq!((s, b["fields"]["overbook"].is_string()), (422, true), "{b}");
    assert_eq!(
        cfg_overbook(&app, d).await.as_deref(),
        Some("2"),
        "unchanged"
    );
    let (s, b) = app
        .call("PATCH", &path, Some(&m), Some(json!({ "overbook": 1 })))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(cfg_overbook(&app, d).await.as_deref(), Some("1"));
    let stored: f64 = sqlx::query_scalar("SELECT overbook FROM drops WHERE id = $1")
        .bind(d.get())
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 1.0);
    app.cleanup().await;
}
