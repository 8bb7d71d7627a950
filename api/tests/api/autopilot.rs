//! Autopilot admission through the manager API: the setting on create and edit (checked,
//! off unless set), `rate_now` and the last reason in the admin view, the rate changes in
//! the history, and the manager taking the rate back by hand. The faults are in
//! `autopilot_faults`.

use crate::autopilot_crowd::{rate, reasons};
use crate::helpers::*;
use redis::AsyncCommands;
use serde_json::json;
use vq_core::domain::DropId;

async fn show(app: &TestApp, drop: DropId) -> serde_json::Value {
    let (st, body) = app
        .call(
            "GET",
            &format!("/v1/admin/drops/{drop}"),
            Some(&app.manager()),
            None,
        )
        .await;
    assert_eq!(st, 200, "{body}");
    body
}

async fn patch(app: &TestApp, drop: DropId, body: serde_json::Value) -> (u16, serde_json::Value) {
    let path = format!("/v1/admin/drops/{drop}");
    app.call("PATCH", &path, Some(&app.manager()), Some(body))
        .await
}

#[tokio::test]
async fn the_autopilot_is_off_unless_set_and_its_setting_is_checked() {
    let app = spawn_app().await;
    let plain = app.create_drop(json!({ "admission_rate": 40 })).await;
    let b = show(&app, plain).await;
    assert_eq!(b["autopilot"], serde_json::Value::Null, "{b}");
    assert_eq!(b["rate_now"], 40);
    let cfg: Option<String> = app
        .redis
        .clone()
        .hget(app.keys.drop(plain).cfg(), "ap")
        .await
        .unwrap();
    assert_eq!(cfg.as_deref(), Some("0"));

    let bad = [
        (json!({}), "autopilot.min_rate", "is required"),
        (
            json!({ "min_rate": 10, "max_rate": 5 }),
            "autopilot.max_rate",
            "must not be below min_rate",
        ),
        (
            json!({ "min_rate": 0, "max_rate": 5 }),
            "autopilot.min_rate",
            "",
        ),
        (
            json!({ "min_rate": 1, "max_rate": 5, "purchase_p99_ms": 0 }),
            "autopilot.purchase_p99_ms",
            "must be from 1 to 60000",
        ),
        (
            json!({ "min_rate": 1, "max_rate": 5, "order_lag_s": 4000 }),
            "autopilot.order_lag_s",
            "must be from 1 to 3600",
        ),
    ];
    let manager = app.manager();
    for (ap, field, msg) in bad {
        let spec = json!({ "product_name": "X", "stock": 5, "starts_at": "2020-01-01T00:00:00Z",
            "admission_rate": 10, "autopilot": ap });
        let (st, body) = app
            .call("POST", "/v1/admin/drops", Some(&manager), Some(spec))
            .await;
        assert_eq!(
            (st, body["code"].as_str()),
            (422, Some("validation_failed")),
            "{body}"
        );
        assert!(
            body["fields"][field].as_str().unwrap().contains(msg),
            "{field}: {body}"
        );
    }
    let spec = json!({ "product_name": "X", "stock": 5, "starts_at": "2020-01-01T00:00:00Z",
        "admission_rate": 10, "autopilot": { "min_rate": 1, "max_rate": 5, "extra": 1 } });
    let (st, _) = app
        .call("POST", "/v1/admin/drops", Some(&manager), Some(spec))
        .await;
    assert_eq!(st, 422, "unknown autopilot fields are refused");
    let drops: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM drops")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(drops, 1, "no refused body created a drop");
    app.cleanup().await;
}

#[tokio::test]
async fn a_drop_with_autopilot_starts_inside_its_band_and_a_manual_rate_takes_it_back() {
    let app = spawn_app().await;
    let drop = app
        .create_drop(json!({ "admission_rate": 500,
            "autopilot": { "min_rate": 10, "max_rate": 200 } }))
        .await;
    let b = show(&app, drop).await;
    let want = json!({ "min_rate": 10, "max_rate": 200, "purchase_p99_ms": 200, "order_lag_s": 5 });
    assert_eq!(b["autopilot"], want, "defaults filled in: {b}");
    assert_eq!(b["admission_rate"], 500, "the manager's rate is kept");
    assert_eq!(b["rate_now"], 200, "the live rate starts inside the band");
    assert_eq!(rate(&app, drop).await, 200);

    // An edit of another field, or a pause, leaves the live rate alone.
    let mut conn = app.redis.clone();
    let _: () = conn
        .hset(app.keys.drop(drop).cfg(), "rate", 77)
        .await
        .unwrap();
    let (st, b) = patch(&app, drop, json!({ "max_holders": 900 })).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        (b["rate_now"].as_u64(), b["autopilot"]["max_rate"].as_u64()),
        (Some(77), Some(200))
    );

    // Taking the rate back by hand: the autopilot goes off, the change is recorded.
    let (st, b) = patch(&app, drop, json!({ "admission_rate": 25 })).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["autopilot"], serde_json::Value::Null, "{b}");
    assert_eq!(
        (b["rate_now"].as_u64(), b["rate_reason"].as_str()),
        (Some(25), Some("manual"))
    );
    assert!(
        b["rate_changed_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{b}"
    );
    let ap: Option<String> = conn.hget(app.keys.drop(drop).cfg(), "ap").await.unwrap();
    assert_eq!(ap.as_deref(), Some("0"));
    let path = format!("/v1/admin/drops/{drop}/history");
    let (_, h) = app.call("GET", &path, Some(&app.manager()), None).await;
    let change = &h["rate_changes"][0];
    assert_eq!(
        (change["old"].as_u64(), change["new"].as_u64()),
        (Some(77), Some(25)),
        "{h}"
    );
    assert!(change["t_ms"].as_i64().unwrap() > 0);

    // The autopilot no longer writes: a step finds it off.
    let mut a = app.admitter();
    assert!(a.autopilot_drop(drop).await.unwrap().is_none());

    // Back on with a new band (null turns it off again); invalid edits change nothing.
    let (st, b) = patch(
        &app,
        drop,
        json!({ "autopilot": { "min_rate": 5, "max_rate": 20 } }),
    )
    .await;
    assert_eq!(
        (st, b["autopilot"]["order_lag_s"].as_u64()),
        (200, Some(5)),
        "{b}"
    );
    let step = a.autopilot_drop(drop).await.unwrap().expect("on again");
    assert_eq!(
        step.decision.map(|d| d.rate),
        Some(20),
        "clamped into the new band"
    );
    assert_eq!(rate(&app, drop).await, 20);
    assert_eq!(reasons(&app, drop).await, ["manual", "bounds"]);
    let (st, _) = patch(
        &app,
        drop,
        json!({ "autopilot": { "min_rate": 9, "max_rate": 1 } }),
    )
    .await;
    assert_eq!(st, 422);
    assert_eq!(show(&app, drop).await["autopilot"]["min_rate"], 5);
    let (st, b) = patch(&app, drop, json!({ "autopilot": null })).await;
    assert_eq!((st, &b["autopilot"]), (200, &serde_json::Value::Null));
    assert_eq!(
        rate(&app, drop).await,
        20,
        "turned off: the rate stays where it was"
    );
    app.cleanup().await;
}
