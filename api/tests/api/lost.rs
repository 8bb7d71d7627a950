//! Redis lost everything of a drop (cfg, stock, active set) while PostgreSQL still has it:
//! every manager action, join and purchase answers 503 `needs_rebuild` and changes nothing,
//! `/readyz` names the drop, and a rebuild (by hand, or automatic under a lock) restores it
//! so that exactly stock − sold units can still be sold.

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;
use vq_core::domain::DropId;

const STOCK: i64 = 6;
const SOLD: i64 = 2;

/// Sells `SOLD` units, writes them to PostgreSQL, keeps one admitted buyer's token (with
/// `holder`), then Redis loses every key of the test (but the rebuild lock, when `locked`:
/// held "elsewhere"). Without a holder it first waits until the seq lease came down to the
/// admission counter (the queue idle for `lease::LOWER_AFTER`): then every seq ever issued
/// has its order, and nothing can be at stake.
async fn sell_then_lose(app: &TestApp, locked: bool, holder: bool) -> (DropId, Shopper, String) {
    let drop = app
        .create_drop(json!({ "stock": STOCK, "per_user_limit": 1 }))
        .await;
    for _ in 0..SOLD {
        app.buy(drop, &app.shopper(), 1).await;
    }
    let (buyer, token) = match holder {
        true => {
            let s = app.shopper();
            app.join(drop, &s).await;
            app.admitter().tick_drop(drop).await.unwrap();
            let token = app.admitted_token(drop, &s).await;
            (s, token)
        }
        false => (app.shopper(), String::new()),
    };
    app.flush_orders().await;
    if !holder {
        lease_at(app, drop, SOLD).await;
    }
    let mut conn = app.redis.clone();
    let lock = app.keys.drop(drop).rebuild_lock();
    if locked {
        let _: () = redis::AsyncCommands::set(&mut conn, &lock, "other")
            .await
            .unwrap();
    }
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", app.keys.prefix()))
        .query_async(&mut conn)
        .await
        .unwrap();
    let lost: Vec<&String> = keys.iter().filter(|k| !locked || **k != lock).collect();
    let _: () = redis::AsyncCommands::del(&mut conn, lost).await.unwrap();
    (drop, buyer, token)
}

