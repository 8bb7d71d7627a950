//! Soak: one `vitaqueue api` process holds ≥ 19,000 waiting-room WebSockets for a bounded
//! time; reports its resident memory per connection. The server runs as its own process
//! (its own descriptor limit); the client side spreads its sockets over several loopback
//! source addresses so the ephemeral ports of one address do not run out. Then admission
//! moves the queue (2 a second: every place changes at each push interval) and the test
//! reports the server's CPU per position push (per socket per tick).
//! Knobs: `VQ_SOAK_CONNECTIONS` (19000), `VQ_SOAK_HOLD_S` (120), `VQ_SOAK_PUSH_S` (10).
//! A separate test binary: cargo runs binaries one after another, so these ~19k
//! descriptors never compete with the other integration tests for the limit.

#[allow(dead_code)]
#[path = "api/procs.rs"]
mod procs;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use vq_core::auth::{JwtKeys, Role};
use vq_core::config::Secret;
use vq_core::domain::UserId;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Raises the soft descriptor limit to the hard one (children inherit it).
fn raise_nofile(need: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a stack value of the right type.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(
        lim.rlim_cur >= need,
        "the soak needs {need} descriptors, the hard limit is {}: raise `ulimit -Hn`",
        lim.rlim_cur
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Counters {
    open: AtomicUsize,
    pongs: AtomicUsize,
    positions: AtomicUsize,
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields = after.split_whitespace().skip(11).take(2); // utime, stime (clock ticks)
    fields.filter_map(|v| v.parse::<f64>().ok()).sum::<f64>() / 100.0
}

async fn settings() -> (vq_core::Settings, String) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let admin = std::env::var("VQ_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let db_name = format!("vq_soak_{id}");
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{db_name}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').unwrap().0;
    let mut s = vq_core::Settings::default();
    s.redis.url = Secret::new(
        std::env::var("VQ_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
    );
    s.redis.prefix = format!("vqsoak{}", &id[..12]);
    s.database.url = Secret::new(format!("{base}/{db_name}"));
    s.auth.jwt_secret = Some(Secret::new(format!("soak-{id}")));
    (s, db_name)
}

async fn cleanup(s: &vq_core::Settings, db_name: &str) {
    let admin = std::env::var("VQ_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    if let Ok(mut c) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
        let sql = format!("DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)");
        let _ = sqlx::query(&sql).execute(&mut c).await;
    }
    let mut r = vq_core::RedisConn::connect(&s.redis).await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", s.redis.prefix))
        .query_async(&mut r)
        .await
        .unwrap_or_default();
    for chunk in keys.chunks(500) {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(chunk).query_async(&mut r).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_api_process_holds_19k_websockets() {
    let n = env_or("VQ_SOAK_CONNECTIONS", 19_000) as usize;
    let hold = Duration::from_secs(env_or("VQ_SOAK_HOLD_S", 120));
    raise_nofile(n as u64 + 300);
    let (s, db_name) = settings().await;
    let env = [
        ("VQ_WS__RESYNC_MS", "20000".to_string()),
        ("RUST_LOG", "warn".to_string()),
    ];
    let (server, port) = procs::api_node(&s, "soak-api", &env).await;
    let jwt = JwtKeys::new(s.auth.jwt_secret.as_ref().unwrap());
    let manager = jwt.issue(UserId(uuid::Uuid::new_v4()), Role::Manager, 3600);
    let http = reqwest::Client::new();
    let spec = json!({ "product_name": "Soak", "stock": n, "admission_rate": 2,
        "starts_at": "2020-01-01T00:00:00Z", "max_holders": n });
    let res = http
        .post(format!("http://127.0.0.1:{port}/v1/admin/drops"))
        .bearer_auth(&manager)
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let drop = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base_kib = rss_kib(server.pid());
    let client_base_kib = rss_kib(std::process::id());

    let counters = Arc::new(Counters {
        open: AtomicUsize::new(0),
        pongs: AtomicUsize::new(0),
        positions: AtomicUsize::new(0),
    });
    let gate = Arc::new(tokio::sync::Semaphore::new(200));
    let t0 = Instant::now();
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let src = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % 8) as u8));
        let user = UserId(uuid::Uuid::new_v4());
        let token = jwt.issue(user, Role::Shopper, 3600);
        let (gate, counters) = (gate.clone(), counters.clone());
        conns.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            open(src, port, drop, (user, &token), counters).await
        }));
    }
    let mut sinks = Vec::with_capacity(n);
    for c in conns {
        sinks.push(c.await.unwrap());
    }
    let ramp = t0.elapsed();
    assert_eq!(
        counters.open.load(Ordering::SeqCst),
        n,
        "every socket joined and stays open"
    );
    let full_kib = rss_kib(server.pid());
    let held = Instant::now();
    while held.elapsed() < hold {
        tokio::time::sleep(Duration::from_secs(5).min(hold)).await;
        let open_now = counters.open.load(Ordering::SeqCst);
        println!(
            "soak: {open_now} open, server RSS {} MiB",
            rss_kib(server.pid()) / 1024
        );
        assert_eq!(open_now, n, "no socket dropped while held");
    }
    // Still served: a ping on every 50th socket gets its pong.
    let sample: Vec<usize> = (0..n).step_by(50).collect();
    for &i in &sample {
        sinks[i]
            .send(Message::Text(r#"{"type":"ping"}"#.into()))
            .await
            .unwrap();
    }
    for _ in 0..100 {
        if counters.pongs.load(Ordering::SeqCst) >= sample.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counters.pongs.load(Ordering::SeqCst), sample.len());
    let ready: serde_json::Value = http
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["connections"], n, "the server counts every socket");
    let end_kib = rss_kib(server.pid());
    let client_kib = rss_kib(std::process::id()).saturating_sub(client_base_kib);
    println!(
        "soak: {n} WebSockets on one api process (pid {}), connected in {ramp:?}, held {hold:?}; \
         server RSS {} MiB before, {} MiB connected, {} MiB at the end → {:.1} KiB per connection (client side {:.1} KiB)",
        server.pid(),
        base_kib / 1024,
        full_kib / 1024,
        end_kib / 1024,
        (end_kib.saturating_sub(base_kib)) as f64 / n as f64,
        client_kib as f64 / n as f64,
    );
    push_cost(&s, server.pid(), n, &counters).await;
    std::mem::drop(sinks);
    std::mem::drop(server);
    cleanup(&s, &db_name).await;
}

