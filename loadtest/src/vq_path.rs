//! VitaQueue's full purchase path as a buyer sees it: a drop created by the admin API, N
//! buyers who joined the waiting room over HTTP and were admitted by the real admission
//! script, then N `POST /v1/drops/{id}/purchase` calls with their tokens.
//! Setup (create, join, admit, collect tokens) is not part of the measured window.

use crate::harness::{drive, Attempt, Measured};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vq_core::auth::{JwtKeys, Role};
use vq_core::domain::{DropId, UserId};

/// An admitted buyer ready to purchase.
#[derive(Clone)]
pub struct Buyer {
    pub user: UserId,
    pub jwt: String,
    pub token: String,
}

pub struct Prepared {
    pub drop: DropId,
    pub stock: i64,
    pub buyers: Vec<Buyer>,
}

/// HTTP client with enough idle connections kept for `c` concurrent tasks.
pub fn client(c: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(c)
        .timeout(Duration::from_secs(30))
        .build()?)
}

async fn call(req: reqwest::RequestBuilder, want: u16, what: &str) -> anyhow::Result<Value> {
    let res = req.send().await?;
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status == want, "{what}: HTTP {status} {body}");
    Ok(body)
}

/// Creates a drop that admits everyone at once (rate and holder caps at n, and an overbook
/// factor of n / stock so the stock-aware cap lets every attempt through: the strategies
/// compare the purchase path, sold-out answers included, not admission), joins `n` fresh
/// buyers, waits until admission has issued all their tokens and collects them via
/// `GET /v1/drops/{id}/queue`.
pub async fn prepare(
    http: &reqwest::Client,
    api: &str,
    jwt: &JwtKeys,
    n: usize,
    stock: i64,
    c: usize,
    limit: Duration,
) -> anyhow::Result<Prepared> {
    let cap = n.clamp(1, 1_000_000);
    let manager = jwt.issue(UserId(uuid::Uuid::new_v4()), Role::Manager, 3600);
    let body = json!({
        "product_name": "strategy comparison",
        "price_cents": 100,
        "stock": stock,
        "starts_at": chrono::Utc::now().to_rfc3339(),
        "per_user_limit": 1,
        "admission_rate": cap,
        "max_holders": cap,
        "token_ttl_s": 3600,
        "overbook": (n as f64 / stock.max(1) as f64).clamp(1.0, 100.0),
    });
    let req = http
        .post(format!("{api}/v1/admin/drops"))
        .bearer_auth(&manager);
    let created = call(req.json(&body), 201, "creating the drop").await?;
    let drop = DropId::new(created["id"].as_i64().unwrap_or(0))?;
    let users: Vec<(UserId, String)> = (0..n)
        .map(|_| {
            let u = UserId(uuid::Uuid::new_v4());
            (u, jwt.issue(u, Role::Shopper, 3600))
        })
        .collect();
    let users = Arc::new(users);
    let queue = format!("{api}/v1/drops/{}/queue", drop.get());
    // Setup reuses the measurement loop for its bounded concurrency; "Bought" = step done.
    let (h, q, us) = (http.clone(), queue.clone(), users.clone());
    let joined = drive(n, c, limit, move |i| {
        let req = h.post(&q).bearer_auth(&us[i].1);
        async move { call(req, 200, "joining").await.map(|_| Attempt::Bought) }
    })
    .await;
    anyhow::ensure!(
        joined.bought == n,
        "only {} of {n} buyers joined: {:?}",
        joined.bought,
        joined.first_error
    );
    wait_admitted(http, api, &manager, drop, n as u64, limit).await?;
    let tokens = Arc::new(std::sync::Mutex::new(vec![String::new(); n]));
    let (h, us, tk) = (http.clone(), users.clone(), tokens.clone());
    let got = drive(n, c, limit, move |i| {
        let (req, tk) = (h.get(&queue).bearer_auth(&us[i].1), tk.clone());
        async move {
            let v = call(req, 200, "reading the place").await?;
            let token = v["token"].as_str().unwrap_or_default();
            anyhow::ensure!(v["status"] == "admitted", "not admitted: {v}");
            tk.lock().expect("tokens")[i] = token.to_string();
            Ok(Attempt::Bought)
        }
    })
    .await;
    anyhow::ensure!(got.bought == n, "tokens: {:?}", got.first_error);
    let tokens = std::mem::take(&mut *tokens.lock().expect("tokens"));
    let buyers = users
        .iter()
        .zip(tokens)
        .map(|((user, jwt), token)| Buyer {
            user: *user,
            jwt: jwt.clone(),
            token,
        })
        .collect();
    Ok(Prepared {
        drop,
        stock,
        buyers,
    })
}

/// Polls the admin view until `n` buyers were admitted (the admission role runs on its own
/// ticks, so this is the only way to know setup is complete).
async fn wait_admitted(
    http: &reqwest::Client,
    api: &str,
    manager: &str,
    drop: DropId,
    n: u64,
    limit: Duration,
) -> anyhow::Result<()> {
    let until = Instant::now() + limit;
    loop {
        let req = http
            .get(format!("{api}/v1/admin/drops/{}", drop.get()))
            .bearer_auth(manager);
        let v = call(req, 200, "reading the drop").await?;
        let admitted = v["stats"]["admitted_total"].as_u64().unwrap_or(0);
        if admitted >= n {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < until,
            "only {admitted} of {n} buyers admitted in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fires every buyer's purchase, `c` at a time: 201 is a purchase, 409 `sold_out` or
/// `insufficient_stock` a correct rejection, anything else an error.
pub async fn fire(
    http: &reqwest::Client,
    api: &str,
    p: &Prepared,
    c: usize,
    limit: Duration,
) -> Measured {
    let url = format!("{api}/v1/drops/{}/purchase", p.drop.get());
    let buyers = Arc::new(p.buyers.clone());
    let http = http.clone();
    drive(buyers.len(), c, limit, move |i| {
        let b = &buyers[i];
        let req = http
            .post(&url)
            .bearer_auth(&b.jwt)
            .json(&json!({ "token": b.token, "quantity": 1 }));
        async move {
            let res = req.send().await?;
            let status = res.status().as_u16();
            if status == 201 {
                return Ok(Attempt::Bought);
            }
            let body: Value = res.json().await.unwrap_or(Value::Null);
            match body["code"].as_str() {
                Some("sold_out" | "insufficient_stock") => Ok(Attempt::Rejected),
                _ => anyhow::bail!("purchase: HTTP {status} {body}"),
            }
        }
    })
    .await
}
