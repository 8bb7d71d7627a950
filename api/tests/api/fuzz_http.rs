//! Property tests of every HTTP body parser (admin create and patch, purchase, queue) and
//! of authentication: random bytes, random and near-valid JSON, oversize bodies, random,
//! forged, expired, other accounts' and replayed tokens. Whatever arrives: never a 5xx,
//! always a JSON `{code, message}` error, and a rejected request changes nothing (the drop's
//! Redis keys byte for byte, the drop row, the order counts).

use crate::helpers::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use vq_core::domain::DropId;
use vq_core::Clock;

const FIELDS: &[&str] = &[
    "product_name",
    "price_cents",
    "stock",
    "starts_at",
    "per_user_limit",
    "admission_rate",
    "max_holders",
    "token_ttl_s",
    "prequeue_s",
    "token",
    "quantity",
    "type",
];

pub fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Any JSON value, keys biased towards the fields the API knows.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map(key(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(FIELDS).prop_map(String::from),
        1 => "[a-z_]{1,12}",
    ]
}

/// Objects of known fields with edge values: mostly invalid, sometimes valid.
pub fn near_valid() -> impl Strategy<Value = Value> {
    let value = prop_oneof![
        prop::sample::select(vec![
            0i64,
            -1,
            1,
            5,
            100,
            4096,
            i32::MAX as i64 + 1,
            i64::MIN
        ])
        .prop_map(Value::from),
        prop::sample::select(vec![
            "2030-01-01T00:00:00Z",
            "2020-02-30T00:00:00Z",
            "yesterday",
            "",
            "x".repeat(300).leak(),
        ])
        .prop_map(Value::from),
        Just(Value::Null),
        Just(json!([])),
    ];
    prop::collection::btree_map(
        prop::sample::select(FIELDS).prop_map(String::from),
        value,
        0..10,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()))
}

#[derive(Debug, Clone)]
pub enum Body {
    Raw(Vec<u8>, Option<&'static str>),
    Json(Value),
    /// A JSON document past the 16 KiB body limit.
    Big(usize),
}

pub fn body() -> impl Strategy<Value = Body> {
    let ctype = prop::sample::select(vec![Some("application/json"), Some("text/plain"), None]);
    prop_oneof![
        3 => (prop::collection::vec(any::<u8>(), 0..300), ctype).prop_map(|(b, c)| Body::Raw(b, c)),
        4 => json_value().prop_map(Body::Json),
        4 => near_valid().prop_map(Body::Json),
        1 => (16 * 1024..40 * 1024usize).prop_map(Body::Big),
    ]
}

pub async fn send(app: &TestApp, method: &str, path: &str, jwt: &str, b: &Body) -> (u16, String) {
    let mut req = app
        .http
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(jwt);
    req = match b {
        Body::Raw(bytes, ctype) => {
            let r = req.body(bytes.clone());
            match ctype {
                Some(c) => r.header("content-type", *c),
                None => r,
            }
        }
        Body::Json(v) => req.json(v),
        Body::Big(n) => req
            .header("content-type", "application/json")
            .body(json!({ "product_name": "x".repeat(*n) }).to_string()),
    };
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.text().await.unwrap_or_default())
}

/// A 4xx answer with a JSON `{code, message}` body; anything else fails the case.
pub fn clear_error(status: u16, text: &str) -> Result<String, TestCaseError> {
    prop_assert!(status < 500, "server error {status}: {text}");
    let v: Value = serde_json::from_str(text)
        .map_err(|_| TestCaseError::fail(format!("{status} body not JSON: {text:?}")))?;
    prop_assert!(v["message"].is_string(), "{status} without message: {v}");
    v["code"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| TestCaseError::fail(format!("{status} without code: {v}")))
}

