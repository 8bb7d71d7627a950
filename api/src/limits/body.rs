//! Oversize bodies. Closing a socket whose receive buffer still holds unread bytes makes
//! the kernel send a TCP reset, which destroys the 413 before a client that writes its
//! whole body first gets to read it. So a body declared too long is read and dropped
//! (bounded in size and time) and then answered 413 `body_too_large` with
//! `Connection: close`.

use crate::error::ApiError;
use axum::body::Body;
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

pub async fn drain_oversize(max: usize, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let Some(len) = declared.filter(|n| *n > max as u64) else {
        return next.run(req).await;
    };
    if len <= DRAIN_MAX_BYTES {
        drain(req.into_body()).await;
    }
    let mut res = ApiError::BadRequest {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "body_too_large",
        message: format!("the body is {len} bytes; at most {max} are accepted"),
    }
    .into_response();
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
}
