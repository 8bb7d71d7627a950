//! Response compression for everything the handlers answer (pages and assets come already
//! compressed from `web`, which this layer leaves alone: it skips any response that has a
//! Content-Encoding).
//!
//! Why a threshold of 1 KiB: below it a response and its headers fit one TCP segment
//! (MSS 1460) compressed or not, so compressing saves no packet and no round trip, yet
//! costs a fresh encoder per response (see BENCHMARKS.md, section "Compression", for the
//! measured cost per reply). The hot paths (the purchase reply, the queue status, errors)
//! are all a few hundred bytes and so pass through untouched; drop lists, product pages
//! and `/metrics` are compressed. Never compressed: the WebSocket upgrade (a 101 has no
//! body to compress, and its frames are not HTTP bodies), images and event streams.

use axum::http::{Extensions, HeaderMap, StatusCode, Version};
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, CompressionLevel};

/// Responses smaller than this many bytes are sent as they are.
pub const MIN_SIZE: u16 = 1024;

/// gzip (level 6) and brotli (quality 4: tower-http's default, fast enough per request).
pub fn layer() -> CompressionLayer<impl Predicate> {
    let not_upgrade = |s: StatusCode, _: Version, _: &HeaderMap, _: &Extensions| {
        s != StatusCode::SWITCHING_PROTOCOLS
    };
    CompressionLayer::new()
        .gzip(true)
        .br(true)
        .quality(CompressionLevel::Default)
        .compress_when(
            SizeAbove::new(MIN_SIZE)
                .and(NotForContentType::IMAGES)
                .and(NotForContentType::SSE)
                .and(not_upgrade),
        )
}
