//! What response compression costs per reply, through the api's own layer
//! (`vq_api::compress::layer`, tower-http gzip level 6 / brotli quality 4): the purchase
//! reply (≈200 B, under the 1 KiB threshold, so passed through) against the same reply
//! forced through each encoder, and a 20-drop list (6 KB). Why the threshold: see
//! `api/src/compress.rs`. Run: `cargo bench -p loadtest --bench compression`.

use axum::body::{Body, Bytes};
use axum::http::{header, Request, Response};
use criterion::{criterion_group, criterion_main, Criterion};
use std::convert::Infallible;
use std::hint::black_box;
use tower::{Layer, Service, ServiceExt};
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::compression::{Compression, CompressionLayer};

fn purchase_reply() -> Bytes {
    Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "status": "reserved", "order_id": 12884901893i64,
            "token": "3f9a1c2e4b5d6f708192a3b4c5d6e7f8.1712345678901",
            "quantity": 1, "remaining": 4187, "bought_total": 1,
            "order_status": "PENDING_PAYMENT",
        }))
        .unwrap(),
    )
}

fn drop_list() -> Bytes {
    let items: Vec<_> = (0..20)
        .map(|i| serde_json::json!({
            "id": i, "product_name": format!("Sneaker model {i}"), "price_cents": 12900,
            "stock": 5000, "remaining": 4187 - i, "per_user_limit": 1,
            "starts_at": "2026-11-25T16:00:00Z", "opens_at": "2026-11-25T15:55:00Z",
            "phase": "live", "queue_len": 18234 + i,
            "shuffle_commitment": "292bbb9164ccc6685453ebbbbc6d369baa104ea8d68cd649d2b141819b50ce17",
        }))
        .collect();
    Bytes::from(serde_json::to_vec(&serde_json::json!({ "items": items })).unwrap())
}

/// A handler answering `body`, behind `layer`.
fn service<P: Predicate>(
    layer: &CompressionLayer<P>,
    body: Bytes,
) -> Compression<
    impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
    P,
> {
    layer.layer(tower::service_fn(move |_req: Request<Body>| {
        std::future::ready(Ok::<_, Infallible>(Response::new(Body::from(body.clone()))))
    }))
}

/// One request asking for `coding`; returns the bytes sent.
async fn one<S, P>(svc: &Compression<S, P>, coding: &str) -> usize
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
    P: Predicate,
{
    let req = Request::builder()
        .header(header::ACCEPT_ENCODING, coding)
        .body(Body::empty())
        .unwrap();
    let res = svc.clone().oneshot(req).await.unwrap();
    let sent = axum::body::to_bytes(Body::new(res.into_body()), usize::MAX)
        .await
        .unwrap();
    sent.len()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ours = vq_api::compress::layer();
    // The same codecs with no threshold: what compressing the small replies would cost.
    let always = CompressionLayer::new().compress_when(SizeAbove::new(0));
    let mut g = c.benchmark_group("compress");
    for (name, body) in [
        ("purchase_reply", purchase_reply()),
        ("drop_list_6k", drop_list()),
    ] {
        let (api, forced) = (service(&ours, body.clone()), service(&always, body.clone()));
        for coding in ["identity", "gzip", "br"] {
            let sent = rt.block_on(one(&api, coding));
            eprintln!("{name} {coding}: {} B -> {sent} B (api layer)", body.len());
            g.bench_function(format!("{name}/{coding}/api_layer"), |b| {
                b.iter(|| rt.block_on(one(black_box(&api), coding)))
            });
            if name == "purchase_reply" && coding != "identity" {
                let sent = rt.block_on(one(&forced, coding));
                eprintln!(
                    "{name} {coding}: {} B -> {sent} B (no threshold)",
                    body.len()
                );
                g.bench_function(format!("{name}/{coding}/no_threshold"), |b| {
                    b.iter(|| rt.block_on(one(black_box(&forced), coding)))
                });
            }
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
