//! Scale-out with separate OS processes: two api nodes, two admission controllers and two
//! workers (`vitaqueue api|admission|worker`). Buyers are spread over both api nodes; one
//! node is killed with SIGKILL mid-drop. Its buyers reconnect to the other node and must
//! keep their places; nothing is oversold, no order is lost or doubled.

use crate::fleet::{self, End, Nodes, Report};
use crate::helpers::*;
use crate::procs::{api_node, vitaqueue};
use redis::AsyncCommands;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vq_core::domain::DropId;

/// Checks what the stores say against what the buyers saw: returns the sold count.
pub async fn audit(app: &TestApp, drop: DropId, stock: i64, reports: &[Report]) -> i64 {
    let remaining: i64 = app
        .redis
        .clone()
        .get(app.keys.drop(drop).stock())
        .await
        .unwrap();
    assert!(remaining >= 0, "stock below zero: {remaining}");
    let sold = stock - remaining;
    app.wait_orders(drop, sold).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tokens: Vec<String> = sqlx::query_scalar("SELECT token FROM orders WHERE drop_id = $1")
        .bind(drop.get())
        .fetch_all(&app.db)
        .await
        .unwrap();
    let in_db: HashSet<String> = tokens.iter().cloned().collect();
    assert_eq!(tokens.len(), in_db.len(), "no duplicate order");
    assert_eq!(tokens.len() as i64, sold, "orders == successful purchases");
    let bought: HashSet<String> = reports
        .iter()
        .filter_map(|r| match &r.end {
            End::Bought(t) => Some(t.clone()),
            End::MaybeBought(t) if in_db.contains(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        bought, in_db,
        "every order is a purchase a buyer made, none lost"
    );
    let users: HashSet<&str> = reports.iter().map(|r| r.user.as_str()).collect();
    let per_user: std::collections::HashMap<String, i64> = app
        .redis
        .clone()
        .hgetall(app.keys.drop(drop).buyers())
        .await
        .unwrap();
    assert!(per_user.values().all(|&q| q == 1), "per-account limit held");
    assert!(per_user.keys().all(|u| users.contains(u.as_str())));
    sold
}

/// Every buyer that lost its node reconnected and got the same place (or its token).
pub fn assert_places_kept(reports: &[Report]) -> usize {
    let moved: Vec<&Report> = reports.iter().filter(|r| r.reconnects > 0).collect();
    for r in &moved {
        let same = r.indexes.windows(2).all(|w| w[0] == w[1]);
        let every_connection_told = r.indexes.len() as u32 == r.reconnects + 1;
        assert!(
            same && (every_connection_told || r.admitted_on_reconnect),
            "place changed on reconnect: {r:?}"
        );
    }
    moved.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyers_of_a_killed_api_node_keep_their_places_on_the_other() {
    const STOCK: i64 = 40;
    const BUYERS: usize = 100;
    let app = spawn_app().await;
    let s = &app.settings;
    let fast = [
        ("VQ_WS__RESYNC_MS", "1000".to_string()),
        ("VQ_ADMISSION__TICK_MS", "25".to_string()),
        ("VQ_WORKER__BLOCK_MS", "50".to_string()),
        ("VQ_WORKER__CLAIM_IDLE_MS", "2000".to_string()),
        ("VQ_WORKER__CLAIM_EVERY_MS", "500".to_string()),
    ];
    let (mut node_a, port_a) = api_node(s, "api-a", &fast).await;
    let (node_b, port_b) = api_node(s, "api-b", &fast).await;
    let drop = app
        .create_drop(json!({ "stock": STOCK, "admission_rate": 20, "max_holders": 10 }))
        .await;
    let nodes = Arc::new(Nodes {
        ports: vec![port_a, port_b],
        http: reqwest::Client::new(),
    });
    // Everyone queues first (FIFO over both nodes), then admission starts.
    let mut tasks = Vec::new();
    for i in 0..BUYERS {
        let sh = app.shopper();
        let within = Duration::from_secs(60);
        tasks.push(tokio::spawn(fleet::buyer(
            nodes.clone(),
            i % 2,
            drop,
            sh,
            within,
        )));
        if i % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let k = app.keys.drop(drop);
    for _ in 0..200 {
        let n: u64 = app.redis.clone().zcard(k.queue()).await.unwrap();
        if n == BUYERS as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let procs = [
        vitaqueue("admission", s, "adm-1", &fast),
        vitaqueue("admission", s, "adm-2", &fast),
        vitaqueue("worker", s, "wrk-1", &fast),
        vitaqueue("worker", s, "wrk-2", &fast),
        node_b,
    ];

    // Mid-drop: a quarter of the stock admitted, then node A dies without a word.
    loop {
        let n: Option<i64> = app.redis.clone().get(k.admitted()).await.unwrap();
        if n.unwrap_or(0) >= STOCK / 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed_at = Instant::now();
    node_a.kill9();
    let mut reports = Vec::new();
    for t in tasks {
        reports.push(t.await.unwrap());
    }
    let sold = audit(&app, drop, STOCK, &reports).await;
    std::mem::drop(procs);
    assert_eq!(sold, STOCK, "the drop sells out despite the lost node");
    let moved = assert_places_kept(&reports);
    let gaps: Vec<u64> = reports.iter().flat_map(|r| r.gaps_ms.clone()).collect();
    let others: Vec<&End> = reports
        .iter()
        .map(|r| &r.end)
        .filter(|e| !matches!(e, End::Bought(_) | End::MaybeBought(_)))
        .collect();
    assert!(
        others.iter().all(|e| **e == End::Other("sold_out".into())),
        "the rest met sold_out: {others:?}"
    );
    assert!(moved > 0, "node A had buyers still waiting when it died");
    println!(
        "multinode: sold {sold}/{STOCK}, {} buyers moved from the killed node, \
         reconnect gap max {} ms, drop finished {:?} after the kill, {} purchase retries",
        moved,
        gaps.iter().max().unwrap_or(&0),
        killed_at.elapsed(),
        reports.iter().map(|r| r.purchase_retries).sum::<u32>(),
    );
    app.cleanup().await;
}
