//! The events channel: the tick admit.lua publishes on every call and the sold-out event
//! purchase.lua publishes when it takes the last unit.

use crate::env::*;
use serde_json::json;
use vq_core::domain::{AdmitStatus, AdmittedBuyer, DropEvent, Tick};

/// The Rust reader's type must accept exactly what the scripts publish.
#[tokio::test]
async fn published_events_parse_as_drop_event() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(2);
    e.join_all(&us).await;
    let mut ps = e.subscribe().await;
    e.admit_p(1, "ab12").await;
    e.clock.set(T0 + TTL);
    e.admit_p(0, "ab13").await;
    let events = e.events(&mut ps).await;
    let parsed: Vec<DropEvent> = events
        .into_iter()
        .map(|v| serde_json::from_value(v).expect("admit.lua publishes a DropEvent"))
        .collect();
    let admitted = DropEvent::Tick(Tick {
        status: AdmitStatus::Ok,
        admitted_total: 1,
        queue_len: 1,
        rate: 1000,
        now: T0,
        live: 1,
        remaining: 100,
        open: 0,
        admitted: vec![AdmittedBuyer(
            us[0].to_string(),
            "ab12.1".into(),
            T0 + TTL,
            1,
        )],
        expired: vec![],
        left_total: 0,
        left: vec![],
        lease: None,
    });
    assert_eq!(parsed[0], admitted);
    let DropEvent::Tick(t) = &parsed[1] else {
        panic!("second event is a tick: {parsed:?}")
    };
    assert_eq!(t.expired, vec![us[0].to_string()]);
    assert!(t.admitted.is_empty());
    e.cleanup().await;
}

#[tokio::test]
async fn admit_publishes_one_tick_event_per_call() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(3);
    e.join_all(&us).await;
    let mut ps = e.subscribe().await;

    e.admit_p(2, "cc33").await;
    let events = e.events(&mut ps).await;
    assert_eq!(
        events,
        vec![json!({
            "type": "tick",
            "now": T0,
            "status": "ok",
            "admitted_total": 2,
            "queue_len": 1,
            "rate": 1000,
            "live": 2,
            "remaining": 100,
            "open": 0,
            "left_total": 0,
            "admitted": [
                [us[0].to_string(), "cc33.1", T0 + TTL, 1],
                [us[1].to_string(), "cc33.2", T0 + TTL, 2],
            ],
        })]
    );

    // Expired holders are announced; a tick without admissions has no "admitted" field.
    e.clock.set(T0 + TTL);
    e.set_cfg("state", "paused").await;
    e.admit(10).await;
    let events = e.events(&mut ps).await;
    assert_eq!(events.len(), 1);
    let ev = &events[0];
    assert_eq!(ev["type"], "tick");
    assert_eq!(ev["status"], "paused");
    assert_eq!(ev["admitted_total"], 2);
    assert_eq!(ev["expired"], json!([us[0].to_string(), us[1].to_string()]));
    assert!(ev.get("admitted").is_none(), "{ev}");
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_of_the_last_unit_publishes_sold_out() {
    let mut e = Env::with(DropCfg {
        limit: 5,
        stock: 3,
        ..Default::default()
    })
    .await;
    let (a, b) = (user(), user());
    let tokens = e.admit_users(&[a, b]).await;
    let mut ps = e.subscribe().await;

    e.clock.set(T0 + 100);
    assert_eq!(e.purchase(&tokens[0], a, 2).await, reserved(1, 2));
    e.clock.set(T0 + 200);
    assert_eq!(e.purchase(&tokens[1], b, 1).await, reserved(0, 1));

    assert_eq!(
        e.events(&mut ps).await,
        vec![json!({"type": "sold_out", "now": T0 + 200})],
        "only the purchase that empties the stock announces it"
    );
    e.cleanup().await;
}
