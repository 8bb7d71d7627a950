//! The verifiable pre-queue draw: commitment before the start, seed and draw after, the
//! real queue order equal to the published one, and `vitaqueue verify-shuffle` against the
//! genuine and tampered data.

use crate::helpers::*;
use crate::procs::vitaqueue_bin;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use vq_core::domain::DropId;
use vq_core::fairness::{verify, Mismatch, PublishedDraw};
use vq_core::Clock;

/// An app whose clock stands 30 s before a drop's start, pre-queue open.
async fn prequeue_drop() -> (TestApp, DropId, Clock, i64) {
    let start = chrono::Utc::now() + chrono::Duration::hours(1);
    let clock = Clock::manual(start.timestamp_millis() - 30_000);
    let app = spawn_app_with(Opts {
        clock: clock.clone(),
        ..Opts::default()
    })
    .await;
    let drop = app
        .create_drop(json!({ "starts_at": start.to_rfc3339(), "prequeue_s": 600, "stock": 100 }))
        .await;
    (app, drop, clock, start.timestamp_millis())
}

async fn fairness(app: &TestApp, drop: DropId, query: &str) -> (u16, Value) {
    app.call(
        "GET",
        &format!("/v1/drops/{drop}/fairness{query}"),
        None,
        None,
    )
    .await
}

/// Joins `n` shoppers over HTTP; returns user id → pseudonym.
async fn join_all(app: &TestApp, drop: DropId, n: usize) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for _ in 0..n {
        let s = app.shopper();
        let (st, b) = app.join(drop, &s).await;
        assert_eq!((st, b["prequeue"].as_bool()), (200, Some(true)), "{b}");
        let p = b["pseudonym"].as_str().unwrap().to_string();
        let (_, mine) = app.place(drop, &s).await;
        assert_eq!(mine["pseudonym"].as_str(), Some(p.as_str()), "stable");
        names.insert(s.user.to_string(), p);
    }
    names
}

fn published(v: &Value) -> PublishedDraw {
    PublishedDraw {
        commitment: v["shuffle_commitment"].as_str().unwrap().into(),
        seed_hex: v["shuffle_seed"].as_str().unwrap().into(),
        pseudonyms: v["draw"]["pseudonyms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect(),
    }
}

#[tokio::test]
async fn the_commitment_is_public_before_the_start_and_the_draw_is_the_queue_order() {
    let (app, drop, clock, starts_at) = prequeue_drop().await;
    let (_, d) = app
        .call("GET", &format!("/v1/drops/{drop}"), None, None)
        .await;
    let commitment = d["shuffle_commitment"].as_str().unwrap().to_string();
    assert_eq!(commitment.len(), 64);
    let (_, admin) = app
        .call(
            "GET",
            &format!("/v1/admin/drops/{drop}"),
            Some(&app.manager()),
            None,
        )
        .await;
    assert_eq!(
        admin["shuffle_commitment"].as_str(),
        Some(commitment.as_str())
    );
    assert!(admin.get("shuffle_seed").is_none(), "{admin}");
    let (st, f) = fairness(&app, drop, "").await;
    assert_eq!(st, 200);
    assert_eq!(f["shuffle_commitment"].as_str(), Some(commitment.as_str()));
    assert!(f["shuffle_seed"].is_null() && f["draw"].is_null(), "{f}");

    let names = join_all(&app, drop, 8).await;
    let (_, f) = fairness(&app, drop, "").await;
    assert!(f["shuffle_seed"].is_null(), "still secret with joiners in");

    clock.set(starts_at + 1);
    let late = app.shopper();
    assert_eq!(app.join(drop, &late).await.0, 200);
    let (st, f) = fairness(&app, drop, "").await;
    assert_eq!(st, 200, "{f}");
    let seed = hex::decode(f["shuffle_seed"].as_str().unwrap()).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&seed)), commitment);
    assert_eq!(f["shuffle_commitment"].as_str(), Some(commitment.as_str()));
    let draw = published(&f);
    assert_eq!(f["draw"]["total"], 8, "only pre-queue joiners: {f}");
    let mut listed = draw.pseudonyms.clone();
    let mut joined: Vec<String> = names.values().cloned().collect();
    listed.sort();
    joined.sort();
    assert_eq!(listed, joined);
    assert_eq!(verify(&draw).unwrap().joiners, 8);
    assert!(
        !f.to_string().contains(&late.user.to_string()),
        "no account ids"
    );

    // The real admission order is the published one, then the live joiner.
    let out = app.admitter().tick_drop(drop).await.unwrap();
    let admitted: Vec<&str> = out.admitted.iter().map(|a| a.user.as_str()).collect();
    assert_eq!(admitted.len(), 9);
    assert_eq!(admitted[8], late.user.to_string());
    let as_pseudonyms: Vec<String> = admitted[..8].iter().map(|u| names[*u].clone()).collect();
    assert_eq!(as_pseudonyms, draw.pseudonyms);

    // Paging gives the same list; bad limits are refused.
    let mut paged = Vec::new();
    let mut offset = 0;
    loop {
        let (st, p) = fairness(&app, drop, &format!("?limit=3&offset={offset}")).await;
        assert_eq!(st, 200);
        paged.extend(published(&p).pseudonyms);
        match p["draw"]["next_offset"].as_u64() {
            Some(n) => offset = n,
            None => break,
        }
    }
    assert_eq!(paged, draw.pseudonyms);
    for bad in ["?limit=0", "?limit=1001", "?limit=x", "?nope=1"] {
        let (st, b) = fairness(&app, drop, bad).await;
        assert_eq!(st, 422, "{bad}: {b}");
        assert!(b["code"].is_string(), "{bad}: {b}");
    }
    let (st, _) = fairness(&app, DropId::new(999_999).unwrap(), "").await;
    assert_eq!(st, 404);
    app.cleanup().await;
}

