//! The web pages: plain HTML and one small JS module, compiled into the binary so a node
//! serves them with no file system, build step or CDN.

use crate::AppState;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { Html(include_str!("../web/index.html")) }),
        )
        .route(
            "/login",
            get(|| async { Html(include_str!("../web/login.html")) }),
        )
        .route(
            "/drops/{id}",
            get(|| async { Html(include_str!("../web/room.html")) }),
        )
        .route(
            "/orders",
            get(|| async { Html(include_str!("../web/orders.html")) }),
        )
        .route(
            "/console",
            get(|| async { Html(include_str!("../web/console.html")) }),
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
            "/static/style.css",
            get(|| async { asset("text/css; charset=utf-8", include_str!("../web/style.css")) }),
        )
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
