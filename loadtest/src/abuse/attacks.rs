//! The attacks of `loadtest abuse`, each bounded in count and time, loopback only. Each
//! returns a tally of the statuses it saw; a refused or cut connection is not an error
//! of the server (that is the defence working), a 5xx is.

use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Connects to the server on loopback from `src`: each attack has a source address of its
/// own, apart from the honest buyers', so the per-address caps act as they would.
pub async fn connect(src: IpAddr, port: u16) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(src, 0))?;
    socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
}

/// An HTTP client whose connections leave from `src`.
pub fn client(src: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(src)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

#[derive(Serialize, Debug, Default, Clone)]
pub struct Tally {
    pub sent: usize,
    pub statuses: BTreeMap<u16, usize>,
    /// Connections the server cut or refused (timeouts, caps).
    pub cut: usize,
    /// The error code of every 5xx, to tell a designed `busy` from a fault.
    pub codes_5xx: BTreeMap<String, usize>,
}

impl Tally {
    pub fn add(&mut self, status: Option<u16>) {
        self.sent += 1;
        match status {
            Some(s) => *self.statuses.entry(s).or_default() += 1,
            None => self.cut += 1,
        }
    }

    pub fn count_5xx(&self) -> usize {
        self.statuses
            .iter()
            .filter(|(s, _)| **s >= 500)
            .map(|(_, n)| n)
            .sum()
    }
}

/// Reads a raw response's status line; `None` when the server closed without one.
async fn raw(src: IpAddr, port: u16, bytes: Vec<u8>, wait: Duration) -> Option<u16> {
    let mut s = connect(src, port).await.ok()?;
    s.write_all(&bytes).await.ok()?;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Slow-header clients: half a request line, then silence until the server cuts them.
pub async fn slow_headers(src: IpAddr, port: u16, n: usize) -> Tally {
    let tasks = (0..n).map(|_| {
        raw(
            src,
            port,
            b"GET /healthz HTTP/1.1\r\nHost: x".to_vec(),
            Duration::from_secs(30),
        )
    });
    tally(futures::future::join_all(tasks).await)
}

/// Idle TCP connections that never send a byte.
pub async fn idle(src: IpAddr, port: u16, n: usize) -> Tally {
    let tasks = (0..n).map(|_| raw(src, port, Vec::new(), Duration::from_secs(30)));
    tally(futures::future::join_all(tasks).await)
}

fn tally(statuses: Vec<Option<u16>>) -> Tally {
    let mut t = Tally::default();
    statuses.into_iter().for_each(|s| t.add(s));
    t
}

/// Fires `n` JSON posts at `path`, `c` at a time.
pub async fn posts(
    http: &reqwest::Client,
    url: String,
    n: usize,
    c: usize,
    body: impl Fn(usize) -> serde_json::Value,
) -> Tally {
    use futures::StreamExt;
    let seen: Vec<(Option<u16>, Option<String>)> = futures::stream::iter(0..n)
        .map(|i| {
            let req = http.post(&url).json(&body(i));
            async move {
                let Ok(r) = req.send().await else {
                    return (None, None);
                };
                let status = r.status().as_u16();
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                let code = (status >= 500).then(|| v["code"].as_str().unwrap_or("?").to_string());
                (Some(status), code)
            }
        })
        .buffer_unordered(c)
        .collect()
        .await;
    let mut t = Tally::default();
    for (status, code) in seen {
        t.add(status);
        if let Some(c) = code {
            *t.codes_5xx.entry(c).or_default() += 1;
        }
    }
    t
}

/// Requests with made-up methods on made-up paths.
pub async fn made_up_methods(http: &reqwest::Client, api: &str, n: usize) -> Tally {
    use futures::StreamExt;
    let statuses: Vec<Option<u16>> = futures::stream::iter(0..n)
        .map(|i| {
            let m = reqwest::Method::from_bytes(format!("X{i}EVIL").as_bytes()).expect("token");
            let req = http.request(m, format!("{api}/made/up/{i}"));
            async move { req.send().await.ok().map(|r| r.status().as_u16()) }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    tally(statuses)
}

/// 2 MB bodies, half declared by Content-Length, half chunked, written in full first.
pub async fn oversize(src: IpAddr, port: u16, n: usize) -> Tally {
    let tasks = (0..n).map(|i| {
        let body = vec![b'a'; 2 * 1024 * 1024];
        let mut req = if i % 2 == 0 {
            format!(
                "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes()
        } else {
            b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec()
        };
        if i % 2 == 0 {
            req.extend_from_slice(&body);
        } else {
            for part in body.chunks(64 * 1024) {
                req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                req.extend_from_slice(part);
                req.extend_from_slice(b"\r\n");
            }
            req.extend_from_slice(b"0\r\n\r\n");
        }
        raw(src, port, req, Duration::from_secs(15))
    });
    tally(futures::future::join_all(tasks).await)
}

/// Forged tokens: signed with another key, `alg: none`, garbage.
pub async fn forgeries(http: &reqwest::Client, api: &str, drop: i64, n: usize) -> Tally {
    use futures::StreamExt;
    let other = vq_core::auth::JwtKeys::new(&vq_core::config::Secret::new("x".repeat(40)));
    let forged = other.issue(
        vq_core::domain::UserId(uuid::Uuid::new_v4()),
        vq_core::auth::Role::Manager,
        600,
    );
    let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4Iiwicm9sZSI6Im1hbmFnZXIifQ.";
    let tokens = [forged.as_str(), none, "garbage.token.here"];
    let statuses: Vec<Option<u16>> = futures::stream::iter(0..n)
        .map(|i| {
            let req = http
                .post(format!("{api}/v1/drops/{drop}/queue"))
                .bearer_auth(tokens[i % tokens.len()]);
            async move { req.send().await.ok().map(|r| r.status().as_u16()) }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    tally(statuses)
}

/// Room sockets that flood `{"type":"status"}`; counts the sockets the server closed.
pub async fn ws_status(
    src: IpAddr,
    port: u16,
    drop: i64,
    tokens: Vec<String>,
    per_socket: usize,
) -> Tally {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let tasks = tokens.into_iter().map(|t| async move {
        let mut req = format!("ws://127.0.0.1:{port}/v1/drops/{drop}/room")
            .into_client_request()
            .ok()?;
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().ok()?);
        let tcp = connect(src, port).await.ok()?;
        let (mut ws, res) = tokio_tungstenite::client_async(req, tcp).await.ok()?;
        for _ in 0..per_socket {
            let msg = Message::Text(r#"{"type":"status"}"#.into());
            if ws.send(msg).await.is_err() {
                break;
            }
        }
        let drain = async { while let Some(Ok(_)) = ws.next().await {} };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
        Some(res.status().as_u16())
    });
    tally(futures::future::join_all(tasks).await)
}
