//! One delivery attempt: the body (the event, with the buyer's data for endpoints that
//! asked for it), its signature, the POST, and what came of it. Nothing here is trusted
//! from the receiver: no redirect is followed, at most `webhooks.max_response_bytes` of
//! its answer is read, and the whole exchange must end within `webhooks.timeout`.

use crate::signature;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vq_core::config::Webhooks as Cfg;
use vq_orders::events::{Event, EventType};

/// The buyer's personal data for endpoints with `include_pii`, decrypted where the account
/// data and its key live; `Ok(None)` when the buyer has no stored account data.
pub trait Pii: Send + Sync {
    fn customer(
        &self,
        user: uuid::Uuid,
    ) -> BoxFuture<'_, anyhow::Result<Option<serde_json::Value>>>;
}

/// What sending needs: the client (no redirects, no private targets unless allowed), the
/// settings, and where the buyer's data comes from.
pub struct Sender {
    pub(crate) client: reqwest::Client,
    pub(crate) cfg: Cfg,
    pub(crate) pii: Option<Arc<dyn Pii>>,
}

/// A leased delivery, with what sending it needs.
#[derive(Debug, sqlx::FromRow)]
pub struct Job {
    pub endpoint_id: uuid::Uuid,
    pub event_seq: i64,
    /// This try's number (1 for the first).
    pub attempt: i32,
    pub url: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub include_pii: bool,
    pub event_id: uuid::Uuid,
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    pub data: serde_json::Value,
    pub user_id: Option<uuid::Uuid>,
}

/// What one attempt came to.
#[derive(Debug)]
pub struct Outcome {
    pub delivered: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub latency: Duration,
}

impl Outcome {
    fn failed(error: impl Into<String>, started: Instant) -> Outcome {
        Outcome {
            delivered: false,
            status: None,
            error: Some(error.into()),
            latency: started.elapsed(),
        }
    }
}

/// The delivery's body: the event as stored, plus `data.customer` where asked for.
pub async fn body(d: &Sender, job: &Job) -> anyhow::Result<Vec<u8>> {
    let kind = EventType::parse(&job.event_type)
        .ok_or_else(|| anyhow::anyhow!("unknown event type {}", job.event_type))?;
    let mut data = job.data.clone();
    if let (true, Some(user), serde_json::Value::Object(map)) =
        (job.include_pii, job.user_id, &mut data)
    {
        let customer = match &d.pii {
            Some(p) => p.customer(user).await?,
            None => None,
        };
        map.insert(
            "customer".into(),
            customer.unwrap_or(serde_json::Value::Null),
        );
    }
    let event = Event {
        id: job.event_id,
        kind,
        created_at: job.created_at,
        data,
    };
    Ok(serde_json::to_vec(&event)?)
}

/// Sends the job once. A 2xx within the timeout is delivered; anything else is a failure.
pub async fn attempt(d: &Sender, job: &Job) -> Outcome {
    let started = Instant::now();
    let url = match crate::target::parse(&job.url, d.cfg.allow_private) {
        Ok(u) => u,
        Err(e) => return Outcome::failed(format!("url {e}"), started),
    };
    // A literal address skips the resolver: check it here.
    if let Some(ip) = url
        .host_str()
        .and_then(|h| h.trim_matches(['[', ']']).parse().ok())
    {
        if !d.cfg.allow_private && !crate::target::is_public(ip) {
            return Outcome::failed(format!("refused address {ip}"), started);
        }
    }
    let body = match body(d, job).await {
        Ok(b) => b,
        Err(e) => return Outcome::failed(format!("building the body: {e}"), started),
    };
    let t = Utc::now().timestamp();
    let mut secrets = vec![job.secret.as_str()];
    secrets.extend(job.previous_secret.as_deref());
    let req = d
        .client
        .post(url)
        .header("content-type", "application/json")
        .header(signature::HEADER, signature::header(&secrets, t, &body))
        .header("VQ-Event-Id", job.event_id.to_string())
        .header("VQ-Event-Type", &job.event_type)
        .body(body);
    let exchange = async {
        let mut res = req.send().await?;
        let status = res.status();
        let mut kept = Vec::new();
        while kept.len() < d.cfg.max_response_bytes {
            match res.chunk().await? {
                Some(c) => {
                    kept.extend_from_slice(&c[..c.len().min(d.cfg.max_response_bytes - kept.len())])
                }
                None => break,
            }
        }
        Ok::<_, reqwest::Error>((status, kept))
    };
    match tokio::time::timeout(d.cfg.timeout, exchange).await {
        Err(_) => Outcome::failed(format!("no answer within {:?}", d.cfg.timeout), started),
        Ok(Err(e)) if e.is_timeout() => {
            Outcome::failed(format!("no answer within {:?}", d.cfg.timeout), started)
        }
        Ok(Err(e)) => Outcome::failed(describe(&e), started),
        Ok(Ok((status, kept))) => Outcome {
            delivered: status.is_success(),
            status: Some(status.as_u16()),
            error: (!status.is_success()).then(|| {
                let text = String::from_utf8_lossy(&kept);
                format!(
                    "HTTP {}: {}",
                    status.as_u16(),
                    text.chars().take(200).collect::<String>()
                )
            }),
            latency: started.elapsed(),
        },
    }
}

fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s.chars().take(300).collect()
}
