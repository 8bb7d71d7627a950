//! One virtual buyer: opens the waiting-room WebSocket from its own loopback source
//! address, waits for its turn, then buys (or abandons, as configured) over HTTP or on the
//! socket itself (buyer/socket.rs).

mod socket;

use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vq_core::domain::{DropId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Bought; `paid` says how the payment went (None: not attempted or order not seen).
    Bought,
    Abandoned,
    /// Purchase or room rejected with this code (sold_out, closed, token_expired, …).
    Rejected(String),
    Error(String),
    TimedOut,
}

#[derive(Debug, Clone)]
pub struct BuyerResult {
    pub outcome: Outcome,
    pub token: Option<String>,
    /// WebSocket connect → first pushed message.
    pub join_ms: Option<f64>,
    pub joined_at: Option<Instant>,
    pub purchase_ms: Option<f64>,
    /// Tick time → position message received, for every position push.
    pub push_ms: Vec<f64>,
    /// 0-based place in the drop's admission order when joining (not sent in pre-queue).
    pub index: Option<u64>,
    /// 1-based admission number.
    pub seq: Option<u64>,
    /// (eta_s, eta_hi_s, received) of the first position outside the pre-queue.
    pub eta_at_join: Option<(f64, f64, Instant)>,
    pub admitted_at: Option<Instant>,
    /// When the purchase was confirmed (201).
    pub bought_at: Option<Instant>,
    pub done_at: Option<Instant>,
    /// Order status after the payment attempt (PAID, PAYMENT_FAILED), if one was made.
    pub payment: Option<String>,
}

