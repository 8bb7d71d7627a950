//! A Redis that lost its script cache (restarted, or a replica promoted by Sentinel: scripts
//! are not replicated) answers `EVALSHA` with `NOSCRIPT`. The hot path sends its scripts by
//! hash alone (gate.lua before a join, gated_purchase.lua: the gate and purchase.lua in one
//! call), so it must load them again and carry on. And on one server a purchase is exactly
//! that one script call: one round trip for the gate and the purchase.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn the_gate_and_the_purchase_reload_their_scripts_after_a_flush_and_take_one_call() {
    let redis = PrivateRedis::start().await;
    let app = spawn_app_with(Opts {
        redis_url: redis.url.clone(),
        ..Opts::default()
    })
    .await;
    let drop = app.create_drop(json!({ "stock": 5 })).await;
    let buyer = app.shopper();
    let (st, body) = app.join(drop, &buyer).await;
    assert_eq!(st, 200, "{body}");
    app.admitter().tick_drop(drop).await.unwrap();
    let token = app.admitted_token(drop, &buyer).await;

    let mut conn = redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let gate = redis::Script::new(include_str!("../../../lua/gate.lua"));
    let purchase = redis::Script::new(vq_core::scripts::GATED_PURCHASE);
    let cached = |c: &mut redis::aio::MultiplexedConnection| {
        let mut c = c.clone();
        let hashes = [gate.get_hash().to_string(), purchase.get_hash().to_string()];
        async move {
            let v: Vec<bool> = redis::cmd("SCRIPT")
                .arg("EXISTS")
                .arg(&hashes)
                .query_async(&mut c)
                .await
                .unwrap();
            v
        }
    };
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(cached(&mut conn).await, [false, false]);

    let (st, body) = app.purchase(drop, &buyer, &token, 1).await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(
        cached(&mut conn).await,
        [false, true],
        "the purchase's loaded again"
    );
    let (st, body2) = app.join(drop, &app.shopper()).await;
    assert_eq!(st, 200, "{body2}");
    assert_eq!(cached(&mut conn).await, [true, true], "and the join's gate");

    // The same token again replays the success: the gated purchase ran, once, and the
    // gate's revocation check and buckets went with it (no EXISTS, no second script).
    let monitor = Monitor::start(&redis.url);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (st, again) = app.purchase(drop, &buyer, &token, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let cmds = monitor.stop();
    assert_eq!((st, &again["order_id"]), (201, &body["order_id"]));
    let count = |name: &str| cmds.iter().filter(|c| c.eq_ignore_ascii_case(name)).count();
    assert_eq!(count("EVALSHA"), 1, "one script call: {cmds:?}");
    assert_eq!(count("EXISTS") + count("EVAL"), 0, "{cmds:?}");
    app.cleanup().await;
}
