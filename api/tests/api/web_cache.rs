//! Compression and cache headers as a browser meets them: pages and assets in the form its
//! Accept-Encoding asks for, each with its own strong ETag and a 304 when it already holds
//! it; API replies over the threshold compressed, the small hot-path ones and the room
//! socket's upgrade never.

use crate::helpers::*;
use serde_json::json;
use std::io::Read;
use vq_api::web::FILES;

fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "br" => brotli::BrotliDecompress(&mut &body[..], &mut out).unwrap(),
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        _ => out.extend_from_slice(body),
    }
    out
}

async fn get(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.http.get(app.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn pages_and_assets_come_precompressed_with_an_etag_per_form_and_304_on_a_match() {
    let app = spawn_app().await;
    for f in FILES {
        let path = f.route.replace("{id}", "1");
        let plain = get(&app, &path, &[]).await;
        assert_eq!(plain.status(), 200, "{path}");
        assert_eq!(header(&plain, "content-encoding"), "", "{path}");
        assert_eq!(header(&plain, "cache-control"), "no-cache", "{path}");
        let plain_tag = header(&plain, "etag");
        let plain_body = plain.bytes().await.unwrap();
        assert_eq!(&plain_body[..], f.text.as_bytes(), "{path}");
        for (ask, coding) in [("gzip, deflate, br", "br"), ("gzip", "gzip")] {
            let res = get(&app, &path, &[("accept-encoding", ask)]).await;
            assert_eq!(header(&res, "content-encoding"), coding, "{path}");
            assert!(header(&res, "vary").contains("accept-encoding"), "{path}");
            let tag = header(&res, "etag");
            assert!(tag.starts_with('"') && tag != plain_tag, "{path}: {tag}");
            let csp = header(&res, "content-security-policy");
            let body = res.bytes().await.unwrap();
            assert!(body.len() < plain_body.len(), "{path} {coding}");
            assert_eq!(decode(coding, &body), &plain_body[..], "{path} {coding}");

            let again = [("accept-encoding", ask), ("if-none-match", tag.as_str())];
            let res = get(&app, &path, &again).await;
            assert_eq!(res.status(), 304, "{path} {coding}");
            assert_eq!(header(&res, "etag"), tag);
            assert_eq!(header(&res, "content-security-policy"), csp, "{path}");
            assert!(res.bytes().await.unwrap().is_empty());
        }
        // The plain form's tag does not vouch for the brotli bytes (a strong validator).
        let other = [
            ("accept-encoding", "br"),
            ("if-none-match", plain_tag.as_str()),
        ];
        assert_eq!(get(&app, &path, &other).await.status(), 200, "{path}");
        let weak = format!("W/{plain_tag}");
        let res = get(&app, &path, &[("if-none-match", weak.as_str())]).await;
        assert_eq!(res.status(), 304, "{path}: If-None-Match compares weakly");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn api_replies_over_a_kibibyte_are_compressed_and_small_ones_are_not() {
    let app = spawn_app().await;
    let plain = get(&app, "/openapi.json", &[]).await.bytes().await.unwrap();
    assert!(plain.len() > 1024);
    for (ask, coding) in [("br", "br"), ("gzip", "gzip")] {
        let res = get(&app, "/openapi.json", &[("accept-encoding", ask)]).await;
        assert_eq!(header(&res, "content-encoding"), coding);
        let body = res.bytes().await.unwrap();
        assert!(
            body.len() * 3 < plain.len(),
            "{coding}: {} of {}",
            body.len(),
            plain.len()
        );
        assert_eq!(decode(coding, &body), &plain[..]);
    }
    let res = get(&app, "/metrics", &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&res, "content-encoding"), "gzip", "/metrics may be");

    // The hot path: a purchase reply is a few hundred bytes and goes out as it is.
    let drop = app.create_drop(json!({ "stock": 2 })).await;
    let s = app.shopper();
    app.join(drop, &s).await;
    app.admitter().tick_drop(drop).await.unwrap();
    let token = app.admitted_token(drop, &s).await;
    let res = app
        .http
        .post(app.url(&format!("/v1/drops/{drop}/purchase")))
        .bearer_auth(&s.token)
        .header("accept-encoding", "gzip, deflate, br")
        .json(&json!({ "token": token, "quantity": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(header(&res, "content-encoding"), "");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "reserved");
    let res = get(&app, "/healthz", &[("accept-encoding", "br")]).await;
    assert_eq!(header(&res, "content-encoding"), "");
    app.cleanup().await;
}

#[tokio::test]
async fn the_room_socket_upgrades_even_when_the_browser_offers_compression() {
    let app = spawn_app().await;
    let drop = app.create_drop(json!({ "stock": 5 })).await;
    let s = app.shopper();
    let url = format!("ws://127.0.0.1:{}/v1/drops/{drop}/room", app.port);
    let mut req = ws_request(&url, &s.token);
    req.headers_mut()
        .insert("accept-encoding", "gzip, deflate, br".parse().unwrap());
    let (mut ws, res) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    assert_eq!(res.status(), 101);
    assert!(res.headers().get("content-encoding").is_none());
    let first = next_json(&mut ws, 5000).await.expect("a first message");
    assert_eq!(first["type"], "position", "{first}");
    app.cleanup().await;
}
