//! The OpenAPI 3.1 document of the api, generated from the handlers: each route module
//! has a `Doc` (`#[derive(OpenApi)]` listing its `#[utoipa::path]` handlers, next to its
//! `router()`), and [`document`] merges them under the root below, then lets `derived`
//! add what the extractors imply. Served at `GET /openapi.json`, rendered at `/docs` (a
//! page of `web`).
//!
//! Arrows: this module reads the route modules' `Doc`s; nothing depends on it but `lib`.

mod derived;

pub use derived::BEARER;

use crate::AppState;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::LazyLock;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "VitaQueue API",
        description = "A fair waiting room for limited drops. Errors answer `{code, message, ...}` \
            (see ErrorBody). Protected operations take `Authorization: Bearer <access token>` \
            from `/v1/auth/login`; those whose security lists the `manager` role need a \
            manager's token."
    ),
    paths(openapi_json),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&Bearer),
    tags(
        (name = "drops", description = "Drops, their waiting room and the purchase"),
        (name = "fairness", description = "The pre-queue draw, checkable by anyone"),
        (name = "admin", description = "Managing drops and products (manager role)"),
        (name = "accounts", description = "Sign-up, log-in and sessions"),
        (name = "orders", description = "A buyer's orders: pay, cancel, return"),
        (name = "catalog", description = "Products and the wishlist"),
        (name = "notifications", description = "What an account was told"),
        (name = "webhooks", description = "Signed event deliveries to integrators (manager role)"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
struct Root;

/// Adds the bearer scheme every protected operation names.
struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(derived::BEARER, SecurityScheme::Http(scheme));
    }
}

/// The whole document: the root, every route module's operations, and the derived parts.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Root::openapi();
    for part in [
        crate::drops::public::Doc::openapi(),
        crate::drops::purchase::Doc::openapi(),
        crate::drops::history::Doc::openapi(),
        crate::drops::simulate::Doc::openapi(),
        crate::drops::admin::Doc::openapi(),
        crate::drops::recover::Doc::openapi(),
        crate::drops::fairness::Doc::openapi(),
        crate::room::Doc::openapi(),
        crate::pow::Doc::openapi(),
        crate::accounts::Doc::openapi(),
        crate::orders::Doc::openapi(),
        crate::products::Doc::openapi(),
        crate::wishlist::Doc::openapi(),
        crate::notifications::Doc::openapi(),
        crate::webhooks::Doc::openapi(),
        crate::health::Doc::openapi(),
        crate::observe::Doc::openapi(),
    ] {
        doc.merge(part);
    }
    derived::complete(&mut doc);
    doc
}

/// Rendered once per process: the document only changes with the binary.
static JSON: LazyLock<String> =
    LazyLock::new(|| document().to_json().expect("the document serializes"));

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], JSON.as_str())
}
