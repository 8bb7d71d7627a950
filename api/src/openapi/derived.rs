//! The parts of the document that follow from the extractors a handler takes rather than
//! from the handler itself, added to every operation in one place so no annotation can
//! forget them: the integer `{id}` path parameter (`DropPath`, `IdPath`, `ProductPath`
//! refuse anything else with a 404), and the error answers of `ApiJson` (400, 413, 415,
//! 422), `ApiQuery` (422), the bearer extractors (401; 403 for the wrong role) and the id
//! extractors (404). An operation that declares one of these statuses keeps its own.
//! Also each operation's `operationId`, from its method and path.

use serde_json::{json, Map, Value};
use utoipa::openapi::OpenApi;

/// The name of the bearer-token security scheme.
pub const BEARER: &str = "bearer";

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Adds the derived parameters and responses to every operation of `doc`.
pub fn complete(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        for method in METHODS {
            let Some(op) = operation(item, method) else {
                continue;
            };
            let mut v = serde_json::to_value(&*op).expect("an operation serializes");
            v["operationId"] = json!(operation_id(method, path));
            complete_operation(path, &mut v);
            *op = serde_json::from_value(v).expect("the completed operation parses");
        }
    }
}

fn operation<'a>(
    item: &'a mut utoipa::openapi::PathItem,
    method: &str,
) -> Option<&'a mut utoipa::openapi::path::Operation> {
    match method {
        "get" => item.get.as_mut(),
        "put" => item.put.as_mut(),
        "post" => item.post.as_mut(),
        "delete" => item.delete.as_mut(),
        "options" => item.options.as_mut(),
        "head" => item.head.as_mut(),
        "patch" => item.patch.as_mut(),
        _ => item.trace.as_mut(),
    }
}

fn complete_operation(path: &str, op: &mut Value) {
    describe_statuses(op);
    let ids = path_params(path);
    add_path_params(op, &ids);
    let has_body = op.get("requestBody").is_some();
    let has_query = params_in(op, "query");
    let roles: Vec<String> = op["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|req| req.get(BEARER)?.as_array().cloned())
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
    let mut add = |status: &str, why: &str| add_error(op, status, why);
    if has_body {
        add("400", "`malformed_json`: the body is not JSON");
        add("413", "`body_too_large`: the body is over the size limit");
        add(
            "415",
            "`unsupported_media_type`: the body is not `application/json`",
        );
        add(
            "422",
            "`validation_failed` (every bad field in `fields`) or `invalid_body`",
        );
    }
    if has_query {
        add(
            "422",
            "`validation_failed`: a query parameter is invalid (see `fields`)",
        );
    }
    if secured {
        add(
            "401",
            "`unauthorized` or `token_revoked`: no valid bearer token",
        );
    }
    if roles.iter().any(|r| r == "manager") {
        add("403", "`forbidden`: this needs a manager's token");
    } else if roles.iter().any(|r| r == "shopper") {
        add(
            "403",
            "`wrong_role`: this is for shoppers; managers cannot queue or buy",
        );
    }
    if !ids.is_empty() {
        add("404", "`*_not_found`: nothing with this id");
    }
}

/// A unique, stable id from the method and path (`post /v1/drops/{id}/queue` is
/// `post_drops_id_queue`): handler names repeat across modules (`list`, `show`...).
fn operation_id(method: &str, path: &str) -> String {
    let words = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "v1")
        .map(|s| {
            s.trim_matches(|c| c == '{' || c == '}')
                .replace(['-', '.'], "_")
        });
    std::iter::once(method.to_string())
        .chain(words)
        .collect::<Vec<_>>()
        .join("_")
}

/// A response declared without a description gets its status's reason ("Created").
fn describe_statuses(op: &mut Value) {
    let Some(map) = op["responses"].as_object_mut() else {
        return;
    };
    for (status, r) in map.iter_mut() {
        if r["description"].as_str().is_none_or(str::is_empty) {
            let reason = status
                .parse::<u16>()
                .ok()
                .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Response");
            r["description"] = json!(reason);
        }
    }
}

/// The names of the `{…}` segments of `path`.
pub fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

fn params_in(op: &Value, place: &str) -> bool {
    op["parameters"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["in"] == place))
}

fn add_path_params(op: &mut Value, names: &[&str]) {
    let obj = op.as_object_mut().expect("an operation is an object");
    let params = obj.entry("parameters").or_insert_with(|| json!([]));
    let list = params.as_array_mut().expect("parameters is an array");
    for name in names {
        if !list.iter().any(|p| p["in"] == "path" && p["name"] == *name) {
            list.push(json!({
                "name": name,
                "in": "path",
                "required": true,
                "description": "A positive integer id; anything else answers 404.",
                "schema": { "type": "integer", "format": "int64", "minimum": 1 },
            }));
        }
    }
    if list.is_empty() {
        obj.remove("parameters");
    }
}

fn add_error(op: &mut Value, status: &str, why: &str) {
    let responses = op
        .as_object_mut()
        .expect("an operation is an object")
        .entry("responses")
        .or_insert_with(|| Value::Object(Map::new()));
    let map = responses.as_object_mut().expect("responses is an object");
    map.entry(status).or_insert_with(|| {
        json!({
            "description": why,
            "content": { "application/json": {
                "schema": { "$ref": "#/components/schemas/ErrorBody" }
            }},
        })
    });
}
