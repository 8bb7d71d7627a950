//! The whole drop path on a local 3-master Redis Cluster: several drops whose hash tags
//! land on different masters, buyers in the WebSocket room (admissions reach them only
//! through the api node's single pattern subscription, which must hear PUBLISHes made on
//! every master), purchases, the workers' per-slot stream reads, orders in PostgreSQL.

use crate::helpers::*;
use crate::redis_procs::RedisCluster;
use redis::AsyncCommands;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use vq_core::domain::DropId;

/// Waits in the room until the admission is pushed, then buys. Returns the token bought,
/// or the code that ended the attempt.
pub async fn room_buyer(app: Arc<TestApp>, drop: DropId, s: Shopper) -> Result<String, String> {
    let mut ws = app.ws(drop, &s).await;
    let token = loop {
        let Some(m) = next_json(&mut ws, 20_000).await else {
            return Err("no_admission".into());
        };
        match m["type"].as_str() {
            Some("admitted") => break m["token"].as_str().unwrap().to_string(),
            Some("position") => continue,
            Some(other) => return Err(other.to_string()),
            None => return Err(format!("unexpected {m}")),
        }
    };
    let (st, b) = app.purchase(drop, &s, &token, 1).await;
    match st {
        201 => Ok(token),
        _ => Err(b["code"].as_str().unwrap_or("?").to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_on_different_cluster_masters_sell_exactly_their_stock() {
    const STOCK: i64 = 12;
    const BUYERS: usize = 20;
    let cluster = RedisCluster::start(3).await;
    let app = Arc::new(
        spawn_app_tuned(
            Opts {
                redis_url: cluster.seed_url(),
                // Only pushes may tell buyers they are admitted: no periodic exact re-read.
                resync_ms: 600_000,
                ..Opts::default()
            },
            |s| s.redis.cluster = true,
        )
        .await,
    );
    assert!(app.redis.is_cluster());

    // Create drops until they cover all three masters.
    let mut drops: Vec<(DropId, String)> = Vec::new();
    let mut masters = HashSet::new();
    while masters.len() < 3 {
        assert!(drops.len() < 12, "12 drops all hashed to {masters:?}");
        let d = app
            .create_drop(json!({ "stock": STOCK, "admission_rate": 50, "max_holders": 5 }))
            .await;
        let k = app.keys.drop(d);
        let (slot, master) = cluster.master_of(&k.queue()).await;
        for key in k.all() {
            assert_eq!(
                cluster.master_of(&key).await.0,
                slot,
                "{key} shares the slot"
            );
        }
        masters.insert(master.clone());
        drops.push((d, master));
    }
    println!("cluster drops: {drops:?}");
    // The api node subscribes on the first seed only; drops on the other masters reach
    // their rooms because a classic PUBLISH is broadcast over the whole cluster.
    assert!(drops
        .iter()
        .any(|(_, m)| !cluster.urls[0].ends_with(m.as_str())));

    let adm = app.start_admission(20);
    let w1 = app.run_worker(app.worker("c1", 2000, 50).await);
    let w2 = app.run_worker(app.worker("c2", 2000, 50).await);
    let mut tasks = Vec::new();
    for &(d, _) in &drops {
        for _ in 0..BUYERS {
            let s = app.shopper();
            tasks.push((d, tokio::spawn(room_buyer(app.clone(), d, s))));
        }
    }
    let mut bought: HashMap<DropId, HashSet<String>> = HashMap::new();
    let mut other: HashMap<String, usize> = HashMap::new();
    for (d, t) in tasks {
        match t.await.unwrap() {
            Ok(token) => assert!(bought.entry(d).or_default().insert(token)),
            Err(code) => *other.entry(code).or_default() += 1,
        }
    }
    assert_eq!(
        other.keys().collect::<Vec<_>>(),
        vec!["sold_out"],
        "buyers either bought or met sold_out: {other:?}"
    );
    let manager = app.manager();
    for &(d, ref master) in &drops {
        let sold = &bought[&d];
        assert_eq!(sold.len() as i64, STOCK, "drop {d} on {master}");
        let stock: i64 = app
            .redis
            .clone()
            .get(app.keys.drop(d).stock())
            .await
            .unwrap();
        assert_eq!(stock, 0, "never oversold, never below zero");
        app.wait_orders(d, STOCK).await;
        let tokens: Vec<String> = sqlx::query_scalar("SELECT token FROM orders WHERE drop_id = $1")
            .bind(d.get())
            .fetch_all(&app.db)
            .await
            .unwrap();
        assert_eq!(
            tokens.len() as i64,
            STOCK,
            "orders == purchases on {master}"
        );
        assert_eq!(
            &tokens.into_iter().collect::<HashSet<_>>(),
            sold,
            "none lost or doubled"
        );
        let (st, b) = app
            .call("GET", &format!("/v1/admin/drops/{d}"), Some(&manager), None)
            .await;
        assert_eq!(st, 200, "{b}");
        assert_eq!(b["stats"]["remaining"], 0);
        assert_eq!(b["orders_in_db"], STOCK);
        let mut acked = false;
        for _ in 0..100 {
            let p: redis::streams::StreamPendingReply = app
                .redis
                .clone()
                .xpending(app.keys.drop(d).orders(), vitaqueue::orders::GROUP)
                .await
                .unwrap();
            acked = p.count() == 0;
            if acked {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(acked, "every entry of drop {d} acknowledged on {master}");
    }
    // A state change published through the cluster connection reaches the room as well.
    let (d, _) = drops[drops.len() - 1];
    let (st, b) = app
        .call(
            "POST",
            &format!("/v1/admin/drops/{d}/close"),
            Some(&manager),
            None,
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (_, b) = app.call("GET", &format!("/v1/drops/{d}"), None, None).await;
    assert_eq!(b["phase"], "ended");
    for h in [adm, w1, w2] {
        h.abort();
    }
    Arc::try_unwrap(app)
        .ok()
        .expect("one handle")
        .cleanup()
        .await;
}

/// The `vitaqueue all` binary configured for the cluster through `VQ_REDIS__CLUSTER` and a
/// comma-separated `VQ_REDIS__URL`, as an operator would run it: two drops on different
/// masters sell out through it with every invariant intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_a_drop_on_the_cluster_from_env_settings() {
    use crate::fleet::{self, Nodes};
    use crate::multinode::audit;
    const STOCK: i64 = 10;
    let cluster = RedisCluster::start(3).await;
    let opts = Opts {
        redis_url: cluster.seed_url(),
        ..Opts::default()
    };
    let app = spawn_app_tuned(opts, |s| s.redis.cluster = true).await;
    let env = [
        ("VQ_ADMISSION__TICK_MS", "25".to_string()),
        ("VQ_WORKER__BLOCK_MS", "50".to_string()),
    ];
    let (node, port) = crate::procs::api_node_role("all", &app.settings, "all", &env).await;
    let mut drops = Vec::new();
    let mut masters = HashSet::new();
    while masters.len() < 2 {
        let d = app
            .create_drop(json!({ "stock": STOCK, "admission_rate": 50, "max_holders": 5 }))
            .await;
        masters.insert(cluster.master_of(&app.keys.drop(d).queue()).await.1);
        drops.push(d);
    }
    let nodes = Arc::new(Nodes {
        ports: vec![port],
        http: reqwest::Client::new(),
    });
    let mut tasks = Vec::new();
    for &d in &drops {
        for _ in 0..2 * STOCK {
            let within = std::time::Duration::from_secs(60);
            let buyer = fleet::buyer(nodes.clone(), 0, d, app.shopper(), within);
            tasks.push((d, tokio::spawn(buyer)));
        }
    }
    let mut reports: HashMap<DropId, Vec<fleet::Report>> = HashMap::new();
    for (d, t) in tasks {
        reports.entry(d).or_default().push(t.await.unwrap());
    }
    for d in &drops {
        assert_eq!(audit(&app, *d, STOCK, &reports[d]).await, STOCK, "drop {d}");
    }
    std::mem::drop(node);
    app.cleanup().await;
}

/// The room's batched re-reads on a cluster: one batch holds session keys on many slots
/// (redis-rs refuses such a pipeline), and each socket still gets its place and its own
/// revocation from the batch, not the per-socket fallback (`ask` answers None then).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_room_reads_answer_across_slots() {
    let cluster = RedisCluster::start(3).await;
    let opts = Opts {
        redis_url: cluster.seed_url(),
        ..Opts::default()
    };
    let mut app = spawn_app_tuned(opts, |s| s.redis.cluster = true).await;
    // One holder at most: the queue keeps all but the first buyer.
    let drop = app
        .create_drop(json!({ "stock": 10, "admission_rate": 1, "max_holders": 1 }))
        .await;
    let shoppers: Vec<Shopper> = (0..8).map(|_| app.shopper()).collect();
    for s in &shoppers {
        assert_eq!(app.join(drop, s).await.0, 200);
    }
    let jwt = vq_core::auth::JwtKeys::new(app.settings.auth.jwt_secret.as_ref().unwrap());
    let jti = |s: &Shopper| jwt.verify_claims(&s.token).unwrap().jti;
    let revoked = app.keys.revoked_jti(&jti(&shoppers[5]));
    let _: () = app.redis.set_ex(&revoked, 1, 60).await.unwrap();
    let asks = shoppers
        .iter()
        .map(|s| app.state.reads.ask(drop, s.user, Some(jti(s))));
    let answers = futures::future::join_all(asks).await;
    let mut ranks = HashSet::new();
    for (i, a) in answers.iter().enumerate() {
        let a = a.expect("the batch answered (no fallback)");
        assert_eq!(a.revoked, i == 5, "shopper {i}'s own session");
        if let Some((rank, _, prequeue)) = a.place {
            assert!(
                !prequeue && ranks.insert(rank),
                "distinct places: {answers:?}"
            );
        }
    }
    assert!(
        ranks.len() >= 7,
        "at most one buyer holds a token: {answers:?}"
    );
    app.cleanup().await;
}

/// The lost-state scan on a cluster: drops on several masters are checked in one round
/// trip (a pipeline per drop's slot), and exactly the drop whose stock key is gone is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lost_state_scan_checks_drops_on_every_master() {
    let cluster = RedisCluster::start(3).await;
    let opts = Opts {
        redis_url: cluster.seed_url(),
        ..Opts::default()
    };
    let mut app = spawn_app_tuned(opts, |s| s.redis.cluster = true).await;
    let mut drops = Vec::new();
    let mut masters = HashSet::new();
    while masters.len() < 2 {
        let d = app.create_drop(json!({})).await;
        masters.insert(cluster.master_of(&app.keys.drop(d).queue()).await.1);
        drops.push(d);
    }
    let lost = drops[drops.len() - 1];
    let _: () = app.redis.del(app.keys.drop(lost).stock()).await.unwrap();
    let found = vq_api::drops::lost::scan(&app.db, &mut app.redis, &app.keys).await;
    assert_eq!(found.unwrap(), vec![lost]);
    app.cleanup().await;
}
