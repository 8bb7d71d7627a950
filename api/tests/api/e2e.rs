//! Runs the browser tests (e2e/*.test.mjs: headless Debian Chromium driven by
//! playwright-core, axe-core in every page) against a real server with admission and a
//! worker running. This file sets the scene: accounts, and one drop per room state
//! (scheduled, pre-queue, held behind a full holder cap, paused, sold out, ended, already
//! bought, live, and the socket's endings: other tabs, left, a 5 s window), passed to node
//! through environment variables; sign-up codes go from the test mail sink to a file the
//! browser test reads. Screenshots land in e2e/artifacts/.
//!
//! `browser_fairness_console` (e2e/fair.test.mjs) needs the fairness report and the
//! simulator endpoints.

use crate::accounts::{email, make_account, spawn_with_mail, PASSWORD};
use crate::helpers::*;
use crate::smtp_sink::SmtpSink;
use serde_json::{json, Value};
use vq_core::domain::{DropId, UserId};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../e2e");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_pages_and_every_room_state() {
    let _heavy = HEAVY.lock().await;
    let (app, sink) = spawn_with_mail(vq_core::Clock::Redis, unlimited_accounts).await;
    let scene = Scene::set(&app).await;
    let mail = tokio::spawn(write_codes(sink));
    let log = run_node(
        &app,
        &scene.vars,
        &[
            "buyer.test.mjs",
            "states.test.mjs",
            "endings.test.mjs",
            "console.test.mjs",
        ],
    )
    .await;
    assert!(
        log.contains("# fail 0") && log.contains("# pass 8"),
        "{log}"
    );

    // Each new buyer's order went through pay and cancel: cancelled and refunded.
    for wait in scene.wait {
        let (status, refunded): (String, bool) = sqlx::query_as(
            "SELECT status::text, refunded_at IS NOT NULL FROM orders WHERE drop_id = $1",
        )
        .bind(wait.get())
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!((status.as_str(), refunded), ("CANCELLED", true));
    }
    for shot in [
        "signup-3-profile-phone",
        "room-waiting-phone",
        "room-paused-phone",
        "room-admitted-phone",
        "room-reserved-phone",
        "orders-cancelled-phone",
        "orders-cancelled-desktop",
        "room-admitted-desktop",
        "room-scheduled-desktop",
        "room-prequeue-phone",
        "room-reconnecting-desktop",
        "room-soldout-phone",
        "room-ended-desktop",
        "room-bought-phone",
        "room-notfound-desktop",
        "room-replaced-phone",
        "room-left-desktop",
        "room-expired-phone",
        "room-pow-phone",
        "room-pow-desktop",
        "drops-phone",
        "console-phone",
        "console-confirm-close-desktop",
    ] {
        let p = std::path::Path::new(DIR).join(format!("artifacts/{shot}.png"));
        let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "{shot}.png");
    }
    mail.abort();
    scene.stop();
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_fairness_console() {
    let _heavy = HEAVY.lock().await;
    let (app, _sink) = spawn_with_mail(vq_core::Clock::Redis, unlimited_accounts).await;
    let scene = Scene::set(&app).await;
    let log = run_node(&app, &scene.vars, &["fair.test.mjs"]).await;
    assert!(
        log.contains("# fail 0") && log.contains("# pass 1"),
        "{log}"
    );
    scene.stop();
    app.cleanup().await;
}

/// The accounts and drops the browser tests use, and the roles running behind them.
struct Scene {
    vars: Vec<(&'static str, String)>,
    /// The drops the new buyers (phone, desktop) sign up into and buy from.
    wait: [DropId; 2],
    roles: Vec<tokio::task::JoinHandle<()>>,
}

impl Scene {
    async fn set(app: &TestApp) -> Scene {
        let manager = email();
        make_account(app, &manager, true).await;
        let mut vars = vec![
            ("MANAGER_EMAIL", manager),
            ("PASSWORD", PASSWORD.to_string()),
            ("SIGNUP_EMAIL_PHONE", email().to_lowercase()),
            ("SIGNUP_EMAIL_DESKTOP", email().to_lowercase()),
        ];
        let mut buyers = Vec::new();
        for var in ["BUYER_DESKTOP", "BUYER_PHONE"] {
            let e = email();
            let id = make_account(app, &e, false).await;
            let login = json!({ "email": e, "password": PASSWORD });
            let (st, t) = app.call("POST", "/v1/auth/login", None, Some(login)).await;
            assert_eq!(st, 200, "{t}");
            buyers.push(Shopper {
                user: UserId(id),
                token: t["access_token"].as_str().unwrap().to_string(),
            });
            vars.push((var, e));
        }
        let roles = vec![
            app.start_admission(50),
            app.run_worker(app.worker("e2e", 5000, 100).await),
        ];
        let wait = [held(app, "E2E Hoodie").await, held(app, "E2E Hoodie").await];
        let drops = [
            ("DROP_LIVE", live(app).await),
            ("DROP_WAIT_PHONE", wait[0]),
            ("DROP_WAIT_DESKTOP", wait[1]),
            ("DROP_HELD", held(app, "E2E Cap").await),
            ("DROP_PAUSED", paused(app).await),
            (
                "DROP_SCHEDULED",
                later(app, "E2E Jacket", 3 * 3600, 3600).await,
            ),
            ("DROP_PREQUEUE", later(app, "E2E Watch", 3600, 7200).await),
            ("DROP_SOLDOUT", sold_out(app).await),
            ("DROP_ENDED", ended(app).await),
            ("DROP_BOUGHT", bought(app, &buyers).await),
            ("DROP_CONSOLE", live(app).await),
            ("DROP_TABS", held(app, "E2E Tote").await),
            ("DROP_LEAVE", held(app, "E2E Beanie").await),
            ("DROP_EXPIRE", short_window(app).await),
            ("DROP_POW", hard_work(app).await),
        ];
        vars.extend(drops.iter().map(|(k, d)| (*k, d.to_string())));
        Scene { vars, wait, roles }
    }

