//! Webhook delivery in `vitaqueue worker` processes: one is killed with SIGKILL in the
//! middle of deliveries and a second one finishes them. Nothing is lost; what the dead one
//! had in flight is sent again once its lease expires (receivers deduplicate on the id).

use crate::helpers::receiver::{Answer, Receiver};
use crate::helpers::*;
use crate::procs::vitaqueue;
use crate::webhooks::register;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

fn env() -> Vec<(&'static str, String)> {
    vec![
        ("VQ_WEBHOOKS__ALLOW_PRIVATE", "true".into()),
        ("VQ_WEBHOOKS__RETRY_BASE_MS", "250".into()),
        ("VQ_WEBHOOKS__TIMEOUT", "2000".into()),
        ("VQ_WEBHOOKS__POLL", "50".into()),
    ]
}

#[tokio::test]
async fn killing_the_worker_mid_delivery_loses_no_event() {
    let app = spawn_app_tuned(Opts::default(), |s| s.webhooks.allow_private = true).await;
    let rx = Receiver::start(Arc::new(|_| Answer::Stall(Duration::from_millis(300)))).await;
    let types = json!(["order.reserved", "drop.paused", "drop.resumed"]);
    let (_, secret) = register(&app, &rx.url, types).await;
    let drop = app.create_drop(json!({ "stock": 10 })).await;
    for _ in 0..10 {
        let s = app.shopper();
        app.buy(drop, &s, 1).await;
    }
    let m = app.manager();
    for _ in 0..5 {
        for step in ["pause", "resume"] {
            let path = format!("/v1/admin/drops/{drop}/{step}");
            assert_eq!(app.call("POST", &path, Some(&m), None).await.0, 200);
        }
    }
    // The first worker writes the orders (and their order.reserved events) and delivers.
    let mut first = vitaqueue("worker", &app.settings, "wh-w1", &env());
    let t0 = std::time::Instant::now();
    while rx.processed().len() < 3 || rx.busy.load(Ordering::SeqCst) == 0 {
        assert!(first.is_running(), "the worker exited; see its log");
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no deliveries started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill9();
    let at_kill = rx.processed().len();
    assert!(at_kill < 20, "killed before the end: {at_kill}");
    let _second = vitaqueue("worker", &app.settings, "wh-w2", &env());
    let got = rx.wait_processed(20, Duration::from_secs(60)).await;
    assert_eq!(got.len(), 20);
    let now = chrono::Utc::now().timestamp();
    for h in rx.hits() {
        vitaqueue::webhooks::signature::verify(&secret, &h.signature, &h.body, now, 300).unwrap();
    }
    let drop_types: Vec<&str> = (got.iter())
        .filter(|e| e["type"].as_str().unwrap().starts_with("drop."))
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        drop_types,
        ["drop.paused", "drop.resumed"].repeat(5),
        "in order"
    );
    let orders = got.iter().filter(|e| e["type"] == "order.reserved").count();
    assert_eq!(orders, 10);
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE state <> 'delivered'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(left, 0, "every delivery recorded as delivered");
    app.cleanup().await;
}

#[tokio::test]
async fn the_cli_verifies_a_signature() {
    let dir = crate::procs::temp_dir("whverify");
    let body = dir.join("body.json");
    std::fs::write(&body, br#"{"id":"e1","type":"order.paid"}"#).unwrap();
    let now = chrono::Utc::now().timestamp();
    let header =
        vitaqueue::webhooks::signature::header(&["whsec_cli"], now, &std::fs::read(&body).unwrap());
    let run = |secret: &str, header: &str| {
        std::process::Command::new(crate::procs::vitaqueue_bin())
            .args([
                "webhook", "verify", "--secret", secret, "--header", header, "--body",
            ])
            .arg(&body)
            .output()
            .unwrap()
    };
    let ok = run("whsec_cli", &header);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("valid"));
    assert_eq!(run("whsec_other", &header).status.code(), Some(1));
    let stale = vitaqueue::webhooks::signature::header(
        &["whsec_cli"],
        now - 3600,
        &std::fs::read(&body).unwrap(),
    );
    assert_eq!(run("whsec_cli", &stale).status.code(), Some(1), "too old");
    std::fs::write(&body, br#"{"id":"e1","type":"order.refunded"}"#).unwrap();
    assert_eq!(
        run("whsec_cli", &header).status.code(),
        Some(1),
        "body changed"
    );
}
