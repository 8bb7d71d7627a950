//! The web pages: plain HTML, small JS modules and one stylesheet, compiled into the binary
//! so a node serves them with no file system, build step or CDN.
//!
//! Everything served here is one row of [`FILES`]: its route, its bytes (`include_str!`)
//! and what it is (a page, or an asset with its content type). A new page or asset is a
//! new row, nothing else. At start-up each row is prepared once (`cache`): its strong
//! ETag, its gzip and brotli forms, and for a page its Content-Security-Policy.
//!
//! Every response carries X-Frame-Options, X-Content-Type-Options, Referrer-Policy and a
//! Content-Security-Policy (`headers`). API responses get one that allows nothing; a page
//! gets one that allows its own origin plus exactly its inline scripts, by their SHA-256
//! (hashed from the page text, so editing a page never leaves a stale hash behind).
//!
//! Arrows: `mod` (the table and routes) → `cache` (variants, ETag, 304) → `headers` (CSP).

mod cache;
mod headers;

pub use headers::with_security_headers;

use crate::AppState;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;

/// What a row serves: a page (HTML with its own CSP) or an asset of a content type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Page,
    Asset(&'static str),
}

/// One page or asset: the route it answers, what it is and its bytes.
#[derive(Debug)]
pub struct File {
    pub route: &'static str,
    pub kind: Kind,
    pub text: &'static str,
}

const JS: Kind = Kind::Asset("text/javascript; charset=utf-8");
const CSS: Kind = Kind::Asset("text/css; charset=utf-8");

const fn page(route: &'static str, text: &'static str) -> File {
    File {
        route,
        kind: Kind::Page,
        text,
    }
}

const fn asset(route: &'static str, kind: Kind, text: &'static str) -> File {
    File { route, kind, text }
}

/// Every page and asset the api serves. Add a row to add one (one row a line: rustfmt is
/// told to leave the table alone so rows merge cleanly).
#[rustfmt::skip]
pub const FILES: &[File] = &[
    page("/", include_str!("../../web/index.html")),
    page("/signup", include_str!("../../web/signup.html")),
    page("/login", include_str!("../../web/login.html")),
    page("/drops/{id}", include_str!("../../web/room.html")),
    page("/orders", include_str!("../../web/orders.html")),
    page("/console", include_str!("../../web/console.html")),
    page("/docs", include_str!("../../web/docs.html")),
    asset("/static/app.js", JS, include_str!("../../web/app.js")),
    asset("/static/pow-worker.js", JS, include_str!("../../web/pow-worker.js")),
    asset("/static/login.js", JS, include_str!("../../web/login.js")),
    asset("/static/signup.js", JS, include_str!("../../web/signup.js")),
    asset("/static/drops.js", JS, include_str!("../../web/drops.js")),
    asset("/static/room.js", JS, include_str!("../../web/room.js")),
    asset("/static/room-view.js", JS, include_str!("../../web/room-view.js")),
    asset("/static/orders.js", JS, include_str!("../../web/orders.js")),
    asset("/static/console.js", JS, include_str!("../../web/console.js")),
    asset("/static/console-fair.js", JS, include_str!("../../web/console-fair.js")),
    asset("/static/chart.js", JS, include_str!("../../web/chart.js")),
    asset("/static/style.css", CSS, include_str!("../../web/style.css")),
    asset("/static/docs.js", JS, include_str!("../../web/docs.js")),
    asset("/static/docs.css", CSS, include_str!("../../web/docs.css")),
];

/// One GET route per row of [`FILES`], each answering from its prepared variants.
pub fn router() -> Router<AppState> {
    let prepared = cache::prepared();
    FILES
        .iter()
        .zip(prepared)
        .fold(Router::new(), |r, (file, ready)| {
            r.route(
                file.route,
                get(move |req: HeaderMap| async move { ready.respond(&req) }),
            )
        })
}
