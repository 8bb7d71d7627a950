//! The adaptive proof of work, as shipped: a calm drop asks nothing; the work rises with
//! the joins from one address and with the drop's join rate, fresh accounts pay more while
//! the pressure is on, the drop's cap bounds it and a cap of 0 keeps it off. The calm
//! levels are lowered here (settings `pow.*`) so a test's few joins make a flood.

use crate::helpers::*;
use serde_json::{json, Value};
use vq_core::auth::{Claims, JwtKeys, Role};
use vq_core::domain::{DropId, UserId};

async fn app_with_calm(per_address_min: u32, per_s: u32) -> TestApp {
    spawn_app_tuned(Opts::default(), move |s| {
        s.pow.calm_joins_per_address_min = per_address_min;
        s.pow.calm_joins_per_s = per_s;
    })
    .await
}

async fn difficulty(app: &TestApp, drop: DropId, token: &str) -> u64 {
    let path = format!("/v1/drops/{drop}/challenge");
    let (st, c) = app.call("GET", &path, Some(token), None).await;
    assert_eq!(st, 200, "{c}");
    c["difficulty"].as_u64().unwrap()
}

async fn join(app: &TestApp, drop: DropId, token: &str, pow: Option<String>) -> (u16, Value) {
    let mut req = app
        .http
        .post(app.url(&format!("/v1/drops/{drop}/queue")))
        .bearer_auth(token);
    if let Some(p) = pow {
        req = req.header("X-VQ-Pow", p);
    }
    let res = req.send().await.unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

/// A shopper token that says when the account was created, as a login's does.
fn aged(app: &TestApp, age_s: i64) -> (UserId, String) {
    let keys = JwtKeys::new(app.settings.auth.jwt_secret.as_ref().unwrap());
    let user = UserId(uuid::Uuid::new_v4());
    let mut c = Claims::new(user, Role::Shopper, 600);
    c.acct = Some(chrono::Utc::now().timestamp() - age_s);
    (user, keys.sign(&c))
}

#[tokio::test]
async fn a_calm_drop_asks_nothing_and_new_drops_ship_with_the_cap() {
    let app = spawn_app().await;
    let drop = app.create_drop(json!({ "stock": 10 })).await;
    let (st, d) = app
        .call(
            "GET",
            &format!("/v1/admin/drops/{drop}"),
            Some(&app.manager()),
            None,
        )
        .await;
    assert_eq!(
        (st, d["pow_max_difficulty"].as_i64()),
        (200, Some(20)),
        "{d}"
    );
    let s = app.shopper();
    assert_eq!(difficulty(&app, drop, &s.token).await, 0);
    assert_eq!(join(&app, drop, &s.token, None).await.0, 200);
    app.cleanup().await;
}

#[tokio::test]
async fn a_flood_from_one_address_pays_and_a_solution_lets_it_in() {
    let app = app_with_calm(3, 1_000_000).await;
    let drop = app.create_drop(json!({ "stock": 100 })).await;
    for _ in 0..3 {
        assert_eq!(join(&app, drop, &app.shopper().token, None).await.0, 200);
    }
    // Past calm (3 a minute): the fourth join from this address pays first_bits.
    let s = app.shopper();
    let (st, e) = join(&app, drop, &s.token, None).await;
    assert_eq!((st, e["code"].as_str()), (403, Some("pow_required")), "{e}");
    let c = &e["challenge"];
    let bits = c["difficulty"].as_u64().unwrap() as u32;
    assert_eq!(bits, 8, "{e}");
    let nonce = c["nonce"].as_str().unwrap();
    let sol = format!("{nonce}.{}", vq_core::pow::solve(nonce, s.user, drop, bits));
    assert_eq!(join(&app, drop, &s.token, Some(sol)).await.0, 200);
    // Each whole doubling past calm adds two bits: 12 joins are two doublings of 3.
    for _ in 0..7 {
        let _ = join(&app, drop, &app.shopper().token, None).await;
    }
    assert_eq!(
        difficulty(&app, drop, &app.shopper().token).await,
        12,
        "12 joins"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn the_drops_rate_raises_it_fresh_accounts_pay_more_and_the_cap_holds() {
    let app = app_with_calm(1_000_000, 2).await;
    let capped = app
        .create_drop(json!({ "stock": 100, "pow_max_difficulty": 10 }))
        .await;
    let drop = app.create_drop(json!({ "stock": 100 })).await;
    let (_, old) = aged(&app, 30 * 86_400);
    let (_, young) = aged(&app, 60);
    // 8 joins in a second against a calm of 2: two doublings, from 8 bits. A burst that
    // straddles a second boundary counts in two buckets: then the next burst tries again.
    let mut seen = Vec::new();
    for _ in 0..5 {
        for d in [drop, capped] {
            for _ in 0..8 {
                let _ = join(&app, d, &app.shopper().token, None).await;
            }
        }
        let got = (
            difficulty(&app, drop, &old).await,
            difficulty(&app, drop, &young).await,
            difficulty(&app, capped, &young).await,
        );
        if got.0 >= 10 {
            assert_eq!(
                got.1,
                got.0 + 4,
                "a minute-old account pays 4 more: {got:?}"
            );
            assert_eq!(got.2, 10, "the drop's cap: {got:?}");
            app.cleanup().await;
            return;
        }
        seen.push(got);
    }
    panic!("the drop's rate never raised the work: {seen:?}");
}

#[tokio::test]
async fn a_zero_cap_keeps_the_work_at_the_floor_whatever_the_pressure() {
    let app = app_with_calm(1, 1).await;
    let off = app
        .create_drop(json!({ "stock": 100, "pow_max_difficulty": 0 }))
        .await;
    for _ in 0..10 {
        assert_eq!(join(&app, off, &app.shopper().token, None).await.0, 200);
    }
    assert_eq!(difficulty(&app, off, &app.shopper().token).await, 0);
    let (st, e) = app
        .call(
            "PATCH",
            &format!("/v1/admin/drops/{off}"),
            Some(&app.manager()),
            Some(json!({ "pow_max_difficulty": 40 })),
        )
        .await;
    assert_eq!(
        (st, e["fields"]["pow_max_difficulty"].is_string()),
        (422, true),
        "{e}"
    );
    app.cleanup().await;
}
