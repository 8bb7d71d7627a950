//! WebSocket helpers: open a room socket for a shopper, read typed-enough JSON frames.

use super::{Shopper, TestApp};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use vq_core::domain::DropId;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A room upgrade request carrying the access token in the `Authorization` header (how
/// non-browser clients open the room; browsers use a ticket).
pub fn ws_request(url: &str, jwt: &str) -> Request {
    let mut req = url.into_client_request().expect("ws url");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {jwt}").parse().expect("header value"),
    );
    req
}

impl TestApp {
    pub async fn ws(&self, drop: DropId, s: &Shopper) -> Ws {
        self.ws_port(self.port, drop, s).await
    }

    /// Opens the room on another node (api process) of the same fleet.
    pub async fn ws_port(&self, port: u16, drop: DropId, s: &Shopper) -> Ws {
        let url = format!("ws://127.0.0.1:{port}/v1/drops/{drop}/room");
        let (ws, _) = tokio_tungstenite::connect_async(ws_request(&url, &s.token))
            .await
            .expect("ws connect");
        ws
    }
}

/// Next JSON text message (skipping pings), or None on close/timeout.
pub async fn next_json(ws: &mut Ws, timeout_ms: u64) -> Option<Value> {
    loop {
        let m = tokio::time::timeout(Duration::from_millis(timeout_ms), ws.next())
            .await
            .ok()??;
        match m.ok()? {
            Message::Text(t) => return serde_json::from_str(t.as_str()).ok(),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

/// Next message of the given type, skipping others.
pub async fn next_of(ws: &mut Ws, kind: &str, timeout_ms: u64) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let m = next_json(ws, left.as_millis() as u64).await?;
        if m["type"] == kind {
            return Some(m);
        }
    }
}

/// Waits for the close frame and returns its code.
pub async fn close_code(ws: &mut Ws, timeout_ms: u64) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await.ok()?? {
            Ok(Message::Close(Some(f))) => return Some(f.code.into()),
            Ok(Message::Close(None)) => return Some(1005),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.to_string().into()))
        .await
        .expect("ws send");
}