/// Waits (bounded) until PostgreSQL's seq lease of the drop is `n`.
pub async fn lease_at(app: &TestApp, drop: DropId, n: i64) {
    let within = vq_api::drops::lease::LOWER_AFTER + Duration::from_secs(5);
    let t0 = std::time::Instant::now();
    loop {
        let l: Option<i64> =
            sqlx::query_scalar("SELECT issued_upto FROM drop_seq_leases WHERE drop_id = $1")
                .bind(drop.get())
                .fetch_optional(&app.db)
                .await
                .unwrap();
        if l == Some(n) {
            return;
        }
        assert!(t0.elapsed() < within, "lease {l:?}, not {n}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn readyz(app: &TestApp) -> (u16, Value) {
    app.call("GET", "/readyz", None, None).await
}

fn rebuild_needed(r: (u16, Value)) -> bool {
    r.0 == 503 && r.1["code"] == "needs_rebuild"
}

/// Every way in answers 503 needs_rebuild and the stock key stays absent.
async fn everything_refused(app: &TestApp, drop: DropId, holder: &Shopper, token: &str) {
    let m = app.manager();
    let admin = format!("/v1/admin/drops/{drop}");
    for (method, path, body) in [
        ("PATCH", admin.clone(), Some(json!({ "admission_rate": 7 }))),
        ("POST", format!("{admin}/pause"), None),
        ("POST", format!("{admin}/close"), None),
    ] {
        let r = app.call(method, &path, Some(&m), body).await;
        assert!(rebuild_needed(r.clone()), "{method} {path}: {r:?}");
    }
    // Resume of an active drop: refused either way, and nothing changes.
    let (st, _) = app
        .call("POST", &format!("{admin}/resume"), Some(&m), None)
        .await;
    assert!(st >= 400, "resume: {st}");
    let r = app.join(drop, &app.shopper()).await;
    assert!(rebuild_needed(r.clone()), "join: {r:?}");
    let r = app.purchase(drop, holder, token, 1).await;
    assert!(rebuild_needed(r.clone()), "purchase: {r:?}");
    let stock: Option<i64> =
        redis::AsyncCommands::get(&mut app.redis.clone(), app.keys.drop(drop).stock())
            .await
            .unwrap();
    assert_eq!(stock, None, "nothing recreated the stock");
    let (_, d) = app
        .call("GET", &format!("/v1/drops/{drop}"), None, None)
        .await;
    assert!(d["remaining"].as_i64().unwrap() <= STOCK - SOLD, "{d}");
    let state: String = sqlx::query_scalar("SELECT state FROM drops WHERE id = $1")
        .bind(drop.get())
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(state, "active", "nothing changed");
}

/// After a restore: exactly stock − sold more units can be bought, then sold out.
async fn sells_exactly_the_rest(app: &TestApp, drop: DropId) {
    assert_eq!(app.remaining(drop).await, STOCK - SOLD);
    let mut bought = 0;
    for _ in 0..STOCK {
        let s = app.shopper();
        let (st, _) = app.join(drop, &s).await;
        if st != 200 {
            continue;
        }
        app.admitter().tick_drop(drop).await.unwrap();
        let (_, q) = app.place(drop, &s).await;
        if let Some(t) = q["token"].as_str() {
            if app.purchase(drop, &s, t, 1).await.0 == 201 {
                bought += 1;
            }
        }
    }
    assert_eq!(bought, STOCK - SOLD);
    app.flush_orders().await;
    assert_eq!(app.orders(drop).await, STOCK);
}

#[tokio::test]
async fn a_drop_lost_by_redis_is_refused_everywhere_and_named_until_rebuilt() {
    let app = spawn_app().await;
    let (drop, holder, token) = sell_then_lose(&app, false, true).await;
    everything_refused(&app, drop, &holder, &token).await;
    let (st, r) = readyz(&app).await;
    assert_eq!((st, &r["needs_rebuild"]), (503, &json!([drop.get()])));

    let mut conn = app.redis.clone();
    let stock = vq_api::stock::rebuild(&app.db, &mut conn, &app.keys, drop)
        .await
        .unwrap();
    assert_eq!(stock, STOCK - SOLD);
    let (st, r) = readyz(&app).await;
    assert_eq!((st, &r["needs_rebuild"]), (200, &json!([])));
    sells_exactly_the_rest(&app, drop).await;
    app.cleanup().await;
}

#[tokio::test]
async fn auto_rebuild_restores_a_lost_drop_once_under_a_lock() {
    let app = spawn_app_tuned(Opts::default(), |s| {
        s.redis.auto_rebuild = true;
        s.redis.lost_check_ms = 200;
    })
    .await;
    // A lock held elsewhere (another node mid-rebuild) keeps this node's hands off.
    let (drop, _, _) = sell_then_lose(&app, true, false).await;
    let lock = app.keys.drop(drop).rebuild_lock();
    let mut conn = app.redis.clone();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(rebuild_needed(app.join(drop, &app.shopper()).await));
    let _: () = redis::AsyncCommands::del(&mut conn, &lock).await.unwrap();
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if readyz(&app).await.0 == 200 {
            ok = true;
            break;
        }
    }
    assert!(ok, "auto rebuild did not restore the drop");
    // Idempotent: a second call on a restored drop does nothing.
    assert!(
        !vq_api::drops::autorebuild::rebuild_once(&app.db, &mut conn, &app.keys, drop)
            .await
            .unwrap()
    );
    sells_exactly_the_rest(&app, drop).await;
    app.cleanup().await;
}

/// A buyer held a live token when Redis was lost: whether they bought (a 201 whose stream
/// entry went with Redis) nothing left can tell, so the automatic rebuild leaves the drop
/// lost, names what is at stake, and a manager's confirmation rebuilds it with that unit
/// kept off sale.
#[tokio::test]
async fn auto_rebuild_waits_for_a_manager_when_an_issued_seq_has_no_order() {
    let app = spawn_app_tuned(Opts::default(), |s| {
        s.redis.auto_rebuild = true;
        s.redis.lost_check_ms = 200;
    })
    .await;
    let (drop, _, _) = sell_then_lose(&app, false, true).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        rebuild_needed(app.join(drop, &app.shopper()).await),
        "still lost"
    );
    assert_eq!(readyz(&app).await.0, 503);
    let m = app.manager();
    let path = format!("/v1/admin/drops/{drop}/rebuild");
    let (st, stake) = app.call("GET", &path, Some(&m), None).await;
    assert_eq!(st, 200, "{stake}");
    assert_eq!(stake["lost"], true, "{stake}");
    assert_eq!(stake["orders_written"], SOLD, "{stake}");
    assert!(stake["unwritten_seqs"].as_i64().unwrap() >= 1, "{stake}");
    assert_eq!(stake["units_at_risk"], STOCK - SOLD, "{stake}");
    let (st, b) = app.call("POST", &path, Some(&m), Some(json!({}))).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (409, Some("rebuild_needs_confirm")),
        "{b}"
    );
    assert!(
        rebuild_needed(app.join(drop, &app.shopper()).await),
        "refused: still lost"
    );
    let (st, b) = app
        .call("POST", &path, Some(&m), Some(json!({ "confirm": true })))
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["held_back"], STOCK - SOLD, "{b}");
    assert_eq!(b["stock"], 0, "{b}");
    assert_eq!(
        app.remaining(drop).await,
        0,
        "nothing at stake is sold again"
    );
    let mut conn = app.redis.clone();
    let rec = vq_api::stock::reconcile(&app.db, &mut conn, &app.keys, drop)
        .await
        .unwrap();
    assert!(rec.ok, "held back units balance the books: {rec:?}");
    let (st, b) = app
        .call("POST", &path, Some(&m), Some(json!({ "confirm": true })))
        .await;
    assert_eq!((st, b["code"].as_str()), (409, Some("not_lost")), "{b}");
    app.cleanup().await;
}
