//! No resale after Redis loss (docs/durability.md, "After Redis loss"): a private Redis
//! (no AOF, no replica) is killed with -9 between the 201s and the worker's write, and
//! restarted empty; the purchases' stream entries are gone. The rebuild must never make
//! sellable a unit one of those 201s holds: units acknowledged + units still sellable never
//! exceed the stock.

use crate::helpers::*;
use crate::lost::lease_at;
use crate::procs::{free_port, temp_dir, wait_redis, Proc};
use crate::redis_procs::redis_server;
use serde_json::json;
use std::time::Duration;
use vq_api::drops::recover::{rebuild_checked, AtStake, Decision, Rebuilt, Refused};
use vq_core::domain::DropId;

const STOCK: i64 = 10;
const WRITTEN: i64 = 2;
const UNWRITTEN: i64 = 3;

/// A private redis-server without persistence, restartable empty on the same port.
struct Volatile {
    port: u16,
    url: String,
    proc: Proc,
}

impl Volatile {
    async fn start() -> Volatile {
        let port = free_port();
        let proc = Self::launch(port);
        let url = format!("redis://127.0.0.1:{port}");
        wait_redis(&url, Duration::from_secs(10)).await;
        Volatile { port, url, proc }
    }

    fn launch(port: u16) -> Proc {
        let dir = temp_dir("volatile");
        Proc::spawn("redis-volatile", &mut redis_server(port, &dir, &[]))
    }

    /// kill -9, then a fresh server with nothing on the same port.
    async fn lose_everything(&mut self) {
        self.proc.kill9();
        self.proc = Self::launch(self.port);
        wait_redis(&self.url, Duration::from_secs(10)).await;
    }
}

/// WRITTEN purchases the worker wrote, then UNWRITTEN acknowledged ones it never saw
/// (no worker runs in the test app); returns the drop.
async fn sell(app: &TestApp) -> DropId {
    let drop = app
        .create_drop(json!({ "stock": STOCK, "per_user_limit": 1 }))
        .await;
    for _ in 0..WRITTEN {
        app.buy(drop, &app.shopper(), 1).await;
    }
    app.flush_orders().await;
    for _ in 0..UNWRITTEN {
        app.buy(drop, &app.shopper(), 1).await;
    }
    assert_eq!(
        app.orders(drop).await,
        WRITTEN,
        "the last 201s are in the stream only"
    );
    drop
}

async fn rebuild(app: &TestApp, drop: DropId, d: Decision) -> Result<Rebuilt, Refused> {
    let mut conn = app.redis.clone();
    rebuild_checked(&app.db, &mut conn, &app.keys, drop, d, "cli")
        .await
        .unwrap()
}

/// The app's own (reconnecting) connection answers again.
async fn reconnected(app: &TestApp) {
    for _ in 0..100 {
        let pong: redis::RedisResult<String> =
            redis::cmd("PING").query_async(&mut app.redis.clone()).await;
        if pong.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the app never reconnected");
}

/// Refused without a confirmation, and nothing written to Redis; the stake names at least
/// the unwritten 201s.
async fn refused(app: &TestApp, drop: DropId) -> AtStake {
    let stake = match rebuild(app, drop, Decision::Unconfirmed).await {
        Err(Refused::NeedsConfirm(s)) => s,
        other => panic!("rebuilt without a manager: {other:?}"),
    };
    assert!(stake.lost);
    assert_eq!(stake.orders_written, WRITTEN);
    assert!(stake.unwritten_seqs >= UNWRITTEN, "{stake:?}");
    assert!(stake.units_at_risk >= UNWRITTEN, "{stake:?}");
    let stock: Option<i64> =
        redis::AsyncCommands::get(&mut app.redis.clone(), app.keys.drop(drop).stock())
            .await
            .unwrap();
    assert_eq!(
        stock, None,
        "the refusal wrote nothing: the drop stays needs_rebuild"
    );
    let s = app.shopper();
    let (st, b) = app.join(drop, &s).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (503, Some("needs_rebuild")),
        "{b}"
    );
    stake
}

