//! The order writer: batches, idempotence on the token, and reclaiming the pending
//! entries of a worker killed mid-batch (its task aborted at a chosen point).

use crate::helpers::*;
use futures::future::BoxFuture;
use redis::AsyncCommands;
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use vitaqueue::worker::{Hook, Stage, GROUP};

/// A hook that, at `at`, reports in and then hangs forever (so the test can kill it there).
fn hang_at(at: Stage) -> (Hook, oneshot::Receiver<()>) {
    let (tx, rx) = oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let hook: Hook = Arc::new(move |stage| -> BoxFuture<'static, ()> {
        let tx = tx.clone();
        Box::pin(async move {
            if stage == at {
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                futures::future::pending::<()>().await;
            }
        })
    });
    (hook, rx)
}

async fn pending(app: &TestApp, key: &str) -> u64 {
    let reply: redis::streams::StreamPendingReply =
        app.redis.clone().xpending(key, GROUP).await.unwrap();
    reply.count() as u64
}

#[tokio::test]
async fn a_worker_killed_mid_batch_loses_and_duplicates_nothing() {
    let app = spawn_app().await;
    let drop = app
        .create_drop(json!({ "stock": 50, "max_holders": 1000 }))
        .await;
    let shoppers: Vec<Shopper> = (0..50).map(|_| app.shopper()).collect();
    for s in &shoppers {
        app.join(drop, s).await;
    }
    let out = app.admitter().tick_drop(drop).await.unwrap();
    assert_eq!(out.admitted.len(), 50);
    let mut sold = HashSet::new();
    for (s, a) in shoppers.iter().zip(&out.admitted) {
        assert_eq!(a.user, s.user.to_string());
        let (st, b) = app.purchase(drop, s, &a.token, 1).await;
        assert_eq!(st, 201, "{b}");
        sold.insert(a.token.clone());
    }
    let stream = app.keys.drop(drop).orders();

    // Worker A dies after committing its batch of 20, before acknowledging it.
    let (hook, reached) = hang_at(Stage::Written);
    let a = app.run_worker(app.worker("A", 60_000, 20).await.with_hook(hook));
    reached.await.unwrap();
    a.abort();
    assert_eq!(app.orders(drop).await, 20, "one batch of 20 written");
    assert_eq!(pending(&app, &stream).await, 20, "…and left unacknowledged");

    // Worker B dies right after reading the next 20, before writing anything.
    let (hook, reached) = hang_at(Stage::Read);
    let b = app.run_worker(app.worker("B", 60_000, 20).await.with_hook(hook));
    reached.await.unwrap();
    b.abort();
    assert_eq!(app.orders(drop).await, 20);
    assert_eq!(pending(&app, &stream).await, 40);

    // Worker C reclaims both dead workers' entries and reads the rest.
    let c = app.run_worker(app.worker("C", 100, 20).await);
    app.wait_orders(drop, 50).await;
    for _ in 0..100 {
        if pending(&app, &stream).await == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(pending(&app, &stream).await, 0, "everything acknowledged");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let tokens: Vec<String> = sqlx::query_scalar("SELECT token FROM orders WHERE drop_id = $1")
        .bind(drop.get())
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(tokens.len(), 50, "no duplicates after the replayed batch");
    assert_eq!(
        tokens.into_iter().collect::<HashSet<_>>(),
        sold,
        "exactly the sold tokens"
    );
    let qty: i64 =
        sqlx::query_scalar("SELECT SUM(quantity)::bigint FROM orders WHERE drop_id = $1")
            .bind(drop.get())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(qty, 50);
    let status: Vec<String> = sqlx::query_scalar("SELECT DISTINCT status FROM orders")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(status, vec!["PENDING_PAYMENT".to_string()]);
    c.abort();
    app.cleanup().await;
}

#[tokio::test]
async fn replayed_reservations_are_written_once() {
    let app = spawn_app().await;
    let drop = app
        .create_drop(json!({ "stock": 5, "per_user_limit": 5 }))
        .await;
    let s = app.shopper();
    app.join(drop, &s).await;
    let out = app.admitter().tick_drop(drop).await.unwrap();
    assert_eq!(
        app.purchase(drop, &s, &out.admitted[0].token, 3).await.0,
        201
    );
    let w = app.run_worker(app.worker("W", 60_000, 100).await);
    app.wait_orders(drop, 1).await;
    w.abort();
    // The same entry delivered again (as after a crash before ack) changes nothing.
    let r = vitaqueue::worker::Reservation {
        token: out.admitted[0].token.clone(),
        user: s.user.0,
        qty: 3,
        ts_ms: 1,
        seq: out.admitted[0].seq,
    };
    let rows = vec![(drop, r)];
    assert_eq!(
        vitaqueue::worker::write_orders(&app.db, &rows)
            .await
            .unwrap(),
        0
    );
    assert_eq!(app.orders(drop).await, 1);
    let q: i32 = sqlx::query_scalar("SELECT quantity FROM orders")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(q, 3);
    app.cleanup().await;
}

/// The dead-letter stream of a drop's order stream.
fn dead(stream: &str) -> String {
    format!("{stream}:dead")
}

#[tokio::test]
async fn poison_entries_are_dead_lettered_after_max_attempts_and_never_hold_back_valid_ones() {
    let app = spawn_app_tuned(Opts::default(), |s| s.worker.max_attempts = 3).await;
    let drop = app.create_drop(json!({ "stock": 10 })).await;
    let buyers: Vec<Shopper> = (0..3).map(|_| app.shopper()).collect();
    let mut sold = HashSet::new();
    for s in &buyers {
        sold.insert(app.buy(drop, s, 1).await);
    }
    let mut r = app.redis.clone();
    let stream = app.keys.drop(drop).orders();
    let user = uuid::Uuid::new_v4().to_string();
    let poison: [&[(&str, &str)]; 3] = [
        &[
            ("token", "t-zero"),
            ("user", &user),
            ("qty", "0"),
            ("ts", "1"),
        ],
        &[("token", "t-nouser"), ("qty", "1"), ("ts", "1")],
        // Valid to the checks, refused by PostgreSQL (timestamp out of range): the batch
        // insert fails and the worker falls back to row-by-row inserts.
        &[
            ("token", "t-ts"),
            ("user", &user),
            ("qty", "1"),
            ("ts", "99999999999999999"),
        ],
    ];
    for fields in poison {
        let _: String = r.xadd(&stream, "*", fields).await.unwrap();
    }
    // A stream whose drop PostgreSQL does not know.
    let ghost = vq_core::domain::DropId::new(987_654).unwrap();
    let ghost_stream = app.keys.drop(ghost).orders();
    let fields = [
        ("token", "t-ghost"),
        ("user", user.as_str()),
        ("qty", "1"),
        ("ts", "1"),
    ];
    let _: String = r.xadd(&ghost_stream, "*", &fields).await.unwrap();
    let _: i64 = r.sadd(app.keys.stream_drops(), ghost.get()).await.unwrap();

    let mut w = app.worker("P", 0, 100).await;
    w.step().await.unwrap();
    let tokens: Vec<String> = sqlx::query_scalar("SELECT token FROM orders")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(
        tokens.into_iter().collect::<HashSet<_>>(),
        sold,
        "valid orders written after one pass"
    );
    assert_eq!(
        pending(&app, &stream).await,
        3,
        "poison kept for another try"
    );
    let dead_len: usize = r.xlen(dead(&stream)).await.unwrap();
    assert_eq!(dead_len, 0, "not before max_attempts");

    for _ in 0..30 {
        tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        w.step().await.unwrap();
        if pending(&app, &stream).await + pending(&app, &ghost_stream).await == 0 {
            break;
        }
    }
    assert_eq!(
        pending(&app, &stream).await,
        0,
        "dead-lettered entries are acked"
    );
    assert_eq!(pending(&app, &ghost_stream).await, 0);
    let reply: redis::streams::StreamRangeReply = r.xrange_all(dead(&stream)).await.unwrap();
    let mut reasons: Vec<(String, String, String)> = reply
        .ids
        .iter()
        .map(|e| {
            let get = |k: &str| e.get::<String>(k).unwrap_or_default();
            (get("f_token"), get("reason"), get("attempts"))
        })
        .collect();
    reasons.sort();
    let three = "3".to_string();
    assert_eq!(
        reasons,
        vec![
            ("t-nouser".into(), "malformed".into(), three.clone()),
            ("t-ts".into(), "insert_refused".into(), three.clone()),
            ("t-zero".into(), "bad_quantity".into(), three.clone()),
        ]
    );
    let ghost_dead: redis::streams::StreamRangeReply =
        r.xrange_all(dead(&ghost_stream)).await.unwrap();
    assert_eq!(ghost_dead.ids.len(), 1);
    assert_eq!(
        ghost_dead.ids[0].get::<String>("reason").unwrap(),
        "unknown_drop"
    );
    assert_eq!(app.orders(drop).await, 3, "poison never became an order");
    let (_, text) = metrics_text(&app).await;
    assert!(
        text.contains("vq_worker_dead_letters_total"),
        "metric exported"
    );
    app.cleanup().await;
}

async fn metrics_text(app: &TestApp) -> (u16, String) {
    let res = app.http.get(app.url("/metrics")).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}
