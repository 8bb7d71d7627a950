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

/// Where the simulated crowd connects from: `--sources` loopback addresses
/// 127.0.`--source-block`.1, .2, …. The server's per-address limits (join, purchase, open
/// connections) stay as shipped; each address draws on its own budget, as a real crowd does.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// Loopback source addresses the HTTP clients spread over.
    #[arg(long, default_value_t = 64)]
    pub sources: u8,
    /// Third octet of those addresses (127.0.B.x), so phases can use distinct blocks.
    #[arg(long, default_value_t = 2)]
    pub source_block: u8,
}

impl Default for SourceArgs {
    fn default() -> Self {
        SourceArgs {
            sources: 64,
            source_block: 2,
        }
    }
}

impl SourceArgs {
    /// The addresses themselves, in the order attempts take them.
    pub fn addrs(&self) -> Vec<std::net::IpAddr> {
        (0..self.sources.clamp(1, 250))
            .map(|i| std::net::IpAddr::from([127, 0, self.source_block, 1 + i]))
            .collect()
    }

    /// `127.0.B.1-127.0.B.N`, for the reports.
    pub fn describe(&self) -> String {
        let n = self.sources.clamp(1, 250);
        format!("127.0.{b}.1-127.0.{b}.{n}", b = self.source_block)
    }
}

/// One HTTP client per source address; attempt `i` goes out from address `i % n`.
#[derive(Clone)]
pub struct Clients {
    all: Arc<Vec<reqwest::Client>>,
    src: SourceArgs,
}

impl Clients {
    /// Clients with enough idle connections kept for `c` concurrent tasks in all.
    pub fn new(c: usize, src: &SourceArgs) -> anyhow::Result<Self> {
        let addrs = src.addrs();
        let idle = c.div_ceil(addrs.len()).max(1);
        let all = addrs
            .into_iter()
            .map(|ip| {
                reqwest::Client::builder()
                    .local_address(ip)
                    .pool_max_idle_per_host(idle)
                    .timeout(Duration::from_secs(30))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Clients {
            all: Arc::new(all),
            src: src.clone(),
        })
    }

    pub fn pick(&self, i: usize) -> &reqwest::Client {
        &self.all[i % self.all.len()]
    }

    pub fn describe(&self) -> String {
        self.src.describe()
    }
}

pub async fn call(req: reqwest::RequestBuilder, want: u16, what: &str) -> anyhow::Result<Value> {
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
    http: &Clients,
    api: &str,
    jwt: &JwtKeys,
    n: usize,
    stock: i64,
    c: usize,
    limit: Duration,
) -> anyhow::Result<Prepared> {
    let manager = jwt.issue(UserId(uuid::Uuid::new_v4()), Role::Manager, 3600);
    let drop = create(http.pick(0), api, &manager, n, stock).await?;
    let users: Arc<Vec<(UserId, String)>> = Arc::new(
        (0..n)
            .map(|_| {
                let u = UserId(uuid::Uuid::new_v4());
                (u, jwt.issue(u, Role::Shopper, 3600))
            })
            .collect(),
    );
    let queue = format!("{api}/v1/drops/{}/queue", drop.get());
    // Setup reuses the measurement loop for its bounded concurrency; "Bought" = step done.
    let (h, q, us) = (http.clone(), queue.clone(), users.clone());
    let joined = drive(n, c, limit, move |i| {
        let req = h.pick(i).post(&q).bearer_auth(&us[i].1);
        async move { call(req, 200, "joining").await.map(|_| Attempt::Bought) }
    })
    .await;
    anyhow::ensure!(
        joined.bought == n,
        "only {} of {n} buyers joined: {:?}",
        joined.bought,
        joined.first_error
    );
    wait_admitted(http.pick(0), api, &manager, drop, n as u64, limit).await?;
    let tokens = collect_tokens(http, &queue, &users, c, limit).await?;
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

async fn create(
    http: &reqwest::Client,
    api: &str,
    manager: &str,
    n: usize,
    stock: i64,
) -> anyhow::Result<DropId> {
    let cap = n.clamp(1, 1_000_000);
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
        .bearer_auth(manager);
    let created = call(req.json(&body), 201, "creating the drop").await?;
    Ok(DropId::new(created["id"].as_i64().unwrap_or(0))?)
}

/// Reads every buyer's purchase token from their place (index i = buyer i).
async fn collect_tokens(
    http: &Clients,
    queue: &str,
    users: &Arc<Vec<(UserId, String)>>,
    c: usize,
    limit: Duration,
) -> anyhow::Result<Vec<String>> {
    let n = users.len();
    let tokens = Arc::new(std::sync::Mutex::new(vec![String::new(); n]));
    let (h, q, us, tk) = (
        http.clone(),
        queue.to_string(),
        users.clone(),
        tokens.clone(),
    );
    let got = drive(n, c, limit, move |i| {
        let (req, tk) = (h.pick(i).get(&q).bearer_auth(&us[i].1), tk.clone());
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
    Ok(tokens)
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
pub async fn fire(http: &Clients, api: &str, p: &Prepared, c: usize, limit: Duration) -> Measured {
    let url = format!("{api}/v1/drops/{}/purchase", p.drop.get());
    let buyers = Arc::new(p.buyers.clone());
    let http = http.clone();
    drive(buyers.len(), c, limit, move |i| {
        let b = &buyers[i];
        let req = http
            .pick(i)
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