type Sink =
    futures::stream::SplitSink<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, Message>;

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// One upgrade from `src`, with a solved proof of work when there is one.
async fn handshake(
    src: IpAddr,
    port: u16,
    drop: i64,
    jwt: &str,
    pow: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(src, 0)).unwrap();
    let stream = sock
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    let url = format!("ws://127.0.0.1:{port}/v1/drops/{drop}/room{pow}");
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .expect("ws url");
    req.headers_mut()
        .insert("authorization", format!("Bearer {jwt}").parse().unwrap());
    let cfg = WebSocketConfig::default().read_buffer_size(4096);
    tokio_tungstenite::client_async_with_config(req, stream, Some(cfg))
        .await
        .map(|(ws, _)| ws)
}

/// The `?pow=` of a 403 `pow_required` answer, solved off the async threads: a crowd this
/// size from a few addresses makes the adaptive proof of work ask for a few bits.
async fn solve_refusal(
    e: &tokio_tungstenite::tungstenite::Error,
    user: UserId,
    drop: i64,
) -> String {
    let tokio_tungstenite::tungstenite::Error::Http(res) = e else {
        panic!("handshake: {e}");
    };
    let body: serde_json::Value =
        serde_json::from_slice(res.body().as_deref().unwrap_or(b"")).unwrap_or_default();
    assert_eq!(body["code"], "pow_required", "handshake: {e}");
    let c = &body["challenge"];
    let nonce = c["nonce"].as_str().unwrap().to_string();
    let bits = c["difficulty"].as_u64().unwrap() as u32;
    let d = vq_core::domain::DropId::new(drop).unwrap();
    let n = nonce.clone();
    let counter = tokio::task::spawn_blocking(move || vq_core::pow::solve(&n, user, d, bits))
        .await
        .unwrap();
    format!("?pow={nonce}.{counter}")
}

/// Opens one room socket from `src`, waits for its first position, then leaves a task
/// draining it (counting pongs, and the socket as closed when it ends).
async fn open(src: IpAddr, port: u16, drop: i64, who: (UserId, &str), c: Arc<Counters>) -> Sink {
    let (user, jwt) = who;
    let ws = match handshake(src, port, drop, jwt, "").await {
        Ok(ws) => ws,
        Err(e) => {
            let pow = solve_refusal(&e, user, drop).await;
            handshake(src, port, drop, jwt, &pow)
                .await
                .expect("handshake")
        }
    };
    let (sink, mut rx) = ws.split();
    match rx.next().await {
        Some(Ok(Message::Text(t))) => assert!(t.contains("position"), "{t}"),
        other => panic!("expected a position, got {other:?}"),
    }
    c.open.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        while let Some(Ok(m)) = rx.next().await {
            if matches!(&m, Message::Text(t) if t.contains("pong")) {
                c.pongs.fetch_add(1, Ordering::SeqCst);
            }
            if matches!(&m, Message::Text(t) if t.contains(r#""type":"position""#)) {
                c.positions.fetch_add(1, Ordering::Relaxed);
            }
        }
        c.open.fetch_sub(1, Ordering::SeqCst);
    });
    sink
}

/// Starts admission (2 a second) and measures the server's CPU per position push while
/// every socket's place moves: what one socket costs at one tick.
async fn push_cost(s: &vq_core::Settings, server: u32, n: usize, c: &Counters) {
    let secs = env_or("VQ_SOAK_PUSH_S", 10);
    let env = [("RUST_LOG", "warn".to_string())];
    let admission = procs::vitaqueue("admission", s, "soak-admission", &env);
    // Let the first ticks reach every socket before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu0, pushes0, t0) = (
        cpu_s(server),
        c.positions.load(Ordering::SeqCst),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let cpu = cpu_s(server) - cpu0;
    let pushes = c.positions.load(Ordering::SeqCst) - pushes0;
    let wall = t0.elapsed().as_secs_f64();
    std::mem::drop(admission);
    println!(
        "soak: pushing: {pushes} positions to {n} sockets in {wall:.1} s ({:.2} per socket per s), \
         server CPU {cpu:.2} s ({:.2} cores) → {:.1} µs per push",
        pushes as f64 / n as f64 / wall,
        cpu / wall,
        cpu * 1e6 / pushes.max(1) as f64,
    );
    assert!(
        pushes >= n,
        "every waiting socket hears its place move: {pushes} pushes for {n} sockets in {wall:.1} s"
    );
}
