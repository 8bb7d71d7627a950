//! A crowd for the autopilot tests: shoppers join a drop over HTTP up front, and one driver
//! buys, over HTTP, the token of every admitted shopper who is a buyer (read off the drop's
//! holders: no polling per shopper, so two cores carry a steady flow for a minute). The
//! others never buy: their tokens expire unused. Plus the checks that nothing was oversold.

use crate::helpers::*;
use futures::StreamExt;
use redis::AsyncCommands;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use vq_core::domain::DropId;

pub struct Crowd {
    stop: Arc<AtomicBool>,
    driver: Option<JoinHandle<()>>,
    /// Tokens bought (201), and when the last one was.
    pub bought: Arc<Mutex<Vec<String>>>,
    /// Purchase answers neither 201 nor a sold-out refusal.
    pub odd: Arc<Mutex<Vec<String>>>,
    pub started: Instant,
}

/// `n` shoppers join `drop`; shopper `i` buys when `buys(i)`.
pub async fn start(app: &TestApp, drop: DropId, n: usize, buys: impl Fn(usize) -> bool) -> Crowd {
    let shoppers: Vec<(Shopper, bool)> = (0..n).map(|i| (app.shopper(), buys(i))).collect();
    let joins = futures::stream::iter(shoppers.iter().map(|(s, _)| app.join(drop, s)))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    assert!(
        joins.iter().all(|(st, _)| *st == 200),
        "every shopper joined"
    );
    let by_user: HashMap<String, (String, bool)> = shoppers
        .into_iter()
        .map(|(s, b)| (s.user.to_string(), (s.token, b)))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let (bought, odd) = (Arc::default(), Arc::default());
    let d = Driver {
        http: app.http.clone(),
        url: app.url(&format!("/v1/drops/{drop}/purchase")),
        holders: app.keys.drop(drop).holders(),
        redis: app.redis.clone(),
        by_user: Arc::new(by_user),
        bought: Arc::clone(&bought),
        odd: Arc::clone(&odd),
    };
    let driver = Some(tokio::spawn(d.run(stop.clone())));
    Crowd {
        stop,
        driver,
        bought,
        odd,
        started: Instant::now(),
    }
}

impl Crowd {
    pub fn bought_n(&self) -> usize {
        self.bought.lock().unwrap().len()
    }

    pub async fn stop(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(d) = self.driver.take() {
            d.await.unwrap();
        }
        let odd = self.odd.lock().unwrap().clone();
        assert!(
            odd.is_empty(),
            "purchases answered 201 or sold_out: {odd:?}"
        );
        let b = self.bought.lock().unwrap().clone();
        b
    }
}

struct Driver {
    http: reqwest::Client,
    url: String,
    holders: String,
    redis: vq_core::RedisConn,
    by_user: Arc<HashMap<String, (String, bool)>>,
    bought: Arc<Mutex<Vec<String>>>,
    odd: Arc<Mutex<Vec<String>>>,
}

impl Driver {
    async fn run(mut self, stop: Arc<AtomicBool>) {
        let mut seen = HashSet::new();
        let mut inflight = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let holders: HashMap<String, String> =
                self.redis.hgetall(&self.holders).await.unwrap_or_default();
            for (user, token) in holders {
                let Some((jwt, true)) = self.by_user.get(&user).cloned() else {
                    continue;
                };
                if seen.insert(token.clone()) {
                    inflight.push(tokio::spawn(buy(
                        self.http.clone(),
                        self.url.clone(),
                        jwt,
                        token,
                        self.bought.clone(),
                        self.odd.clone(),
                    )));
                }
            }
            inflight.retain(|t: &JoinHandle<()>| !t.is_finished());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for t in inflight {
            let _ = t.await;
        }
    }
}

async fn buy(
    http: reqwest::Client,
    url: String,
    jwt: String,
    token: String,
    bought: Arc<Mutex<Vec<String>>>,
    odd: Arc<Mutex<Vec<String>>>,
) {
    let body = json!({ "token": token, "quantity": 1 });
    let res = http.post(url).bearer_auth(jwt).json(&body).send().await;
    let (status, text) = match res {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    };
    match status {
        201 => bought.lock().unwrap().push(token),
        409 if text.contains("sold_out") => {}
        _ => odd.lock().unwrap().push(format!("{status} {text}")),
    }
}

/// The drop's live rate (cfg `rate`).
pub async fn rate(app: &TestApp, drop: DropId) -> u32 {
    let r: Option<u32> = app
        .redis
        .clone()
        .hget(app.keys.drop(drop).cfg(), "rate")
        .await
        .unwrap();
    r.unwrap()
}

/// Waits until `ok(rate)`; how long that took, or None past `within`.
pub async fn rate_until(
    app: &TestApp,
    drop: DropId,
    within: Duration,
    ok: impl Fn(u32) -> bool,
) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if ok(rate(app, drop).await) {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Nothing oversold: stock never below zero, what was sold is exactly the 201s, each
/// account bought at most once, and PostgreSQL holds one order per 201 (once written).
pub async fn audit(app: &TestApp, drop: DropId, stock: i64, bought: &[String]) {
    let k = app.keys.drop(drop);
    let mut conn = app.redis.clone();
    let remaining: i64 = conn.get(k.stock()).await.unwrap();
    assert!(remaining >= 0, "stock below zero: {remaining}");
    assert_eq!(
        stock - remaining,
        bought.len() as i64,
        "sold == purchases answered 201"
    );
    let per_user: HashMap<String, i64> = conn.hgetall(k.buyers()).await.unwrap();
    assert!(per_user.values().all(|&q| q == 1), "per-account limit held");
    app.wait_orders(drop, bought.len() as i64).await;
    let tokens: Vec<String> = sqlx::query_scalar("SELECT token FROM orders WHERE drop_id = $1")
        .bind(drop.get())
        .fetch_all(&app.db)
        .await
        .unwrap();
    let (db, ok): (HashSet<_>, HashSet<_>) = (tokens.iter().collect(), bought.iter().collect());
    assert_eq!(tokens.len(), db.len(), "no duplicate order");
    assert_eq!(db, ok, "one order per purchase, none lost");
}

/// The drop's recorded rate changes' reasons, oldest first (from the history endpoint).
pub async fn reasons(app: &TestApp, drop: DropId) -> Vec<String> {
    let path = format!("/v1/admin/drops/{drop}/history");
    let (st, body) = app.call("GET", &path, Some(&app.manager()), None).await;
    assert_eq!(st, 200, "{body}");
    body["rate_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reason"].as_str().unwrap().to_string())
        .collect()
}
