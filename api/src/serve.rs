//! The HTTP server loop, in place of `axum::serve`, for connection hygiene it does not
//! offer: a header-read timeout (slowloris), an idle timeout for silent keep-alive
//! connections, and a cap on open connections per peer address, enforced at accept.
//! The per-address slot rides inside the connection's I/O, so an upgraded room socket
//! keeps holding it until it closes. Graceful shutdown: stop accepting, ask every open
//! connection to finish its request and close, and wait for them (bounded).

mod io;

use axum::extract::{ConnectInfo, Request};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use io::{PerIp, Watched};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tower::Service;
use vq_core::config::Http;
use vq_core::Shutdown;

/// How long open connections get to finish after the shutdown before they are left.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy)]
struct Hygiene {
    header_read: Duration,
    idle: Duration,
}

/// Serves `router` on `listener` until `stop` fires, then drains the open connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    http: &Http,
    mut stop: Shutdown,
) -> std::io::Result<()> {
    let per_ip = Arc::new(PerIp::new(http.max_connections_per_ip));
    let hygiene = Hygiene {
        header_read: http.header_read_timeout,
        idle: http.idle_timeout,
    };
    let (open, mut closed) = mpsc::channel::<()>(1);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.wait() => break,
        };
        let Some(slot) = per_ip.enter(peer.ip()) else {
            metrics::counter!("vq_http_connections_refused_total").increment(1);
            drop(tcp);
            continue;
        };
        let conn = Conn {
            router: router.clone(),
            peer,
            hygiene,
            stop: stop.clone(),
            _open: open.clone(),
        };
        tokio::spawn(conn.run(tcp, slot));
    }
    drop(listener);
    drop(open);
    if tokio::time::timeout(SHUTDOWN_GRACE, closed.recv())
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open after the grace period; stopping anyway");
    }
    Ok(())
}

/// One accepted connection; `_open` lets the server see when the last one has ended.
struct Conn {
    router: Router,
    peer: SocketAddr,
    hygiene: Hygiene,
    stop: Shutdown,
    _open: mpsc::Sender<()>,
}

impl Conn {
    async fn run(mut self, tcp: TcpStream, slot: io::Slot) {
        let _ = tcp.set_nodelay(true);
        let io = Watched::new(tcp, slot);
        let activity = io.activity();
        let (router, peer) = (self.router.clone(), self.peer);
        let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().call(req)
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.hygiene.header_read)
            .keep_alive(true);
        let conn = builder
            .serve_connection(TokioIo::new(io), svc)
            .with_upgrades();
        tokio::pin!(conn);
        let idle = self.hygiene.idle;
        let tick = (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut closing = false;
        loop {
            tokio::select! {
                _ = conn.as_mut() => break,
                _ = self.stop.wait(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = tokio::time::sleep(tick), if !closing => {
                    if activity.idle_for() >= idle {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}