pub struct Shared {
    pub http: Vec<reqwest::Client>,
    pub api: SocketAddr,
    pub drop_id: i64,
    pub abandon: f64,
    /// Who abandons: drawn from the admission `seq` under this seed, as
    /// `vitaqueue simulate --seed` draws it (None: a fresh random draw per buyer).
    pub seed: Option<u64>,
    /// Share of paying buyers whose card is declined; None: buyers do not pay.
    pub fail: Option<f64>,
    /// Buy on the room socket (`{"type": "purchase"}`) instead of `POST .../purchase`.
    pub buy_on_socket: bool,
    pub connected: AtomicUsize,
    pub peak: AtomicUsize,
    pub admitted: AtomicUsize,
    pub finished: AtomicUsize,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Solves a `pow_required` challenge off the async threads; the `?pow=` suffix to retry with.
async fn solve(challenge: &Value, user: UserId, drop: i64) -> Option<String> {
    let nonce = challenge["nonce"].as_str()?.to_string();
    let bits = challenge["difficulty"].as_u64()? as u32;
    let drop = DropId::new(drop).ok()?;
    let counter =
        tokio::task::spawn_blocking(move || (vq_core::pow::solve(&nonce, user, drop, bits), nonce))
            .await
            .ok()?;
    Some(format!("&pow={}.{}", counter.1, counter.0))
}

/// Opens the room. A refusal before the upgrade (sold out, closed) is an outcome, not an
/// error: the server answers it as JSON `{code, message}`. A drop that wants a proof of
/// work answers with a challenge, which the buyer solves and retries with.
async fn connect(src: IpAddr, sh: &Shared, jwt: &str, user: UserId) -> Result<crate::Ws, Outcome> {
    let mut last = String::new();
    let mut pow = String::new();
    for attempt in 0..5u64 {
        let sock = tokio::net::TcpSocket::new_v4().map_err(|e| Outcome::Error(e.to_string()))?;
        sock.bind(SocketAddr::new(src, 0))
            .map_err(|e| Outcome::Error(format!("bind {src}: {e}")))?;
        match sock.connect(sh.api).await {
            Ok(stream) => {
                let url = format!(
                    "ws://{}/v1/drops/{}/room?{}",
                    sh.api,
                    sh.drop_id,
                    pow.trim_start_matches('&')
                );
                let mut req =
                    tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                        url,
                    )
                    .map_err(|e| Outcome::Error(format!("ws url: {e}")))?;
                let bearer = format!("Bearer {jwt}")
                    .parse()
                    .map_err(|_| Outcome::Error("token is not a header value".into()))?;
                req.headers_mut().insert("authorization", bearer);
                return match socket::connect(req, stream).await {
                    Ok((ws, _)) => Ok(ws),
                    Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                        let body: Value = res
                            .body()
                            .as_deref()
                            .and_then(|b| serde_json::from_slice(b).ok())
                            .unwrap_or(Value::Null);
                        if body["code"] == "pow_required" && pow.is_empty() {
                            if let Some(p) = solve(&body["challenge"], user, sh.drop_id).await {
                                pow = p;
                                continue;
                            }
                        }
                        Err(Outcome::Rejected(
                            body["code"].as_str().unwrap_or("http_error").to_string(),
                        ))
                    }
                    Err(e) => Err(Outcome::Error(format!("handshake: {e}"))),
                };
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
    }
    Err(Outcome::Error(format!("connect: {last}")))
}

pub async fn run(
    sh: Arc<Shared>,
    n: usize,
    (jwt, user): (String, UserId),
    deadline: Instant,
) -> BuyerResult {
    let mut r = BuyerResult {
        outcome: Outcome::TimedOut,
        token: None,
        join_ms: None,
        joined_at: None,
        purchase_ms: None,
        push_ms: Vec::new(),
        index: None,
        seq: None,
        eta_at_join: None,
        admitted_at: None,
        bought_at: None,
        done_at: None,
        payment: None,
    };
    let src = IpAddr::from([127, 0, 0, 1 + (n % sh.http.len()) as u8]);
    let started = Instant::now();
    let mut ws = match connect(src, &sh, &jwt, user).await {
        Ok(ws) => ws,
        Err(outcome) => {
            r.outcome = outcome;
            sh.finished.fetch_add(1, Ordering::Relaxed);
            return r;
        }
    };
    let live = sh.connected.fetch_add(1, Ordering::Relaxed) + 1;
    sh.peak.fetch_max(live, Ordering::Relaxed);
    let left = deadline.saturating_duration_since(Instant::now());
    let outcome = tokio::time::timeout(left, session(&sh, n, &jwt, &mut ws, &mut r, started)).await;
    r.outcome = outcome.unwrap_or(Outcome::TimedOut);
    r.done_at = Some(Instant::now());
    let _ = ws.close(None).await;
    if let (Outcome::Bought, Some(fail)) = (&r.outcome, sh.fail) {
        let left = deadline.saturating_duration_since(Instant::now());
        let paid = tokio::time::timeout(left, pay(&sh, n, &jwt, fail)).await;
        r.payment = paid.ok().flatten();
    }
    sh.connected.fetch_sub(1, Ordering::Relaxed);
    sh.finished.fetch_add(1, Ordering::Relaxed);
    r
}

async fn session(
    sh: &Shared,
    n: usize,
    jwt: &str,
    ws: &mut crate::Ws,
    r: &mut BuyerResult,
    started: Instant,
) -> Outcome {
    while let Some(next) = socket::next_msg(ws).await {
        let m = match next {
            Ok(m) => m,
            Err(end) => return end,
        };
        if r.join_ms.is_none() {
            r.join_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
            r.joined_at = Some(Instant::now());
        }
        match m["type"].as_str().unwrap_or("") {
            "position" => {
                if r.index.is_none() {
                    r.index = m["index"].as_u64();
                }
                if r.eta_at_join.is_none() && m["prequeue"] == false {
                    let eta = |f: &str| m[f].as_f64().unwrap_or(0.0);
                    r.eta_at_join = Some((eta("eta_s"), eta("eta_hi_s"), Instant::now()));
                }
                if let Some(ts) = m["ts_ms"].as_i64() {
                    r.push_ms.push((now_ms() - ts) as f64);
                }
            }
            "admitted" => {
                sh.admitted.fetch_add(1, Ordering::Relaxed);
                r.admitted_at = Some(Instant::now());
                r.seq = m["seq"].as_u64();
                let token = m["token"].as_str().unwrap_or_default().to_string();
                if abandons(sh, r.seq) {
                    return Outcome::Abandoned;
                }
                if sh.buy_on_socket {
                    return socket::purchase(ws, &token, r).await;
                }
                return purchase(sh, n, jwt, &token, r).await;
            }
            "sold_out" => return Outcome::Rejected("sold_out".into()),
            "closed" => return Outcome::Rejected("closed".into()),
            "expired" => return Outcome::Rejected("token_expired".into()),
            _ => {}
        }
    }
    Outcome::Error("connection ended".into())
}

fn abandons(sh: &Shared, seq: Option<u64>) -> bool {
    match (sh.seed, seq) {
        (Some(seed), Some(seq)) => vq_core::simulate::abandons(seed, seq, sh.abandon),
        _ => rand::random::<f64>() < sh.abandon,
    }
}

async fn purchase(sh: &Shared, n: usize, jwt: &str, token: &str, r: &mut BuyerResult) -> Outcome {
    let url = format!("http://{}/v1/drops/{}/purchase", sh.api, sh.drop_id);
    let t = Instant::now();
    let res = sh.http[n % sh.http.len()]
        .post(url)
        .bearer_auth(jwt)
        .json(&serde_json::json!({ "token": token, "quantity": 1 }))
        .send()
        .await;
    r.purchase_ms = Some(t.elapsed().as_secs_f64() * 1000.0);
    match res {
        Ok(res) if res.status().as_u16() == 201 => {
            r.token = Some(token.to_string());
            r.bought_at = Some(Instant::now());
            Outcome::Bought
        }
        Ok(res) => {
            let body: Value = res.json().await.unwrap_or(Value::Null);
            Outcome::Rejected(body["code"].as_str().unwrap_or("unknown").to_string())
        }
        Err(e) => Outcome::Error(format!("purchase: {e}")),
    }
}

/// Pays for the buyer's order once the worker has written it; returns the new status.
async fn pay(sh: &Shared, n: usize, jwt: &str, fail: f64) -> Option<String> {
    let http = &sh.http[n % sh.http.len()];
    let list = format!("http://{}/v1/orders?drop_id={}&limit=1", sh.api, sh.drop_id);
    let mut order = None;
    for _ in 0..100 {
        let v: Value = http
            .get(&list)
            .bearer_auth(jwt)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        if let Some(id) = v["items"][0]["id"].as_i64() {
            order = Some(id);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let method = if rand::random::<f64>() < fail {
        "pm_card_declined"
    } else {
        "pm_card_ok"
    };
    let url = format!("http://{}/v1/orders/{}/pay", sh.api, order?);
    let body = serde_json::json!({ "payment_method": method });
    let v: Value = http
        .post(url)
        .bearer_auth(jwt)
        .json(&body)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v["status"].as_str().map(str::to_owned)
}
