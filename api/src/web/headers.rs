//! The security headers of every response, and the Content-Security-Policy of a page:
//! its own origin plus exactly its inline scripts, by their SHA-256.

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Response};
use axum::Router;
use base64::Engine;
use sha2::{Digest, Sha256};

/// What a response without its own policy (every API response) may do: nothing.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The headers every response gets unless it set its own (a page keeps its CSP).
const SECURITY: [(HeaderName, &str); 4] = [
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::CONTENT_SECURITY_POLICY, API_CSP),
];

/// Adds the security headers to every response of `r`, with the other layers that need
/// nothing from the matched route, around the whole router once. A layer added with
/// `Router::layer` is boxed around every route, and every request clones that stack box by
/// box; this stack is flat, one box, cloned once per request. The four headers are one
/// layer, not four `SetResponseHeader`s: each of those moved the whole response out of its
/// inner future again (4 % of the api's instructions per purchase, callgrind).
pub fn with_security_headers(r: Router, max_body: usize) -> Router {
    let outer = tower::ServiceBuilder::new()
        .map_response(secure)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(crate::compress::layer())
        .service(r);
    Router::new().fallback_service(outer)
}

fn secure<B>(mut res: Response<B>) -> Response<B> {
    let headers = res.headers_mut();
    for (name, value) in SECURITY {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    res
}

/// A page's policy: scripts from this origin and the page's own inline ones.
pub fn page_csp(html: &str) -> HeaderValue {
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
    HeaderValue::from_str(&csp).expect("a CSP of ASCII hashes is a valid header value")
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
