//! A real HTTP receiver for webhook tests: an axum server on 127.0.0.1 (port 0) that
//! records every request it gets and answers each by a script (fail, stall, accept).

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the receiver answers its n-th request (0-based).
pub type Script = Arc<dyn Fn(usize) -> Answer + Send + Sync>;

#[derive(Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Waits this long, then answers 200 (the sender may have given up by then).
    Stall(Duration),
}

#[derive(Clone, Debug)]
pub struct Hit {
    pub signature: String,
    pub body: Bytes,
    /// What the receiver answered (200 after a stall).
    pub status: u16,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub hits: Arc<Mutex<Vec<Hit>>>,
    /// Requests being answered right now, and the most at once.
    pub busy: Arc<AtomicUsize>,
    pub peak: Arc<AtomicUsize>,
}

impl Receiver {
    pub async fn start(script: Script) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let (busy, peak, seen) = (
            Arc::default(),
            Arc::default(),
            Arc::new(AtomicUsize::new(0)),
        );
        let me = Receiver {
            url,
            hits: hits.clone(),
            busy,
            peak,
        };
        let (b, p) = (me.busy.clone(), me.peak.clone());
        let handler = move |headers: HeaderMap, body: Bytes| {
            let (hits, script, seen, b, p) = (
                hits.clone(),
                script.clone(),
                seen.clone(),
                b.clone(),
                p.clone(),
            );
            async move {
                let now = b.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                let answer = script(seen.fetch_add(1, Ordering::SeqCst));
                let status = match answer {
                    Answer::Status(s) => s,
                    Answer::Stall(d) => {
                        tokio::time::sleep(d).await;
                        200
                    }
                };
                let signature = headers
                    .get("vq-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                hits.lock().unwrap().push(Hit {
                    signature,
                    body,
                    status,
                });
                b.fetch_sub(1, Ordering::SeqCst);
                StatusCode::from_u16(status).unwrap()
            }
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(handler));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        me
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// The events accepted (answered 2xx), deduplicated on their id, in first-seen order:
    /// what an integrator that deduplicates would process.
    pub fn processed(&self) -> Vec<serde_json::Value> {
        let mut seen = std::collections::HashSet::new();
        self.hits()
            .iter()
            .filter(|h| (200..300).contains(&h.status))
            .map(|h| serde_json::from_slice::<serde_json::Value>(&h.body).unwrap())
            .filter(|e| seen.insert(e["id"].as_str().unwrap().to_string()))
            .collect()
    }

    /// Waits until `n` distinct events were processed (or panics after `within`).
    pub async fn wait_processed(&self, n: usize, within: Duration) -> Vec<serde_json::Value> {
        let t0 = std::time::Instant::now();
        loop {
            let p = self.processed();
            if p.len() >= n {
                return p;
            }
            assert!(t0.elapsed() < within, "{} of {n} events processed", p.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
