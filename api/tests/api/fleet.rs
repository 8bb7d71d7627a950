//! A buyer that talks to several api nodes: it waits in the WebSocket room of one node
//! and, when that node disappears, reconnects to the next one, recording the place
//! (`index` in the drop's admission order) each connection reports, so a test can check
//! that a reconnect keeps the place. Purchases are retried on another node after a
//! transport error and after a 5xx (a Redis outage), with the same token.

use crate::helpers::{next_json, Shopper, Ws};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vq_core::domain::DropId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Bought(String),
    /// The purchase reply was lost (node or Redis died) and the retry found the token
    /// used: bought if and only if the order exists.
    MaybeBought(String),
    /// A reason code (sold_out, closed, …) or an error.
    Other(String),
}

#[derive(Debug, Clone)]
pub struct Report {
    pub user: String,
    pub end: End,
    /// The `index` the first exact position of each connection reported.
    pub indexes: Vec<u64>,
    /// Connections after the first (the node went away).
    pub reconnects: u32,
    /// Admitted while disconnected: the reconnect's join returned the token itself.
    pub admitted_on_reconnect: bool,
    pub purchase_retries: u32,
    /// Per reconnect: time from losing the socket to the next one being open (ms).
    pub gaps_ms: Vec<u64>,
}

pub struct Nodes {
    pub ports: Vec<u16>,
    pub http: reqwest::Client,
}

enum Conn {
    Ws(Box<Ws>),
    Refused(String),
    Down,
}

async fn connect(port: u16, drop: DropId, jwt: &str) -> Conn {
    let url = format!("ws://127.0.0.1:{port}/v1/drops/{drop}/room");
    match tokio_tungstenite::connect_async(crate::helpers::ws_request(&url, jwt)).await {
        Ok((ws, _)) => Conn::Ws(Box::new(ws)),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) if res.status().as_u16() < 500 => {
            let body: Value = res
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Conn::Refused(body["code"].as_str().unwrap_or("http_error").to_string())
        }
        Err(_) => Conn::Down,
    }
}

pub async fn buyer(
    nodes: Arc<Nodes>,
    first: usize,
    drop: DropId,
    s: Shopper,
    within: Duration,
) -> Report {
    let t0 = Instant::now();
    let mut r = Report {
        user: s.user.to_string(),
        end: End::Other("timed_out".into()),
        indexes: Vec::new(),
        reconnects: 0,
        admitted_on_reconnect: false,
        purchase_retries: 0,
        gaps_ms: Vec::new(),
    };
    let mut lost_at: Option<Instant> = None;
    let mut cur = first;
    let mut connections = 0;
    let token = 'room: loop {
        if t0.elapsed() > within {
            return r;
        }
        let mut ws = match connect(nodes.ports[cur], drop, &s.token).await {
            Conn::Ws(ws) => ws,
            Conn::Refused(code) => {
                r.end = End::Other(code);
                return r;
            }
            Conn::Down => {
                cur = (cur + 1) % nodes.ports.len();
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        connections += 1;
        r.reconnects = connections - 1;
        if let Some(t) = lost_at.take() {
            r.gaps_ms.push(t.elapsed().as_millis() as u64);
        }
        let mut first_msg = true;
        loop {
            let Some(m) = next_json(&mut ws, 30_000).await else {
                // The node went away (or went silent): try the next one.
                lost_at = Some(Instant::now());
                cur = (cur + 1) % nodes.ports.len();
                continue 'room;
            };
            match m["type"].as_str() {
                Some("position") => {
                    if let (true, Some(i)) = (first_msg, m["index"].as_u64()) {
                        r.indexes.push(i);
                    }
                }
                Some("admitted") => {
                    r.admitted_on_reconnect = first_msg && connections > 1;
                    break 'room m["token"].as_str().unwrap_or_default().to_string();
                }
                Some(other) => {
                    r.end = End::Other(other.to_string());
                    return r;
                }
                None => {}
            }
            first_msg = false;
        }
    };
    r.end = purchase(
        &nodes,
        &mut cur,
        drop,
        &s,
        &token,
        &mut r.purchase_retries,
        t0,
        within,
    )
    .await;
    r
}

#[allow(clippy::too_many_arguments)]
async fn purchase(
    nodes: &Nodes,
    cur: &mut usize,
    drop: DropId,
    s: &Shopper,
    token: &str,
    retries: &mut u32,
    t0: Instant,
    within: Duration,
) -> End {
    let mut uncertain = false;
    while t0.elapsed() < within {
        let url = format!(
            "http://127.0.0.1:{}/v1/drops/{drop}/purchase",
            nodes.ports[*cur]
        );
        let res = nodes
            .http
            .post(url)
            .bearer_auth(&s.token)
            .json(&json!({ "token": token, "quantity": 1 }))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        let (status, body) = match res {
            Ok(res) => {
                let st = res.status().as_u16();
                (st, res.json::<Value>().await.unwrap_or(Value::Null))
            }
            Err(_) => {
                // Sent but unanswered: it may have gone through.
                uncertain = true;
                *cur = (*cur + 1) % nodes.ports.len();
                *retries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let code = body["code"].as_str().unwrap_or("?").to_string();
        match status {
            201 => return End::Bought(token.to_string()),
            500..=599 => {
                uncertain = true;
                *retries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            409 if code == "token_used" && uncertain => return End::MaybeBought(token.to_string()),
            _ => return End::Other(code),
        }
    }
    End::Other("purchase_timed_out".into())
}
