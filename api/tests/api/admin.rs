//! Drop manager API: creation, validation, live changes, state machine, auth, bad input.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn manager_creates_configures_and_controls_a_drop() {
    let app = spawn_app().await;
    let m = app.manager();
    let id = app
        .create_drop(json!({ "stock": 50, "admission_rate": 20 }))
        .await;

    let (s, d) = app
        .call("GET", &format!("/v1/admin/drops/{id}"), Some(&m), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(d["stock"], 50);
    assert_eq!(d["admission_rate"], 20);
    assert_eq!(d["phase"], "live");
    assert_eq!(d["stats"]["remaining"], 50);
    assert_eq!(d["orders_in_db"], 0);

    let (s, d) = app
        .call(
            "PATCH",
            &format!("/v1/admin/drops/{id}"),
            Some(&m),
            Some(json!({ "admission_rate": 75, "max_holders": 9 })),
        )
        .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["admission_rate"], 75);
    let mut r = app.redis.clone();
    let rate: String = redis::AsyncCommands::hget(&mut r, app.keys.drop(id).cfg(), "rate")
        .await
        .unwrap();
    assert_eq!(
        rate, "75",
        "the live mirror the scripts read follows the change"
    );

    let (s, d) = app
        .call(
            "POST",
            &format!("/v1/admin/drops/{id}/pause"),
            Some(&m),
            None,
        )
        .await;
    assert_eq!((s, d["phase"].as_str()), (200, Some("paused")));
    let (s, d) = app
        .call(
            "POST",
            &format!("/v1/admin/drops/{id}/pause"),
            Some(&m),
            None,
        )
        .await;
    assert_eq!(
        (s, d["code"].as_str(), d["state"].as_str()),
        (409, Some("invalid_state"), Some("paused"))
    );
    let (s, d) = app
        .call(
            "POST",
            &format!("/v1/admin/drops/{id}/resume"),
            Some(&m),
            None,
        )
        .await;
    assert_eq!((s, d["phase"].as_str()), (200, Some("live")));
    let (s, d) = app
        .call(
            "POST",
            &format!("/v1/admin/drops/{id}/close"),
            Some(&m),
            None,
        )
        .await;
    assert_eq!((s, d["phase"].as_str()), (200, Some("ended")));
    let (s, d) = app
        .call(
            "POST",
            &format!("/v1/admin/drops/{id}/resume"),
            Some(&m),
            None,
        )
        .await;
    assert_eq!((s, d["code"].as_str()), (409, Some("invalid_state")));
    let (s, d) = app
        .call(
            "PATCH",
            &format!("/v1/admin/drops/{id}"),
            Some(&m),
            Some(json!({ "admission_rate": 5 })),
        )
        .await;
    assert_eq!((s, d["code"].as_str()), (409, Some("invalid_state")));

    let (s, d) = app
        .call("GET", &format!("/v1/drops/{id}"), None, None)
        .await;
    assert_eq!(
        (s, d["phase"].as_str(), d["remaining"].as_i64()),
        (200, Some("ended"), Some(50))
    );
    app.cleanup().await;
}
