//! Runs the browser tests (e2e/room.test.mjs: headless Debian Chromium driven by
//! playwright-core) against a real server with admission and a worker running.
//! Screenshots land in e2e/artifacts/.

use crate::accounts::{make_account, PASSWORD};
use crate::helpers::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_buyer_signs_in_joins_buys_and_sees_the_order() {
    let app = spawn_app().await;
    let buyer = crate::accounts::email();
    let manager = crate::accounts::email();
    make_account(&app, &buyer, false).await;
    make_account(&app, &manager, true).await;
    let drop = app
        .create_drop(json!({ "product_name": "E2E Sneaker", "stock": 3, "admission_rate": 50 }))
        .await;
    let adm = app.start_admission(50);
    let worker = app.run_worker(app.worker("e2e", 5000, 100).await);

    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../e2e");
    assert!(
        std::path::Path::new(dir)
            .join("node_modules/playwright-core")
            .exists(),
        "run `npm ci` in e2e/ (scripts/test.sh does)"
    );
    let out = tokio::process::Command::new("node")
        .args(["--test", "--test-concurrency=1", "room.test.mjs"])
        .current_dir(dir)
        .env("BASE_URL", &app.addr)
        .env("DROP_ID", drop.to_string())
        .env("BUYER_EMAIL", &buyer)
        .env("MANAGER_EMAIL", &manager)
        .env("PASSWORD", PASSWORD)
        .env("ARTIFACTS", "artifacts")
        .output()
        .await
        .expect("node on PATH");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "browser tests failed:\n{log}");
    assert!(
        log.contains("# pass 2") && log.contains("# fail 0"),
        "{log}"
    );

    let paid: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE drop_id = $1 AND status = 'PAID'")
            .bind(drop.get())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(paid, 1, "the order the browser paid for");
    for shot in [
        "0-drops",
        "1-room",
        "2-admitted",
        "3-reserved",
        "4-order-paid",
        "5-console-paused",
    ] {
        let p = std::path::Path::new(dir).join(format!("artifacts/{shot}.png"));
        assert!(
            std::fs::metadata(&p)
                .map(|m| m.len() > 1000)
                .unwrap_or(false),
            "{shot}.png"
        );
    }
    adm.abort();
    worker.abort();
    app.cleanup().await;
}
