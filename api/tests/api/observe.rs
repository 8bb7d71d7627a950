//! Observability and shutdown: every metric the Grafana dashboard names is exported,
//! Debian's Prometheus scrapes the api, and SIGTERM drains sockets and in-flight purchases.

use crate::helpers::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use vq_core::config::Payment;

fn dashboard_metrics() -> BTreeSet<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../grafana/dashboards/vitaqueue.json"
    );
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names = BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            for (i, _) in expr.match_indices("vq_") {
                let name: String = expr[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                names.insert(name.trim_end_matches("_bucket").to_string());
            }
        }
    }
    names
}

#[tokio::test]
async fn every_metric_the_dashboard_names_is_exported() {
    let app = spawn_app().await;
    let drop = app
        .create_drop(json!({ "stock": 5, "token_ttl_s": 5 }))
        .await;
    let s = app.shopper();
    let mut ws = app.ws(drop, &s).await;
    next_of(&mut ws, "position", 2000).await.unwrap();
    app.join(drop, &app.shopper()).await;
    app.admitter().tick_all().await.unwrap();
    let token = next_of(&mut ws, "admitted", 3000).await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.purchase(drop, &s, &token, 1).await.0, 201);
    app.flush_orders().await;
    let id = app.order_of(&s, &token).await;
    let (st, _) = app
        .call(
            "POST",
            &format!("/v1/orders/{id}/pay"),
            Some(&s.token),
            Some(json!({ "payment_method": "pm_card_ok" })),
        )
        .await;
    assert_eq!(st, 200);
    app.scheduler(Payment::default()).tick().await.unwrap();
    app.admitter().tick_all().await.unwrap();

    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let names = dashboard_metrics();
    assert!(names.len() >= 15, "{names:?}");
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !text.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "dashboard metrics missing from /metrics: {missing:?}"
    );
    // Drop ids restart in every test database and the recorder is process-wide, so only
    // the series' presence is this test's own; its value may be another test's drop.
    assert!(
        text.contains(&format!("vq_drop_remaining{{drop=\"{drop}\"}}")),
        "live gauge per drop"
    );
    assert!(text.contains("vq_purchases_total{outcome=\"reserved\"}"));
    app.cleanup().await;
}

#[tokio::test]
async fn prometheus_scrapes_the_api() {
    let app = spawn_app().await;
    app.create_drop(json!({})).await;
    let dir = std::env::temp_dir().join(format!("vq-prom-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: vitaqueue\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
        app.port
    );
    std::fs::write(dir.join("prometheus.yml"), cfg).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut prom = std::process::Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("Debian's prometheus (apt-get install prometheus; scripts/test.sh does)");
    let query = |q: &str| format!("http://127.0.0.1:{port}/api/v1/query?query={q}");
    let mut scraped = None;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Ok(res) = app
            .http
            .get(query("up%7Bjob%3D%22vitaqueue%22%7D"))
            .send()
            .await
        else {
            continue;
        };
        let v: Value = res.json().await.unwrap_or(Value::Null);
        if v["data"]["result"][0]["value"][1] == "1" {
            scraped = Some(v);
            break;
        }
    }
    let series: Value = match scraped {
        Some(_) => app
            .http
            .get(query("vq_http_requests_total"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
        None => Value::Null,
    };
    let _ = prom.kill();
    let _ = prom.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        series["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "prometheus never scraped the api: {series}"
    );
    app.cleanup().await;
}
