//! The purchase sent on the room socket the buyer already holds (`{"type": "purchase"}`),
//! answered there with `purchased` or `purchase_rejected`: no new TCP connection, no
//! HTTP request, no second authentication.

use super::{BuyerResult, Outcome};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Instant;
use tokio_tungstenite::tungstenite::Message;

pub(super) async fn purchase(ws: &mut crate::Ws, token: &str, r: &mut BuyerResult) -> Outcome {
    let t = Instant::now();
    let req = serde_json::json!({ "type": "purchase", "token": token, "quantity": 1 });
    if let Err(e) = ws.send(Message::Text(req.to_string().into())).await {
        return Outcome::Error(format!("purchase send: {e}"));
    }
    while let Some(next) = next_msg(ws).await {
        let m = match next {
            Ok(m) => m,
            Err(end) => return end,
        };
        match m["type"].as_str().unwrap_or("") {
            "purchased" => {
                r.purchase_ms = Some(t.elapsed().as_secs_f64() * 1000.0);
                r.token = Some(token.to_string());
                r.bought_at = Some(Instant::now());
                return Outcome::Bought;
            }
            "purchase_rejected" => {
                r.purchase_ms = Some(t.elapsed().as_secs_f64() * 1000.0);
                let code = m["code"].as_str().unwrap_or("unknown");
                return Outcome::Rejected(code.to_string());
            }
            _ => {}
        }
    }
    Outcome::Error("connection ended before the purchase answer".into())
}

/// The next text message as JSON (null when unparsable), skipping control frames; the
/// outcome when the server closes or the connection fails; `None` when the stream ends.
pub(super) async fn next_msg(ws: &mut crate::Ws) -> Option<Result<Value, Outcome>> {
    loop {
        return Some(match ws.next().await? {
            Ok(Message::Text(t)) => Ok(serde_json::from_str(t.as_str()).unwrap_or(Value::Null)),
            Ok(Message::Close(f)) => Err(Outcome::Error(format!("closed by server: {f:?}"))),
            Ok(_) => continue,
            Err(e) => Err(Outcome::Error(format!("ws: {e}"))),
        });
    }
}

/// The WebSocket handshake on `stream`, with a 4 KiB read buffer: tungstenite's default of
/// 128 KiB, zeroed per socket, was 70 % of the generator's CPU at 19k buyers
/// (benchmarks/NOTES-2026-11.md, section "10.0 Quiet rerun after the push-path work"), CPU the
/// server on the same machine did not get; server frames are ~300 bytes.
pub(super) async fn connect(
    req: tokio_tungstenite::tungstenite::handshake::client::Request,
    stream: tokio::net::TcpStream,
) -> Result<
    (
        tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    tokio_tungstenite::tungstenite::Error,
> {
    let cfg =
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096);
    tokio_tungstenite::client_async_with_config(req, stream, Some(cfg)).await
}
