//! 5,000 concurrent buyers against a stock of 100 through the whole path: HTTP join,
//! admission controller, purchase script, stream, worker, PostgreSQL.

use crate::helpers::*;
use redis::AsyncCommands;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;

#[derive(Debug)]
enum End {
    Bought(String),
    Rejected(String),
}

async fn buyer(
    app: Arc<TestApp>,
    drop: vq_core::domain::DropId,
    s: Shopper,
    start: Arc<Barrier>,
) -> End {
    start.wait().await;
    let (mut st, mut b) = app.join(drop, &s).await;
    if st == 403 && b["code"] == "pow_required" {
        // 5,000 joins from one address within the minute: the adaptive proof of work asks
        // for a few bits, which this buyer solves as a browser would.
        (st, b) = join_solved(&app, drop, &s, &b["challenge"]).await;
    }
    if st != 200 {
        return End::Rejected(b["code"].as_str().unwrap_or("?").to_string());
    }
    let path = format!("/v1/drops/{drop}/queue");
    for _ in 0..600 {
        let (st, b) = app.call("GET", &path, Some(&s.token), None).await;
        match (st, b["status"].as_str()) {
            (200, Some("admitted")) => {
                let token = b["token"].as_str().unwrap().to_string();
                let (st, b) = app.purchase(drop, &s, &token, 1).await;
                return match st {
                    201 => End::Bought(token),
                    _ => End::Rejected(b["code"].as_str().unwrap_or("?").to_string()),
                };
            }
            (200, _) => {
                tokio::time::sleep(Duration::from_millis(100 + rand::random::<u64>() % 50)).await
            }
            _ => return End::Rejected(b["code"].as_str().unwrap_or("?").to_string()),
        }
    }
    End::Rejected("gave_up".into())
}

/// Solves the challenge off the async threads and joins with it.
async fn join_solved(
    app: &TestApp,
    drop: vq_core::domain::DropId,
    s: &Shopper,
    c: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let nonce = c["nonce"].as_str().unwrap_or("").to_string();
    let bits = c["difficulty"].as_u64().unwrap_or(0) as u32;
    let user = s.user;
    let n = nonce.clone();
    let counter = tokio::task::spawn_blocking(move || vq_core::pow::solve(&n, user, drop, bits))
        .await
        .unwrap();
    let res = app
        .http
        .post(app.url(&format!("/v1/drops/{drop}/queue")))
        .bearer_auth(&s.token)
        .header("X-VQ-Pow", format!("{nonce}.{counter}"))
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_concurrent_buyers_never_oversell_and_each_sale_is_one_order() {
    const BUYERS: usize = 5000;
    const STOCK: i64 = 100;
    let _heavy = HEAVY.lock().await;
    let app = Arc::new(spawn_app().await);
    let drop = app
        .create_drop(json!({ "stock": STOCK, "admission_rate": 2000, "max_holders": 500, "token_ttl_s": 30 }))
        .await;
    let adm = app.start_admission(20);
    let w1 = app.run_worker(app.worker("w1", 5000, 200).await);
    let w2 = app.run_worker(app.worker("w2", 5000, 200).await);

    let start = Arc::new(Barrier::new(BUYERS));
    let tasks: Vec<_> = (0..BUYERS)
        .map(|_| tokio::spawn(buyer(app.clone(), drop, app.shopper(), start.clone())))
        .collect();
    let mut bought = HashSet::new();
    let mut rejected: HashMap<String, usize> = HashMap::new();
    for t in tasks {
        match t.await.unwrap() {
            End::Bought(token) => assert!(bought.insert(token)),
            End::Rejected(code) => *rejected.entry(code).or_default() += 1,
        }
    }
    assert_eq!(
        bought.len() as i64,
        STOCK,
        "every unit sold exactly once; rejections {rejected:?}"
    );
    assert_eq!(
        rejected.keys().collect::<Vec<_>>(),
        vec!["sold_out"],
        "the only other outcome is sold_out"
    );
    let k = app.keys.drop(drop);
    let mut r = app.redis.clone();
    let stock: i64 = r.get(k.stock()).await.unwrap();
    assert_eq!(stock, 0, "never below zero");
    let per_user: HashMap<String, i64> = r.hgetall(k.buyers()).await.unwrap();
    assert_eq!(per_user.len() as i64, STOCK);
    assert!(
        per_user.values().all(|&q| q == 1),
        "per-user limit of 1 held"
    );

    app.wait_orders(drop, STOCK).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tokens: Vec<String> = sqlx::query_scalar("SELECT token FROM orders WHERE drop_id = $1")
        .bind(drop.get())
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(tokens.len() as i64, STOCK, "orders == successful purchases");
    assert_eq!(
        tokens.into_iter().collect::<HashSet<_>>(),
        bought,
        "no duplicate, none lost"
    );
    for h in [adm, w1, w2] {
        h.abort();
    }
    Arc::try_unwrap(app)
        .ok()
        .expect("no other app handle")
        .cleanup()
        .await;
}
