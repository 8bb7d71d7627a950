//! The OpenAPI document against the source and the standard: every route the api
//! registers (found by reading api/src at test time, so a route added later without an
//! annotation fails here) is in `/openapi.json` with its method, nothing else is, and the
//! document is OpenAPI 3.1 whose every `$ref` resolves.

use crate::helpers::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

const METHODS: [&str; 8] = [
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

/// Where `.route(` is called with a computed path: the web table (`web::FILES`), whose
/// pages and assets are HTML/JS/CSS for browsers, not API operations.
const COMPUTED_ROUTE_FILES: [&str; 1] = ["web/mod.rs"];

/// `(method, path)` of every `.route("…", method(..).method(..))` under api/src.
pub fn source_routes() -> BTreeSet<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut routes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        for bad in [".nest(", ".route_service(", ".nest_service("] {
            assert!(
                !text.contains(bad),
                "{rel} uses {bad}: teach this scan about it"
            );
        }
        let mut rest = text.as_str();
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            let args = balanced(rest);
            let Some(path) = args.trim_start().strip_prefix('"') else {
                assert!(
                    COMPUTED_ROUTE_FILES.contains(&rel.as_str()),
                    "{rel}: .route({args})"
                );
                continue;
            };
            let (path, after) = path.split_once('"').unwrap();
            let methods = top_level_methods(after.trim_start().trim_start_matches(','));
            assert!(!methods.is_empty(), "{rel}: no method in .route({args})");
            for m in methods {
                routes.insert((m, path.to_string()));
            }
        }
    }
    routes
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text up to the `)` closing the call whose arguments start `s`.
fn balanced(s: &str) -> &str {
    let mut depth = 0i32;
    let mut in_str = false;
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '(' | '{' | '[' if !in_str => depth += 1,
            ')' | '}' | ']' if !in_str => {
                if depth == 0 {
                    return &s[..i];
                }
                depth -= 1;
            }
            _ => {}
        }
        prev = c;
    }
    panic!("unbalanced .route( call")
}

/// The method-router calls at the top level of `expr` (`get(a).post(b)`,
/// `axum::routing::patch(c).delete(d)`), never those nested inside a handler closure.
fn top_level_methods(expr: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut depth = 0i32;
    let bytes = expr.as_bytes();
    for (i, c) in expr.char_indices() {
        match c {
            '(' if depth == 0 => {
                let start = expr[..i]
                    .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map_or(0, |p| p + 1);
                let name = &expr[start..i];
                let before = if start == 0 { b' ' } else { bytes[start - 1] };
                if METHODS.contains(&name) && matches!(before, b'.' | b':' | b' ' | b'\n') {
                    found.push(name.to_string());
                }
                depth += 1;
            }
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            _ => {}
        }
    }
    found
}

fn document_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if item.get(m).is_some() {
                out.insert((m.to_string(), path.clone()));
            }
        }
    }
    out
}

pub async fn fetch_document(app: &TestApp) -> Value {
    let res = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let ct = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/json"), "{ct}");
    res.json().await.unwrap()
}

#[tokio::test]
async fn every_route_in_the_source_is_in_the_document_and_nothing_else() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    let source = source_routes();
    assert!(source.len() >= 40, "the scan found only {source:?}");
    assert!(source.contains(&("patch".into(), "/v1/admin/drops/{id}".into())));
    assert!(source.contains(&("get".into(), "/healthz".into())));
    let documented = document_routes(&doc);
    let missing: Vec<_> = source.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes without a #[utoipa::path]: {missing:?}"
    );
    let stale: Vec<_> = documented.difference(&source).collect();
    assert!(stale.is_empty(), "documented but not routed: {stale:?}");
    // The web table's pages and assets are not API operations.
    for f in vq_api::web::FILES {
        assert!(doc["paths"].get(f.route).is_none(), "{} is a page", f.route);
    }
    app.cleanup().await;
}

/// Every `"$ref"` string anywhere in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_every_reference_resolves() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 20, "{all:?}");
    for r in &all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (m, op) in item.as_object().unwrap() {
            let at = format!("{m} {path}");
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{at}: no responses");
            for (status, r) in responses {
                let described = r["description"].as_str().is_some_and(|d| !d.is_empty());
                assert!(described, "{at} {status}: no description");
            }
            assert!(
                ids.insert(op["operationId"].to_string()),
                "{at}: duplicate id"
            );
            for name in path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            {
                let declared = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p["in"] == "path" && p["name"] == name && p["required"] == true);
                assert!(declared, "{at}: path parameter {name} not declared");
            }
            for req in op["security"].as_array().into_iter().flatten() {
                for scheme in req.as_object().unwrap().keys() {
                    assert!(
                        schemes.contains_key(scheme),
                        "{at}: unknown scheme {scheme}"
                    );
                }
            }
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                assert!(
                    responses.contains_key("401"),
                    "{at}: protected without a 401"
                );
            }
        }
    }
    app.cleanup().await;
}