/// Buys until refused; returns how many units were bought.
async fn sell_out(app: &TestApp, drop: DropId) -> i64 {
    let mut bought = 0;
    for _ in 0..STOCK + 2 {
        let s = app.shopper();
        if app.join(drop, &s).await.0 != 200 {
            break;
        }
        app.admitter().tick_drop(drop).await.unwrap();
        let (_, q) = app.place(drop, &s).await;
        let Some(t) = q["token"].as_str() else { break };
        if app.purchase(drop, &s, t, 1).await.0 != 201 {
            break;
        }
        bought += 1;
    }
    bought
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_lost_mid_sale_keeps_every_unit_an_unwritten_201_may_hold_off_sale() {
    let mut redis = Volatile::start().await;
    let opts = Opts {
        redis_url: redis.url.clone(),
        ..Opts::default()
    };
    let app = spawn_app_with(opts).await;
    let drop = sell(&app).await;
    redis.lose_everything().await;
    reconnected(&app).await;
    let stake = refused(&app, drop).await;
    // Mid-sale the lease runs ahead of the counter: every unit not in PostgreSQL is at risk.
    assert_eq!(stake.units_at_risk, STOCK - WRITTEN, "{stake:?}");
    let r = rebuild(&app, drop, Decision::HoldBack).await.unwrap();
    assert_eq!((r.stock, r.held_back), (0, STOCK - WRITTEN));
    let acknowledged = WRITTEN + UNWRITTEN;
    assert!(acknowledged + app.remaining(drop).await <= STOCK);
    assert_eq!(
        sell_out(&app, drop).await,
        0,
        "nothing at stake is sold again"
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_lost_at_rest_holds_back_exactly_the_unwritten_201s_and_sells_the_rest() {
    let mut redis = Volatile::start().await;
    let opts = Opts {
        redis_url: redis.url.clone(),
        ..Opts::default()
    };
    let app = spawn_app_with(opts).await;
    let drop = sell(&app).await;
    // The queue idle: the lease comes down to the seqs issued.
    lease_at(&app, drop, WRITTEN + UNWRITTEN).await;
    redis.lose_everything().await;
    reconnected(&app).await;
    let stake = refused(&app, drop).await;
    assert_eq!(stake.issued_upto, Some(WRITTEN + UNWRITTEN));
    assert_eq!(
        (stake.unwritten_seqs, stake.units_at_risk),
        (UNWRITTEN, UNWRITTEN)
    );
    // The rebuild of old (every unit PostgreSQL does not hold back on sale) would have
    // offered the lost 201s' units again: this check fails for it.
    assert!(WRITTEN + UNWRITTEN + (STOCK - stake.taken) > STOCK);
    let r = rebuild(&app, drop, Decision::HoldBack).await.unwrap();
    assert_eq!(
        (r.stock, r.held_back),
        (STOCK - WRITTEN - UNWRITTEN, UNWRITTEN)
    );
    let more = sell_out(&app, drop).await;
    assert_eq!(
        more,
        STOCK - WRITTEN - UNWRITTEN,
        "the rest is sold, exactly"
    );
    let acknowledged = WRITTEN + UNWRITTEN + more;
    assert!(acknowledged + app.remaining(drop).await <= STOCK);
    // New tokens never reuse a seq a lost 201 promised: their orders get fresh ids.
    app.flush_orders().await;
    let max_seq: i64 = sqlx::query_scalar(
        "SELECT MIN(id - drop_id * 4294967296) FROM orders WHERE drop_id = $1 AND id > drop_id * 4294967296 + $2",
    )
    .bind(drop.get())
    .bind(WRITTEN)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(max_seq > WRITTEN + UNWRITTEN, "first new seq {max_seq}");
    let mut conn = app.redis.clone();
    let rec = vq_api::stock::reconcile(&app.db, &mut conn, &app.keys, drop)
        .await
        .unwrap();
    assert_eq!(rec.held_back, UNWRITTEN);
    assert!(rec.ok, "{rec:?}");
    app.cleanup().await;
}
