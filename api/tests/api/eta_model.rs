//! The ETA from the model (docs/fairness.md, section "Stock-aware positions") forecast
//! (api/src/outlook/refresh.rs) and the drop's `expected_abandon`, its prior.

use crate::helpers::*;
use redis::AsyncCommands;
use serde_json::{json, Value};

#[tokio::test]
async fn expected_abandon_is_validated_stored_and_mirrored() {
    let app = spawn_app().await;
    let m = app.manager();
    for bad in [json!(-0.1), json!(1.5), json!("half")] {
        let spec = json!({
            "product_name": "x", "stock": 5, "starts_at": "2020-01-01T00:00:00Z",
            "admission_rate": 10, "expected_abandon": bad,
        });
        let (s, b) = app
            .call("POST", "/v1/admin/drops", Some(&m), Some(spec))
            .await;
        assert_eq!(s, 422, "expected_abandon {bad}: {b}");
    }
    let cfg = |d: vq_core::domain::DropId| {
        let (mut r, k) = (app.redis.clone(), app.keys.drop(d).cfg());
        async move {
            let v: Option<String> = r.hget(k, "expected_abandon").await.unwrap();
            v
        }
    };
    let plain = app.create_drop(json!({})).await;
    assert_eq!(cfg(plain).await.as_deref(), Some("0"));
    let d = app.create_drop(json!({ "expected_abandon": 0.3 })).await;
    assert_eq!(cfg(d).await.as_deref(), Some("0.3"));
    let path = format!("/v1/admin/drops/{}", d.get());
    let (s, b) = app
        .call(
            "PATCH",
            &path,
            Some(&m),
            Some(json!({ "expected_abandon": 2 })),
        )
        .await;
    assert_eq!(
        (s, b["fields"]["expected_abandon"].is_string()),
        (422, true),
        "{b}"
    );
    assert_eq!(cfg(d).await.as_deref(), Some("0.3"), "unchanged");
    let (s, b) = app
        .call(
            "PATCH",
            &path,
            Some(&m),
            Some(json!({ "expected_abandon": 0.1 })),
        )
        .await;
    assert_eq!((s, b["expected_abandon"].clone()), (200, json!(0.1)), "{b}");
    assert_eq!(cfg(d).await.as_deref(), Some("0.1"));
    app.cleanup().await;
}

/// `eta_s` and `eta_hi_s` of a position message or HTTP place.
fn eta(m: &Value) -> (f64, f64) {
    (
        m["eta_s"].as_f64().unwrap(),
        m["eta_hi_s"].as_f64().unwrap(),
    )
}

#[tokio::test]
async fn positions_carry_the_model_eta_when_abandoned_tokens_hold_the_cap() {
    let app = spawn_app().await;
    // Two units, factor 1: the first two buyers' tokens fill the cap; they never buy, so
    // the next buyers wait for those tokens to expire (60 s), whatever the admission rate.
    let drop = app
        .create_drop(json!({ "stock": 2, "overbook": 1.0, "admission_rate": 10,
                             "token_ttl_s": 60 }))
        .await;
    let shoppers: Vec<Shopper> = (0..4).map(|_| app.shopper()).collect();
    for s in &shoppers {
        assert_eq!(app.join(drop, s).await.0, 200);
    }
    let mut adm = app.admitter();
    assert_eq!(adm.tick_drop(drop).await.unwrap().admitted.len(), 2);
    let fourth = &shoppers[3];
    // The forecast is refreshed in the background after the tick was heard.
    let mut place = Value::Null;
    for _ in 0..50 {
        adm.tick_drop(drop).await.unwrap();
        place = app.place(drop, fourth).await.1;
        if eta(&place).0 > 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // One ahead at 10/s would read 0.1 s; the model waits out the two tokens.
    assert_eq!(place["ahead"], 1, "{place}");
    let (c, hi) = eta(&place);
    assert!((55.0..=60.1).contains(&c), "{place}");
    assert!(hi >= c, "{place}");
    // A socket's first position carries the same forecast.
    let mut ws = app.ws(drop, fourth).await;
    let m = next_of(&mut ws, "position", 3000).await.unwrap();
    assert!((55.0..=60.1).contains(&eta(&m).0), "{m}");
    app.cleanup().await;
}