    fn stop(self) {
        for r in self.roles {
            r.abort();
        }
    }
}

async fn live(app: &TestApp) -> DropId {
    let spec = json!({ "product_name": "E2E Sneaker", "stock": 20, "per_user_limit": 2, "admission_rate": 50 });
    app.create_drop(spec).await
}

/// A live drop whose only holder slot is taken by another buyer: newcomers wait.
async fn held(app: &TestApp, name: &str) -> DropId {
    let spec = json!({ "product_name": name, "stock": 5, "admission_rate": 5,
                       "max_holders": 1, "token_ttl_s": 900 });
    let drop = app.create_drop(spec).await;
    let filler = app.shopper();
    assert_eq!(app.join(drop, &filler).await.0, 200);
    app.admitter().tick_drop(drop).await.unwrap();
    app.admitted_token(drop, &filler).await;
    drop
}

/// A held drop whose every join pays at least 16 bits of proof of work (the floor); the
/// filler joined before the floor was set.
async fn hard_work(app: &TestApp) -> DropId {
    let drop = held(app, "E2E Parka").await;
    let body = json!({ "pow_difficulty": 16 });
    let path = format!("/v1/admin/drops/{drop}");
    let (st, b) = app
        .call("PATCH", &path, Some(&app.manager()), Some(body))
        .await;
    assert_eq!(st, 200, "{b}");
    drop
}

/// A live drop whose purchase window is the shortest allowed (5 s).
async fn short_window(app: &TestApp) -> DropId {
    let spec = json!({ "product_name": "E2E Socks", "stock": 20, "admission_rate": 50,
                       "token_ttl_s": 5 });
    app.create_drop(spec).await
}

async fn paused(app: &TestApp) -> DropId {
    let drop = held(app, "E2E Scarf").await;
    admin(app, &format!("/v1/admin/drops/{drop}/pause")).await;
    drop
}

/// Starts in `starts_in_s`; the pre-queue opens `prequeue_s` before.
async fn later(app: &TestApp, name: &str, starts_in_s: i64, prequeue_s: i64) -> DropId {
    let starts = chrono::Utc::now() + chrono::Duration::seconds(starts_in_s);
    let spec =
        json!({ "product_name": name, "starts_at": starts.to_rfc3339(), "prequeue_s": prequeue_s });
    app.create_drop(spec).await
}

async fn sold_out(app: &TestApp) -> DropId {
    let drop = app
        .create_drop(json!({ "product_name": "E2E Bag", "stock": 1 }))
        .await;
    app.buy(drop, &app.shopper(), 1).await;
    drop
}

async fn ended(app: &TestApp) -> DropId {
    let drop = app.create_drop(json!({ "product_name": "E2E Belt" })).await;
    admin(app, &format!("/v1/admin/drops/{drop}/close")).await;
    drop
}

/// A drop each browser buyer has already bought their one unit of.
async fn bought(app: &TestApp, buyers: &[Shopper]) -> DropId {
    let drop = app
        .create_drop(json!({ "product_name": "E2E Gloves", "stock": 5 }))
        .await;
    for b in buyers {
        app.buy(drop, b, 1).await;
    }
    drop
}

async fn admin(app: &TestApp, path: &str) -> Value {
    let (st, body) = app.call("POST", path, Some(&app.manager()), None).await;
    assert_eq!(st, 200, "{path}: {body}");
    body
}

/// Hands every mailed sign-up code to the browser test through a file.
async fn write_codes(mut sink: SmtpSink) {
    let file = std::path::Path::new(DIR).join("artifacts/mail-code.txt");
    let _ = std::fs::create_dir_all(file.parent().unwrap());
    let _ = std::fs::remove_file(&file);
    while let Some(mail) = sink.try_next(3_600_000).await {
        std::fs::write(&file, mail.code()).expect("write the code file");
    }
}

async fn run_node(app: &TestApp, vars: &[(&'static str, String)], files: &[&str]) -> String {
    assert!(
        std::path::Path::new(DIR)
            .join("node_modules/axe-core")
            .exists(),
        "run `npm ci` in e2e/ (scripts/test.sh does)"
    );
    let out = tokio::process::Command::new("node")
        .args(["--test", "--test-concurrency=1"])
        .args(files)
        .current_dir(DIR)
        .env("BASE_URL", &app.addr)
        .env("ARTIFACTS", "artifacts")
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .expect("node on PATH");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "browser tests failed:\n{log}");
    log
}
