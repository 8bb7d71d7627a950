//! HTTP helpers: tokens, raw calls, and the drop path's common steps (create a drop, join,
//! get admitted, buy) plus what PostgreSQL and Redis hold afterwards.

use super::{Shopper, TestApp};
use serde_json::{json, Value};
use std::time::Duration;
use vq_core::auth::Role;
use vq_core::domain::{DropId, UserId};

impl TestApp {
    pub fn manager(&self) -> String {
        self.jwt
            .issue(UserId(uuid::Uuid::new_v4()), Role::Manager, 3600)
    }

    pub fn shopper(&self) -> Shopper {
        let user = UserId(uuid::Uuid::new_v4());
        Shopper {
            user,
            token: self.jwt.issue(user, Role::Shopper, 3600),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    /// Sends a request and returns (status, JSON body or Null).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method.parse().unwrap(), self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A drop live since a minute ago with the given overrides.
    pub async fn create_drop(&self, overrides: Value) -> DropId {
        let mut spec = json!({
            "product_name": "Test Sneaker",
            "price_cents": 12900,
            "stock": 10,
            "starts_at": "2020-01-01T00:00:00Z",
            "per_user_limit": 1,
            "admission_rate": 1000,
            "max_holders": 1000,
            "token_ttl_s": 60,
            "prequeue_s": 0,
        });
        for (k, v) in overrides.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let (status, body) = self
            .call("POST", "/v1/admin/drops", Some(&self.manager()), Some(spec))
            .await;
        assert_eq!(status, 201, "create drop: {body}");
        DropId::new(body["id"].as_i64().unwrap()).unwrap()
    }

    /// Joins over HTTP and returns the response body.
    pub async fn join(&self, drop: DropId, s: &Shopper) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/v1/drops/{drop}/queue"),
            Some(&s.token),
            None,
        )
        .await
    }

    pub async fn purchase(&self, drop: DropId, s: &Shopper, token: &str, qty: i64) -> (u16, Value) {
        let body = json!({ "token": token, "quantity": qty });
        self.call(
            "POST",
            &format!("/v1/drops/{drop}/purchase"),
            Some(&s.token),
            Some(body),
        )
        .await
    }

    /// The account's place in the drop's waiting room (`GET /v1/drops/{id}/queue`).
    pub async fn place(&self, drop: DropId, s: &Shopper) -> (u16, Value) {
        self.call(
            "GET",
            &format!("/v1/drops/{drop}/queue"),
            Some(&s.token),
            None,
        )
        .await
    }

    /// The purchase token of an account that has been admitted.
    pub async fn admitted_token(&self, drop: DropId, s: &Shopper) -> String {
        let (st, b) = self.place(drop, s).await;
        assert_eq!((st, b["status"].as_str()), (200, Some("admitted")), "{b}");
        b["token"].as_str().unwrap().to_string()
    }

    /// Joins, gets admitted and buys `qty`; returns the purchase token. Needs a drop whose
    /// holder cap and rate leave room for this buyer.
    pub async fn buy(&self, drop: DropId, s: &Shopper, qty: i64) -> String {
        let (st, b) = self.join(drop, s).await;
        assert_eq!(st, 200, "join: {b}");
        self.admitter().tick_drop(drop).await.unwrap();
        let token = self.admitted_token(drop, s).await;
        let (st, b) = self.purchase(drop, s, &token, qty).await;
        assert_eq!(st, 201, "purchase: {b}");
        token
    }

    pub async fn orders(&self, drop: DropId) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE drop_id = $1")
            .bind(drop.get())
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// Waits until PostgreSQL holds `n` orders for the drop (or panics after 15 s).
    pub async fn wait_orders(&self, drop: DropId, n: i64) {
        for _ in 0..300 {
            if self.orders(drop).await >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} orders, found {}", self.orders(drop).await);
    }

    pub async fn order_of(&self, s: &Shopper, token: &str) -> i64 {
        sqlx::query_scalar("SELECT id FROM orders WHERE token = $1 AND user_id = $2")
            .bind(token)
            .bind(s.user.0)
            .fetch_one(&self.db)
            .await
            .expect("order written")
    }

    pub async fn remaining(&self, drop: DropId) -> i64 {
        redis::AsyncCommands::get(&mut self.redis.clone(), self.keys.drop(drop).stock())
            .await
            .unwrap()
    }
}
