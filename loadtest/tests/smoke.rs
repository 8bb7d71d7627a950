//! Bounded smoke run of `loadtest drop` against an in-process server (api, admission and
//! worker) on real Redis and PostgreSQL: the invariants must hold.

use sqlx::{Connection, PgConnection};
use vitaqueue::{App, Opts, Roles};
use vq_core::config::Secret;
use vq_core::{shutdown, Clock, Settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_drop_sells_out_with_every_invariant_holding() {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let admin = std::env::var("VQ_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let db_name = format!("vq_smoke_{id}");
    let mut conn = PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{db_name}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').unwrap().0;

    let mut s = Settings::default();
    s.http.port = 0;
    s.redis.url = Secret::new(
        std::env::var("VQ_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
    );
    s.redis.prefix = format!("vqs{}", &id[..12]);
    s.database.url = Secret::new(format!("{base}/{db_name}"));
    s.database.max_connections = 16; // one pool shared by api and worker (8 each before)
    s.auth.jwt_secret = Some(Secret::new(format!("smoke-{id}")));
    s.worker.block_ms = 50;
    // 400 buyers from three loopback addresses: no per-address connection cap.
    s.http.max_connections_per_ip = 0;

    s.admission.tick_ms = 20;
    s.admission.max_batch = 5000;

    let (trigger, stop) = shutdown::channel();
    let opts = Opts {
        roles: Roles {
            scheduler: false,
            ..Roles::ALL
        },
        clock: Clock::Redis,
        shutdown: stop,
    };
    let app = App::build(s.clone(), opts).await.unwrap();
    let port = app.port().unwrap();
    let (db, redis) = (app.stores().db.clone(), app.stores().redis.clone());
    let server = tokio::spawn(app.run_until_stopped());

    let args = loadtest::drop_run::DropArgs {
        api: format!("http://127.0.0.1:{port}"),
        buyers: 400,
        stock: 60,
        rate: 300,
        token_ttl: 5,
        // Few holders at a time, so admissions go on after the start's first tick: a buyer
        // admitted in that tick hears `admitted` before any position (the start's exact
        // reads are batched), and the ETA error scores only buyers shown an ETA first.
        max_holders: 20,
        abandon: 0.1,
        sources: 3,
        ramp_s: 0.5,
        start_in: Some(2.0),
        timeout_s: 60,
        server_pid: Some(std::process::id()),
        cpu_pids: None,
        json: None,
        fail: 0.2,
        no_pay: false,
        // Buy on the room socket: the HTTP purchase is driven by `compare.rs`.
        buy_over: loadtest::drop_run::BuyOver::Socket,
        html: Some(std::env::temp_dir().join(format!("vq-smoke-{id}.html"))),
        pow: 0,
        overbook: 1.5,
        expected_abandon: Some(0.1),
        autopilot: None,
        seed: None,
        // The holder cap of 20 is not in the forecast's model: its ETA range is not
        // what this test checks (sim_vs_loadtest.sh does, on the shipped defaults).
        min_eta_coverage: 0.0,
    };
    let html_path = args.html.clone().unwrap();
    let summary = loadtest::drop_run::run(args, &s).await.unwrap();
    loadtest::summary::print(&summary);
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    // Declined payments give units back, which later buyers may buy: at least 60 sales.
    assert!(summary.bought_by_clients >= 60, "{summary:?}");
    assert_eq!(summary.orders_in_db, summary.bought_by_clients as i64);
    assert_eq!(
        summary.paid + summary.payment_failed,
        summary.bought_by_clients,
        "every buyer paid"
    );
    assert!(
        summary.payment_failed > 0,
        "about a fifth of the cards are declined"
    );
    assert_eq!(summary.sold, summary.paid as i64);
    assert_eq!(summary.sold + summary.reserved + summary.remaining, 60);
    assert_eq!(summary.oversold, 0);
    assert_eq!(
        summary.peak_ws_connections, 400,
        "everyone was in the room at the start"
    );
    assert!(summary.max_admissions_per_s <= 300);
    assert!(summary.fifo_batches_checked > 0);
    assert!(summary.outcomes.get("abandoned").copied().unwrap_or(0) > 0);
    assert!(summary.server_rss_mb.unwrap() > 0.0);
    let fair = summary
        .fairness
        .as_ref()
        .expect("fairness copied into the summary");
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(
        json["fairness"]["report"]["fifo"]["kendall_tau"], 1.0,
        "{json}"
    );
    assert_eq!(fair.report["joiners"], 400);
    assert_eq!(fair.report["prequeue_joiners"], 400);
    assert!(
        fair.report["max_admissions_in_any_second"]
            .as_u64()
            .unwrap()
            <= 300
    );
    assert!(fair.report["tokens_per_unit"].as_f64().unwrap() >= 1.0);
    assert!(json["fairness"]["eta"]["p95"].is_number() && fair.eta.samples > 0);
    assert!(fair.wait_p50_s <= fair.wait_p90_s);
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("all invariants hold") && html.matches("<svg").count() == 5);
    let _ = std::fs::remove_file(&html_path);

    trigger.fire();
    let _ = server.await;
    db.close().await;
    let _ = sqlx::query(&format!(
        "DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)"
    ))
    .execute(&mut conn)
    .await;
    let mut r = redis.clone();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", s.redis.prefix))
        .query_async(&mut r)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut r)
            .await
            .unwrap();
    }
}
