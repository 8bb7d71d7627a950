//! A Redis that lost its script cache (restarted, or a replica promoted by Sentinel: scripts
//! are not replicated) answers `EVALSHA` with `NOSCRIPT`. The hot path sends its scripts by
//! hash alone (gate.lua, purchase.lua), so it must load them again and carry on.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn the_gate_and_the_purchase_reload_their_scripts_after_a_flush() {
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
    let purchase = redis::Script::new(include_str!("../../../lua/purchase.lua"));
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
    assert_eq!(cached(&mut conn).await, [true, true], "both loaded again");
    // The same token again replays the success: purchase.lua ran, once.
    let (st, again) = app.purchase(drop, &buyer, &token, 1).await;
    assert_eq!((st, &again["order_id"]), (201, &body["order_id"]));
    app.cleanup().await;
}