/// Everything a request could change: every Redis key of the drop (DUMP, byte for byte),
/// the drop's row, and the number of drops and orders. The console's history samples are left
/// out: a background sampler appends to them every second whatever requests arrive.
pub async fn snapshot(app: &TestApp, drop: DropId) -> Value {
    let mut conn = app.redis.clone();
    let mut keys = Vec::new();
    let dk = app.keys.drop(drop);
    let sampled = [dk.history(), dk.history_gate()];
    for k in dk.all().into_iter().filter(|k| !sampled.contains(k)) {
        let dump: Option<Vec<u8>> = redis::cmd("DUMP")
            .arg(&k)
            .query_async(&mut conn)
            .await
            .unwrap();
        keys.push(json!([k, dump.map(hex::encode)]));
    }
    let row: Option<String> =
        sqlx::query_scalar("SELECT row_to_json(d)::text FROM drops d WHERE id = $1")
            .bind(drop.get())
            .fetch_optional(&app.db)
            .await
            .unwrap();
    let (drops, orders): (i64, i64) =
        sqlx::query_as("SELECT (SELECT COUNT(*) FROM drops), (SELECT COUNT(*) FROM orders)")
            .fetch_one(&app.db)
            .await
            .unwrap();
    json!({ "keys": keys, "row": row, "drops": drops, "orders": orders })
}

/// Runs an async property on the test's multi-thread runtime.
pub fn run<S: Strategy>(
    cases: u32,
    strategy: S,
    case: impl Fn(S::Value) -> futures::future::BoxFuture<'static, Result<(), TestCaseError>>,
) {
    let rt = tokio::runtime::Handle::current();
    let result = runner(cases).run(&strategy, |v| {
        tokio::task::block_in_place(|| rt.block_on(case(v)))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_body_on_any_route_is_a_clear_error_or_a_valid_change() {
    let app = std::sync::Arc::new(
        spawn_app_tuned(
            Opts {
                clock: Clock::manual(now_ms()),
                ..Opts::default()
            },
            unlimited_accounts,
        )
        .await,
    );
    let drop = app.create_drop(json!({ "stock": 5 })).await;
    let (manager, shopper) = (app.manager(), app.shopper());
    // (method, path, caller, whether the body is read at all)
    let routes = vec![
        ("POST", "/v1/admin/drops".to_string(), manager.clone(), true),
        (
            "PATCH",
            format!("/v1/admin/drops/{drop}"),
            manager.clone(),
            true,
        ),
        (
            "POST",
            format!("/v1/drops/{drop}/purchase"),
            shopper.token.clone(),
            true,
        ),
        (
            "POST",
            format!("/v1/drops/{drop}/queue"),
            shopper.token.clone(),
            false,
        ),
        (
            "POST",
            "/v1/drops/not-a-number/purchase".to_string(),
            shopper.token.clone(),
            false,
        ),
        (
            "PATCH",
            "/v1/admin/drops/99999999999999999999".to_string(),
            manager.clone(),
            false,
        ),
    ];
    let a = app.clone();
    run(
        192,
        (prop::sample::select(routes), body()),
        move |((method, path, jwt, reads_body), b)| {
            let app = a.clone();
            Box::pin(async move {
                let before = snapshot(&app, drop).await;
                let (status, text) = send(&app, method, &path, &jwt, &b).await;
                if status >= 400 {
                    let code = clear_error(status, &text)?;
                    if reads_body && matches!(b, Body::Big(_)) {
                        prop_assert_eq!(status, 413, "{}", code);
                    }
                    prop_assert_eq!(
                        snapshot(&app, drop).await,
                        before,
                        "{} {} changed state",
                        method,
                        path
                    );
                } else {
                    // Only a body that is valid by chance may succeed, and then as documented.
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    prop_assert!(
                        (path.ends_with("/queue") && status == 200) || v["id"].is_i64(),
                        "{} {} → {} {}",
                        method,
                        path,
                        status,
                        text
                    );
                }
                Ok(())
            })
        },
    );
    std::sync::Arc::try_unwrap(app)
        .ok()
        .expect("one handle")
        .cleanup()
        .await;
}
