//! Bounded runs of `loadtest strategies` and `loadtest ceiling` against real Redis and
//! PostgreSQL, each with its in-process server on a scratch database and a unique Redis
//! prefix: every correct strategy sells exactly the stock and never more, and the figures
//! are sane (every attempt counted, latencies ordered, rates positive).

use loadtest::harness::Measured;
use vq_core::config::Secret;
use vq_core::Settings;

fn settings() -> Settings {
    let mut s = Settings::default();
    s.redis.url = Secret::new(
        std::env::var("VQ_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
    );
    s.database.url = Secret::new(
        std::env::var("VQ_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    );
    s.database.max_connections = 8;
    s
}

fn sane(name: &str, m: &Measured, attempts: usize) {
    assert_eq!(m.attempts, attempts, "{name}: every attempt finished");
    assert_eq!(m.errors, 0, "{name}: {:?}", m.first_error);
    assert_eq!(m.bought + m.rejected, attempts, "{name}");
    assert!(
        m.attempts_per_s > 0.0 && m.purchases_per_s > 0.0,
        "{name}: {m:?}"
    );
    assert!(m.mean_ms > 0.0 && m.p50_ms > 0.0, "{name}: {m:?}");
    assert!(
        m.p50_ms <= m.p99_ms && m.p99_ms <= m.max_ms,
        "{name}: {m:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_strategy_sells_exactly_the_stock() {
    let args = loadtest::strategies::StrategiesArgs {
        stock: 50,
        buyers: 120,
        concurrency: 8,
        api: None,
        only: "pg,lock,lua,vitaqueue".into(),
        pg_pool: 8,
        timeout_s: 60,
        json: None,
        cpu_pids: None,
        sources: Default::default(),
    };
    let report = loadtest::strategies::run(&args, &settings()).await.unwrap();
    loadtest::strategies::print(&report);
    let names: Vec<&str> = report.rows.iter().map(|r| r.strategy).collect();
    assert_eq!(
        names,
        [
            "postgres_for_update",
            "redis_setnx_lock",
            "redis_lua_script",
            "vitaqueue_http"
        ]
    );
    for row in &report.rows {
        sane(row.strategy, &row.measured, 120);
        assert_eq!(row.oversold, 0, "{}", row.strategy);
        assert_eq!(row.measured.bought, 50, "{}", row.strategy);
        assert_eq!(row.measured.rejected, 70, "{}", row.strategy);
        assert_eq!(row.sold, 50, "{}", row.strategy);
        assert_eq!(row.recorded_orders, 50, "{}", row.strategy);
    }
    assert!(loadtest::strategies::failures(&report).is_empty());
}

/// Both HTTP clients (the lean keep-alive one of the benchmark, and reqwest) buy every unit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ceiling_compares_raw_script_and_http_on_equal_drops() {
    use loadtest::ceiling::HttpClient;
    for http_client in [HttpClient::Lean, HttpClient::Reqwest] {
        let args = loadtest::ceiling::CeilingArgs {
            purchases: 300,
            concurrency: 16,
            connections: 2,
            api: None,
            timeout_s: 60,
            json: None,
            cpu_pids: None,
            sources: Default::default(),
            pause_before_http: false,
            http_client,
        };
        let r = loadtest::ceiling::run(&args, &settings()).await.unwrap();
        loadtest::ceiling::print(&r);
        assert_eq!(r.http_client, http_client);
        for row in [&r.raw, &r.http] {
            sane(row.path, &row.measured, 300);
            assert_eq!(row.measured.bought, 300, "{}", row.path);
            assert_eq!(row.oversold, 0, "{}", row.path);
            assert_eq!(
                row.orders_in_db, 300,
                "{}: every purchase became an order",
                row.path
            );
        }
        let expected = r.http.measured.purchases_per_s / r.raw.measured.purchases_per_s;
        assert!((r.ratio - expected).abs() < 1e-9 && r.ratio > 0.0);
        assert!(loadtest::ceiling::failures(&r).is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_ceiling_compares_raw_join_script_and_http_on_equal_drops() {
    let args = loadtest::join_ceiling::JoinCeilingArgs {
        joins: 300,
        concurrency: 16,
        connections: 2,
        raw_only: false,
        api: None,
        timeout_s: 60,
        json: None,
        cpu_pids: None,
        sources: Default::default(),
    };
    let r = loadtest::join_ceiling::run(&args, &settings())
        .await
        .unwrap();
    loadtest::join_ceiling::print(&r);
    let http = r.http.as_ref().expect("the HTTP path ran");
    assert_ne!(r.raw.drop, http.drop, "one drop per path");
    for row in [&r.raw, http] {
        sane(row.path, &row.measured, 300);
        assert_eq!(row.measured.bought, 300, "{}: every join queued", row.path);
        assert_eq!(row.queued_after, 300, "{}: 300 distinct places", row.path);
    }
    let expected = http.measured.purchases_per_s / r.raw.measured.purchases_per_s;
    assert!((r.ratio.unwrap() - expected).abs() < 1e-9 && expected > 0.0);
    assert!(loadtest::join_ceiling::failures(&r).is_empty());
}
