//! The document against real replies: the bodies the api sends on a buyer's and a
//! manager's main path are checked against the schemas `/openapi.json` gives for that
//! operation and status, so a field added to a reply without its schema (or a schema
//! that describes a body the handler does not build) fails here.

use crate::helpers::*;
use crate::openapi::fetch_document;
use serde_json::{json, Value};

/// Why `v` does not fit `schema` (resolving `$ref`s in `doc`), or `None` if it does.
/// Properties a schema does not list are refused unless it allows them, so drift in
/// either direction shows; ErrorBody, whose details vary by code, is checked openly.
/// `open`: a part of an `allOf`, whose extra properties are checked against the whole.
fn misfit(doc: &Value, schema: &Value, v: &Value, at: &str, open: bool) -> Option<String> {
    if let Some(r) = schema["$ref"].as_str() {
        let target = doc.pointer(&r[1..]).expect("a resolving $ref");
        return misfit(doc, target, v, at, open);
    }
    if let Some(all) = schema["allOf"].as_array() {
        return all
            .iter()
            .find_map(|s| misfit(doc, s, v, at, true))
            .or_else(|| {
                let known: Vec<String> = all.iter().flat_map(|s| names(doc, s)).collect();
                extra(v, &known, at)
            });
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(any) = schema[key].as_array() {
            let fits = any
                .iter()
                .filter(|s| misfit(doc, s, v, at, open).is_none())
                .count();
            return (fits == 0).then(|| format!("{at}: fits none of {key}: {v}"));
        }
    }
    if let Some(e) = schema["enum"].as_array() {
        return (!e.contains(v)).then(|| format!("{at}: {v} not in {e:?}"));
    }
    if !type_fits(&schema["type"], v) {
        return Some(format!("{at}: {v} is not of type {}", schema["type"]));
    }
    match v {
        Value::Object(m) => {
            for r in schema["required"].as_array().into_iter().flatten() {
                if !m.contains_key(r.as_str().unwrap()) {
                    return Some(format!("{at}: missing required {r}"));
                }
            }
            if let Some(props) = schema["properties"].as_object() {
                for (k, x) in m {
                    if let Some(s) = props.get(k) {
                        if let Some(e) = misfit(doc, s, x, &format!("{at}.{k}"), false) {
                            return Some(e);
                        }
                    }
                }
                if schema["additionalProperties"] != true && !open {
                    let known: Vec<String> = props.keys().cloned().collect();
                    return extra(v, &known, at);
                }
            }
            None
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| misfit(doc, &schema["items"], x, &format!("{at}[{i}]"), false)),
        _ => None,
    }
}

fn names(doc: &Value, s: &Value) -> Vec<String> {
    match s["$ref"].as_str() {
        Some(r) => names(doc, doc.pointer(&r[1..]).unwrap()),
        None => {
            let own = s["properties"].as_object().into_iter().flatten();
            let nested = s["allOf"].as_array().into_iter().flatten();
            own.map(|(k, _)| k.clone())
                .chain(nested.flat_map(|x| names(doc, x)))
                .collect()
        }
    }
}

fn extra(v: &Value, known: &[String], at: &str) -> Option<String> {
    let m = v.as_object()?;
    m.keys()
        .find(|k| !known.contains(k))
        .map(|k| format!("{at}: property {k} is not in the schema"))
}

fn type_fits(t: &Value, v: &Value) -> bool {
    let one = |t: &str| match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    };
    match t {
        Value::String(s) => one(s),
        Value::Array(ts) => ts.iter().any(|x| x.as_str().is_some_and(one)),
        _ => true,
    }
}

/// Checks a reply against the document's schema for `method path` answering `status`.
fn check(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let at = format!("{method} {path} {status}");
    let pointer = format!(
        "/paths/{}/{method}/responses/{status}/content/application~1json/schema",
        path.replace('~', "~0").replace('/', "~1")
    );
    let schema = doc
        .pointer(&pointer)
        .unwrap_or_else(|| panic!("{at}: undocumented"));
    if let Some(e) = misfit(doc, schema, body, &at, false) {
        panic!("{e}\nbody: {body}");
    }
}

#[tokio::test]
async fn replies_on_the_main_path_fit_their_documented_schemas() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    let m = app.manager();
    let (st, product) = app
        .call(
            "POST",
            "/v1/admin/products",
            Some(&m),
            Some(json!({"name": "Kettle", "price_cents": 2500})),
        )
        .await;
    check(&doc, "post", "/v1/admin/products", st, &product);
    let drop = app
        .create_drop(json!({ "stock": 3, "product_id": product["id"] }))
        .await;
    let (st, b) = app
        .call("GET", &format!("/v1/admin/drops/{drop}"), Some(&m), None)
        .await;
    check(&doc, "get", "/v1/admin/drops/{id}", st, &b);
    let (st, b) = app.call("GET", "/v1/drops", None, None).await;
    check(&doc, "get", "/v1/drops", st, &b);
    let (st, b) = app
        .call(
            "GET",
            &format!("/v1/products/{}", product["id"]),
            None,
            None,
        )
        .await;
    check(&doc, "get", "/v1/products/{id}", st, &b);

    let (a, b2) = (app.shopper(), app.shopper());
    let (st, b) = app
        .call(
            "GET",
            &format!("/v1/drops/{drop}/challenge"),
            Some(&a.token),
            None,
        )
        .await;
    check(&doc, "get", "/v1/drops/{id}/challenge", st, &b);
    let (st, b) = app
        .call(
            "POST",
            &format!("/v1/drops/{drop}/ticket"),
            Some(&a.token),
            None,
        )
        .await;
    check(&doc, "post", "/v1/drops/{id}/ticket", st, &b);
    let (st, b) = app.join(drop, &a).await;
    assert_eq!(b["status"], "queued", "{b}");
    check(&doc, "post", "/v1/drops/{id}/queue", st, &b);
    app.admitter().tick_drop(drop).await.unwrap();
    let (st, b) = app.place(drop, &a).await;
    assert_eq!(b["status"], "admitted", "{b}");
    check(&doc, "get", "/v1/drops/{id}/queue", st, &b);
    let token = b["token"].as_str().unwrap().to_string();
    let (st, b) = app.purchase(drop, &a, &token, 1).await;
    check(&doc, "post", "/v1/drops/{id}/purchase", st, &b);
    let order = b["order_id"].as_i64().unwrap();
    let (st, b) = app
        .call("GET", &format!("/v1/orders/{order}"), Some(&a.token), None)
        .await;
    check(&doc, "get", "/v1/orders/{id}", st, &b);
    let (st, b) = app.call("GET", "/v1/orders", Some(&a.token), None).await;
    check(&doc, "get", "/v1/orders", st, &b);

    // Errors: the shared body, whatever the extra fields.
    let (st, b) = app.purchase(drop, &b2, &token, 1).await;
    assert_eq!(st, 403);
    check(&doc, "post", "/v1/drops/{id}/purchase", st, &b);
    let (st, b) = app.call("GET", "/v1/drops/999999", None, None).await;
    check(&doc, "get", "/v1/drops/{id}", st, &b);
    let (st, b) = app
        .call("GET", &format!("/v1/drops/{drop}/fairness"), None, None)
        .await;
    check(&doc, "get", "/v1/drops/{id}/fairness", st, &b);
    app.cleanup().await;
}
