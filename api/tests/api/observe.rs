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

async fn metrics_text(app: &TestApp) -> String {
    app.http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn made_up_methods_and_paths_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    // Every label combination the flood can reach, once, before measuring.
    for m in ["GET", "BREW", "PATCH"] {
        let req = app.http.request(m.parse().unwrap(), app.url("/nowhere/0"));
        req.send().await.unwrap();
        let req = app.http.request(m.parse().unwrap(), app.url("/healthz"));
        req.send().await.unwrap();
    }
    let before = metrics_text(&app).await.len();
    let flood = (0..2000).map(|i| {
        let method = format!("X{i}FOO");
        let req = app.http.request(
            method.parse().unwrap(),
            app.url(&format!("/made/up/{i}/{}", uuid::Uuid::new_v4())),
        );
        async move { req.send().await.map(|r| r.status().as_u16()) }
    });
    let statuses = futures::future::join_all(flood).await;
    assert!(
        statuses.iter().all(|s| matches!(s, Ok(404 | 405))),
        "{statuses:?}"
    );
    let after = metrics_text(&app).await;
    assert!(!after.contains("X1FOO") && !after.contains("/made/up"));
    assert!(
        after.contains("method=\"other\""),
        "made-up methods are `other`"
    );
    // Other tests in this process may add a few series meanwhile; the flood adds none.
    let grown = after.len().saturating_sub(before);
    assert!(grown < 16 * 1024, "/metrics grew by {grown} bytes");
    app.cleanup().await;
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/login",
        "/signup",
        "/drops/1",
        "/orders",
        "/console",
        "/healthz",
        "/v1/nowhere",
    ] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        let h = res.headers();
        let get = |n: &str| {
            h.get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(get("x-frame-options"), "DENY", "{path}");
        assert_eq!(get("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(get("referrer-policy"), "no-referrer", "{path}");
        let csp = get("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        let page = res.text().await.unwrap();
        if page.starts_with("<!doctype") || page.starts_with("<!DOCTYPE") {
            // Each inline script is allowed by exactly its own hash.
            let inline =
                page.matches("<script>").count() + page.matches("<script type=\"module\">").count();
            assert_eq!(csp.matches("'sha256-").count(), inline, "{path}: {csp}");
            assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        } else {
            assert!(csp.starts_with("default-src 'none'"), "{path}: {csp}");
        }
    }
    app.cleanup().await;
}