#[tokio::test]
async fn verify_rejects_a_tampered_list_seed_or_commitment() {
    let (app, drop, clock, starts_at) = prequeue_drop().await;
    join_all(&app, drop, 6).await;
    clock.set(starts_at);
    let (_, f) = fairness(&app, drop, "").await;
    let genuine = published(&f);
    assert!(verify(&genuine).is_ok());

    let mut swapped = genuine.clone();
    swapped.pseudonyms.swap(1, 2);
    assert!(matches!(
        verify(&swapped),
        Err(Mismatch::OutOfOrder { index: 1, .. })
    ));
    let mut seed = genuine.clone();
    seed.seed_hex = hex::encode([7u8; 32]);
    assert!(matches!(verify(&seed), Err(Mismatch::BadCommitment { .. })));
    let mut commitment = genuine.clone();
    commitment.commitment = hex::encode(Sha256::digest([7u8; 32]));
    assert!(matches!(
        verify(&commitment),
        Err(Mismatch::BadCommitment { .. })
    ));
    app.cleanup().await;
}

async fn run_cli(api: &str, drop: DropId, extra: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(vitaqueue_bin())
        .args(["verify-shuffle", "--api", api, "--drop", &drop.to_string()])
        .args(extra)
        .output()
        .await
        .expect("run vitaqueue");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (out.status.success(), text)
}

/// Serves one fixed fairness document on loopback (a tampering server).
async fn serve(doc: Value) -> String {
    let router = axum::Router::new().route(
        "/v1/drops/{id}/fairness",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

#[tokio::test]
async fn the_cli_exits_zero_on_the_genuine_draw_and_non_zero_on_tampering() {
    tokio::task::spawn_blocking(vitaqueue_bin).await.unwrap();
    let (app, drop, clock, starts_at) = prequeue_drop().await;
    let names = join_all(&app, drop, 5).await;
    let (ok, out) = run_cli(&app.addr, drop, &[]).await;
    assert!(!ok, "not revealed yet: {out}");
    assert!(out.contains("not started"), "{out}");

    clock.set(starts_at);
    let (ok, out) = run_cli(&app.addr, drop, &[]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("5 pre-queue joiners") && out.contains("OK"),
        "{out}"
    );
    let mine = names.values().next().unwrap().clone();
    let (ok, out) = run_cli(&app.addr, drop, &["--pseudonym", &mine]).await;
    assert!(ok && out.contains("drew place"), "{out}");
    let (ok, out) = run_cli(&app.addr, drop, &["--pseudonym", &"0".repeat(32)]).await;
    assert!(!ok && out.contains("not on the list"), "{out}");

    let (_, f) = fairness(&app, drop, "").await;
    let mut swapped = f.clone();
    let list = swapped["draw"]["pseudonyms"].as_array_mut().unwrap();
    list.swap(0, 1);
    let mut seed = f.clone();
    seed["shuffle_seed"] = json!(hex::encode([7u8; 32]));
    let mut commitment = f.clone();
    commitment["shuffle_commitment"] = json!(hex::encode(Sha256::digest([7u8; 32])));
    let mut short = f.clone();
    short["draw"]["total"] = json!(6);
    for (name, doc) in [
        ("swapped", swapped),
        ("seed", seed),
        ("commitment", commitment),
        ("short", short),
    ] {
        let addr = serve(doc).await;
        let (ok, out) = run_cli(&addr, drop, &[]).await;
        assert!(!ok, "{name} accepted: {out}");
        assert!(out.contains("MISMATCH"), "{name}: {out}");
    }
    let (ok, _) = run_cli(&app.addr, DropId::new(999_999).unwrap(), &[]).await;
    assert!(!ok, "unknown drop");
    app.cleanup().await;
}

#[tokio::test]
async fn the_seed_survives_a_rebuild_of_lost_redis_state() {
    let (app, drop, _clock, _) = prequeue_drop().await;
    let (seed, commitment): (Vec<u8>, String) =
        sqlx::query_as("SELECT shuffle_seed, shuffle_commitment FROM drops WHERE id = $1")
            .bind(drop.get())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(hex::encode(Sha256::digest(&seed)), commitment);
    let k = app.keys.drop(drop);
    let mut r = app.redis.clone();
    let cfg_seed = || async {
        let v: Option<String> =
            redis::AsyncCommands::hget(&mut app.redis.clone(), k.cfg(), "shuffle_seed")
                .await
                .unwrap();
        v
    };
    assert_eq!(cfg_seed().await, Some(hex::encode(&seed)));
    let _: () = redis::AsyncCommands::del(&mut r, k.all()).await.unwrap();
    assert_eq!(cfg_seed().await, None);
    vq_api::stock::rebuild(&app.db, &mut r, &app.keys, drop)
        .await
        .unwrap();
    assert_eq!(cfg_seed().await, Some(hex::encode(&seed)));
    app.cleanup().await;
}
