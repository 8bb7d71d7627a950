//! The honest side of `loadtest abuse`: buyers who join over HTTP, poll their place until
//! admitted and buy one unit, timing the join and the purchase.

use super::attacks::Tally;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use vq_core::auth::{JwtKeys, Role};
use vq_core::domain::{DropId, UserId};

pub struct Honest {
    pub join_ms: Vec<f64>,
    pub purchase_ms: Vec<f64>,
    pub bought: usize,
    pub tally: Tally,
}

pub async fn create_drop(
    http: &reqwest::Client,
    api: &str,
    manager: &str,
    stock: usize,
) -> anyhow::Result<DropId> {
    let body = json!({ "product_name": "Abuse drop", "price_cents": 100, "stock": stock,
        "starts_at": "2020-01-01T00:00:00Z", "per_user_limit": 1, "admission_rate": 2000,
        "max_holders": 5000, "token_ttl_s": 60 });
    let v: Value = http
        .post(format!("{api}/v1/admin/drops"))
        .bearer_auth(manager)
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    Ok(DropId::new(v["id"].as_i64().unwrap_or(0))?)
}

/// One honest buyer: join, poll its place until admitted, buy one.
async fn buyer(
    http: reqwest::Client,
    api: String,
    drop: DropId,
    jwt: String,
) -> (Option<f64>, Option<f64>, Vec<u16>) {
    let mut seen = Vec::new();
    let url = format!("{api}/v1/drops/{drop}/queue");
    let t = Instant::now();
    let Ok(r) = http.post(&url).bearer_auth(&jwt).send().await else {
        return (None, None, seen);
    };
    seen.push(r.status().as_u16());
    let join = t.elapsed().as_secs_f64() * 1000.0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let token = loop {
        let Ok(r) = http.get(&url).bearer_auth(&jwt).send().await else {
            break None;
        };
        seen.push(r.status().as_u16());
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if v["status"] == "admitted" {
            break v["token"].as_str().map(str::to_owned);
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let Some(token) = token else {
        return (Some(join), None, seen);
    };
    let t = Instant::now();
    let body = json!({ "token": token, "quantity": 1 });
    let r = http
        .post(format!("{api}/v1/drops/{drop}/purchase"))
        .bearer_auth(&jwt)
        .json(&body)
        .send()
        .await;
    let ok = r.as_ref().ok().map(|r| r.status().as_u16());
    seen.extend(ok.iter());
    let bought = (ok == Some(201)).then(|| t.elapsed().as_secs_f64() * 1000.0);
    (Some(join), bought, seen)
}

pub async fn honest(
    http: &crate::vq_path::Clients,
    api: &str,
    drop: DropId,
    jwt: &JwtKeys,
    n: usize,
) -> Honest {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let token = jwt.issue(UserId(uuid::Uuid::new_v4()), Role::Shopper, 3600);
            tokio::spawn(buyer(http.pick(i).clone(), api.to_string(), drop, token))
        })
        .collect();
    let mut h = Honest {
        join_ms: vec![],
        purchase_ms: vec![],
        bought: 0,
        tally: Tally::default(),
    };
    for t in tasks {
        let Ok((j, p, seen)) = t.await else { continue };
        h.join_ms.extend(j);
        if let Some(p) = p {
            h.purchase_ms.push(p);
            h.bought += 1;
        }
        seen.into_iter().for_each(|s| h.tally.add(Some(s)));
    }
    h
}
