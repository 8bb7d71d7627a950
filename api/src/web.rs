//! The web pages: plain HTML and one small JS module, compiled into the binary so a node
//! serves them with no file system, build step or CDN.
//!
//! Every response carries X-Frame-Options, X-Content-Type-Options, Referrer-Policy and a
//! Content-Security-Policy. API responses get one that allows nothing; a page gets one that
//! allows its own origin plus exactly its inline scripts, by their SHA-256 (hashed from
//! the page text here, so editing a page never leaves a stale hash behind).

use crate::AppState;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use sha2::{Digest, Sha256};
use tower_http::set_header::SetResponseHeaderLayer;

/// What a response without its own policy (every API response) may do: nothing.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every response of `r` (a page's own CSP is kept).
pub fn with_security_headers(r: Router) -> Router {
    let set = |name: HeaderName, v: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(v))
    };
    r.layer(set(header::CONTENT_SECURITY_POLICY, API_CSP))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::REFERRER_POLICY, "no-referrer"))
}

/// A page with its policy: scripts from this origin and the page's own inline ones.
fn page(html: &'static str) -> Response {
    let hashes: String = inline_scripts(html)
        .map(|s| {
            let digest = Sha256::digest(s.as_bytes());
            let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
            format!(" 'sha256-{b64}'")
        })
        .collect();
    let csp = format!(
        "default-src 'self'; script-src 'self'{hashes}; worker-src 'self'; \
         connect-src 'self'; img-src 'self' data:; style-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    let mut res = Html(html).into_response();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

/// The text of every `<script>` element without a `src`.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    html.split("<script").skip(1).filter_map(|rest| {
        let (tag, body) = rest.split_once('>')?;
        if tag.contains("src=") {
            return None;
        }
        body.split_once("</script>").map(|(text, _)| text)
    })
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { page(include_str!("../web/index.html")) }),
        )
        .route(
            "/signup",
            get(|| async { page(include_str!("../web/signup.html")) }),
        )
        .route(
            "/login",
            get(|| async { page(include_str!("../web/login.html")) }),
        )
        .route(
            "/drops/{id}",
            get(|| async { page(include_str!("../web/room.html")) }),
        )
        .route(
            "/orders",
            get(|| async { page(include_str!("../web/orders.html")) }),
        )
        .route(
            "/console",
            get(|| async { page(include_str!("../web/console.html")) }),
        )
        .route(
            "/static/app.js",
            get(|| async {
                asset(
                    "text/javascript; charset=utf-8",
                    include_str!("../web/app.js"),
                )
            }),
        )
        .route(
            "/static/pow-worker.js",
            get(|| async {
                asset(
                    "text/javascript; charset=utf-8",
                    include_str!("../web/pow-worker.js"),
                )
            }),
        )
        .route(
            "/static/login.js",
            get(|| async { js(include_str!("../web/login.js")) }),
        )
        .route(
            "/static/signup.js",
            get(|| async { js(include_str!("../web/signup.js")) }),
        )
        .route(
            "/static/drops.js",
            get(|| async { js(include_str!("../web/drops.js")) }),
        )
        .route(
            "/static/room.js",
            get(|| async { js(include_str!("../web/room.js")) }),
        )
        .route(
            "/static/room-view.js",
            get(|| async { js(include_str!("../web/room-view.js")) }),
        )
        .route(
            "/static/orders.js",
            get(|| async { js(include_str!("../web/orders.js")) }),
        )
        .route(
            "/static/console.js",
            get(|| async { js(include_str!("../web/console.js")) }),
        )
        .route(
            "/static/console-fair.js",
            get(|| async { js(include_str!("../web/console-fair.js")) }),
        )
        .route(
            "/static/chart.js",
            get(|| async { js(include_str!("../web/chart.js")) }),
        )
        .route(
            "/static/style.css",
            get(|| async { asset("text/css; charset=utf-8", include_str!("../web/style.css")) }),
        )
}

/// A JavaScript module of the pages.
fn js(body: &'static str) -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", body)
}

fn asset(kind: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
}
