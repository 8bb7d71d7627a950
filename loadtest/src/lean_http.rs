//! A minimal HTTP/1.1 keep-alive client for the measured purchase phase of `ceiling`, in the
//! way wrk or h2load drive a server: one connection per concurrent task, the request written
//! in one `write`, the reply read into a reused buffer and parsed with `httparse`.
//!
//! Why: the load generator shares the machine's cores with the server, Redis and PostgreSQL.
//! reqwest (connection pool, header maps, body streams) cost 67–68 µs of those cores per
//! purchase, this client 28–29 µs (benchmarks/NOTES-2026-11.md, section "2.2 One gate script,
//! a lean load-generator client"), so the comparison charged the HTTP
//! path for its client. Both clients stay: `--http-client reqwest` measures the old
//! way, and that section shows the two side by side.
//!
//! Only what the purchase reply needs: a `Content-Length` body (no chunked encoding, no
//! compression: the request sends no `Accept-Encoding`). Anything else is an error of the
//! attempt, never a silent success.

use crate::harness::{drive, Attempt, Measured};
use crate::vq_path::Prepared;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Largest reply accepted (headers and body): a purchase reply is a few hundred bytes.
const MAX_REPLY: usize = 64 * 1024;

/// A status and body as read off the wire.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One keep-alive connection and its read buffer.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to `server` from the loopback address `local` (any free port).
    pub async fn connect(server: SocketAddr, local: IpAddr) -> std::io::Result<Conn> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(local, 0))?;
        let stream = socket.connect(server).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(1024),
        })
    }

    /// Sends one request (complete bytes) and reads its reply. `Ok((reply, reusable))`:
    /// `reusable` is false when the server asked to close the connection.
    pub async fn send(&mut self, request: &[u8]) -> anyhow::Result<(Reply, bool)> {
        self.stream.write_all(request).await?;
        self.buf.clear();
        loop {
            if let Some(done) = self.parse()? {
                return Ok(done);
            }
            anyhow::ensure!(self.buf.len() < MAX_REPLY, "reply over {MAX_REPLY} bytes");
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await?;
            anyhow::ensure!(n > 0, "connection closed mid-reply");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The reply, once the buffer holds all of it.
    fn parse(&mut self) -> anyhow::Result<Option<(Reply, bool)>> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut res = httparse::Response::new(&mut headers);
        let head = match res.parse(&self.buf)? {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => return Ok(None),
        };
        let mut len = None;
        let mut reusable = res.version == Some(1);
        for h in res.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                len = Some(std::str::from_utf8(h.value)?.trim().parse::<usize>()?);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                anyhow::bail!("chunked replies are not supported by the lean client");
            } else if h.name.eq_ignore_ascii_case("connection") {
                reusable &= !h.value.eq_ignore_ascii_case(b"close");
            }
        }
        let len = len.ok_or_else(|| anyhow::anyhow!("reply without Content-Length"))?;
        if self.buf.len() < head + len {
            return Ok(None);
        }
        let status = res.code.unwrap_or(0);
        let body = self.buf[head..head + len].to_vec();
        anyhow::ensure!(self.buf.len() == head + len, "bytes after the reply");
        Ok(Some((Reply { status, body }, reusable)))
    }
}

/// Idle connections per source address; a task takes one, or opens one when none is idle.
#[derive(Clone)]
pub struct Pool {
    server: SocketAddr,
    sources: Arc<Vec<(IpAddr, Mutex<Vec<Conn>>)>>,
}

impl Pool {
    /// `api` is the base URL (`http://127.0.0.1:port`); `sources` the local addresses.
    pub fn new(api: &str, sources: Vec<IpAddr>) -> anyhow::Result<Pool> {
        let url = reqwest::Url::parse(api)?;
        anyhow::ensure!(
            url.scheme() == "http",
            "the lean client speaks plain HTTP only"
        );
        let server = url
            .socket_addrs(|| Some(80))?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("{api} resolves to no address"))?;
        anyhow::ensure!(server.ip().is_loopback(), "load goes to loopback only");
        let sources = sources
            .into_iter()
            .map(|ip| (ip, Mutex::new(Vec::new())))
            .collect();
        Ok(Pool {
            server,
            sources: Arc::new(sources),
        })
    }

    /// Sends `request` from source `i % n`, on an idle connection of that source or a new one.
    pub async fn send(&self, i: usize, request: &[u8]) -> anyhow::Result<Reply> {
        let (ip, idle) = &self.sources[i % self.sources.len()];
        let taken = idle.lock().expect("pool lock").pop();
        let mut conn = match taken {
            Some(c) => c,
            None => Conn::connect(self.server, *ip).await?,
        };
        let (reply, reusable) = conn.send(request).await?;
        if reusable {
            idle.lock().expect("pool lock").push(conn);
        }
        Ok(reply)
    }

    /// `host:port` for the `Host` header.
    pub fn host(&self) -> String {
        self.server.to_string()
    }
}

/// The HTTP purchase phase of `ceiling` on lean connections: the same requests, bodies and
/// verdicts as `vq_path::fire`, which uses reqwest.
pub async fn fire(pool: &Pool, p: &Prepared, c: usize, limit: Duration) -> Measured {
    let path = format!("/v1/drops/{}/purchase", p.drop.get());
    let host = pool.host();
    let buyers = Arc::new(p.buyers.clone());
    let pool = pool.clone();
    drive(buyers.len(), c, limit, move |i| {
        let b = &buyers[i];
        let body = json!({ "token": b.token, "quantity": 1 }).to_string();
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            b.jwt,
            body.len()
        );
        let pool = pool.clone();
        async move {
            let reply = pool.send(i, request.as_bytes()).await?;
            if reply.status == 201 {
                return Ok(Attempt::Bought);
            }
            let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
            match body["code"].as_str() {
                Some("sold_out" | "insufficient_stock") => Ok(Attempt::Rejected),
                _ => anyhow::bail!("purchase: HTTP {} {body}", reply.status),
            }
        }
    })
    .await
}
