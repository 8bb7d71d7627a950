//! The bounds of a request: its body and its time.
//!
//! Oversize bodies: closing a socket whose receive buffer still holds unread bytes makes
//! the kernel send a TCP reset, which destroys the 413 before a client that writes its
//! whole body first gets to read it. So a body declared too long is read and dropped
//! (bounded in size and time) and then answered 413 `body_too_large` with
//! `Connection: close`. A chunked body (no length declared) is read up to the limit
//! first; past it the rest is drained the same way.

use crate::error::ApiError;
use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::time::Duration;

/// Longest body that is drained to deliver the 413; past it the connection is just closed.
const DRAIN_MAX_BYTES: u64 = 8 * 1024 * 1024;
/// A client that trickles its oversize body gets no more of the server's time than this.
const DRAIN_TIME: Duration = Duration::from_secs(5);

async fn drain_oversize(max: usize, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let Some(len) = declared else {
        if req.headers().contains_key(header::TRANSFER_ENCODING) {
            return buffered(max, req, next).await;
        }
        return next.run(req).await;
    };
    if len <= max as u64 {
        return next.run(req).await;
    }
    if len <= DRAIN_MAX_BYTES {
        drain(req.into_body().into_data_stream(), len).await;
    }
    too_large(max, &format!("the body is {len} bytes"))
}

/// Reads a chunked body of at most `max` bytes and hands it on; a longer one is drained.
async fn buffered(max: usize, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return ApiError::BadRequest {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_body",
                message: "the request body could not be read".into(),
            }
            .into_response();
        };
        if buf.len() + chunk.len() > max {
            drain(stream, DRAIN_MAX_BYTES).await;
            return too_large(max, "the body is too long");
        }
        buf.extend_from_slice(&chunk);
    }
    next.run(Request::from_parts(parts, Body::from(Bytes::from(buf))))
        .await
}

fn too_large(max: usize, what: &str) -> Response {
    let mut res = ApiError::BadRequest {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "body_too_large",
        message: format!("{what}; at most {max} are accepted"),
    }
    .into_response();
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// Reads and drops up to `bound` bytes, for at most `DRAIN_TIME`.
async fn drain(mut stream: BodyDataStream, bound: u64) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut read = 0u64;
        while let Some(Ok(c)) = stream.next().await {
            read += c.len() as u64;
            if read > bound {
                break;
            }
        }
    })
    .await;
}

/// Both bounds of a request in one middleware (one layer per route, not two): its body
/// (`max` bytes, see [`drain_oversize`]) and its time. A request that takes longer than
/// `limit` ends with 408 `request_timeout` (the connection is closed, since its body may be
/// half read). WebSocket upgrades have no time bound: their handler returns at once and the
/// socket lives on outside the request.
pub async fn bounded(max: usize, limit: Duration, req: Request, next: Next) -> Response {
    if req.headers().contains_key(header::UPGRADE) {
        return drain_oversize(max, req, next).await;
    }
    match tokio::time::timeout(limit, drain_oversize(max, req, next)).await {
        Ok(res) => res,
        Err(_) => {
            metrics::counter!("vq_http_request_timeouts_total").increment(1);
            let mut res = ApiError::BadRequest {
                status: StatusCode::REQUEST_TIMEOUT,
                code: "request_timeout",
                message: format!("the request took longer than {} ms", limit.as_millis()),
            }
            .into_response();
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            res
        }
    }
}
