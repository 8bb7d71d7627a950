//! The autopilot against real faults, with nothing oversold throughout:
//! - a worker process SIGSTOPped (orders stop reaching PostgreSQL): the rate falls to
//!   `min_rate` within 5 s, and comes back within 30 s of SIGCONT;
//! - the purchase path slowed by `DEBUG SLEEP` bursts on a private redis-server: the rate
//!   falls, for the purchase p99;
//! - half the admitted buyers never buy: the rate rises, and the drop sells out close to
//!   the time an always-buying crowd takes at the same manager's rate (and well before the
//!   same half-buying crowd at a fixed rate).
//!
//! Admission runs as a task with the shipped autopilot interval (1 s).

use crate::autopilot_crowd::{audit, rate, rate_until, reasons, start};
use crate::faults::fast;
use crate::helpers::*;
use crate::procs::vitaqueue;
use serde_json::json;
use std::time::{Duration, Instant};
use vq_core::domain::DropId;

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a child process this test started.
    let r = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_takes_the_rate_to_min_and_sigcont_brings_it_back() {
    let _heavy = HEAVY.lock().await;
    let app = spawn_app().await;
    let stock = 100_000;
    let ap = json!({ "min_rate": 3, "max_rate": 60, "order_lag_s": 1 });
    let drop = app
        .create_drop(json!({ "stock": stock, "admission_rate": 30, "autopilot": ap }))
        .await;
    let mut worker = vitaqueue("worker", &app.settings, "apworker", &fast());
    let admission = app.start_admission(25);
    let crowd = start(&app, drop, 900, |_| true).await;
    app.wait_orders(drop, 40).await;
    assert_eq!(rate(&app, drop).await, 30, "healthy: the manager's rate");

    signal(worker.pid(), libc::SIGSTOP);
    let fell = rate_until(&app, drop, Duration::from_secs(5), |r| r == 3).await;
    assert!(
        fell.is_some(),
        "rate {} 5 s after SIGSTOP",
        rate(&app, drop).await
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        rate(&app, drop).await,
        3,
        "held at min_rate while the worker is stopped"
    );

    signal(worker.pid(), libc::SIGCONT);
    let back = rate_until(&app, drop, Duration::from_secs(30), |r| r >= 30).await;
    assert!(
        back.is_some(),
        "rate {} 30 s after SIGCONT",
        rate(&app, drop).await
    );
    eprintln!("autopilot: min_rate {fell:?} after SIGSTOP, back {back:?} after SIGCONT");
    let bought = crowd.stop().await;
    audit(&app, drop, stock, &bought).await;
    let why = reasons(&app, drop).await;
    assert!(
        why.contains(&"order_lag".into()) && why.contains(&"recover".into()),
        "{why:?}"
    );
    assert!(worker.is_running());
    admission.abort();
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowed_purchase_path_brings_the_rate_down() {
    let _heavy = HEAVY.lock().await;
    // A private redis-server that answers `DEBUG`.
    let private = PrivateRedis::start_with(&["--enable-debug-command", "yes"]).await;
    let url = private.url.clone();
    let app = spawn_app_with(Opts {
        redis_url: url.clone(),
        ..Opts::default()
    })
    .await;
    let stock = 100_000;
    // The lag target is out of reach here: only the purchase p99 speaks.
    let ap = json!({ "min_rate": 3, "max_rate": 60, "order_lag_s": 600 });
    let drop = app
        .create_drop(json!({ "stock": stock, "admission_rate": 30, "autopilot": ap }))
        .await;
    let worker = app.run_worker(app.worker("w", 60_000, 50).await);
    let admission = app.start_admission(25);
    let crowd = start(&app, drop, 700, |_| true).await;
    app.wait_orders(drop, 40).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rate(&app, drop).await, 30, "healthy: the manager's rate");

    // Bursts: Redis sleeps 1.5 s (five back-to-back 300 ms sleeps), answers for 300 ms, and
    // again, for up to 10 s. (Sleeps with gaps between them would mostly miss: the crowd's
    // driver, waiting on the same Redis, buys right after a sleep, in the gap.)
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut sleeper = client.get_multiplexed_async_connection().await.unwrap();
    let t0 = Instant::now();
    let mut fell = None;
    while t0.elapsed() < Duration::from_secs(10) {
        for _ in 0..5 {
            let _: () = redis::cmd("DEBUG")
                .arg("SLEEP")
                .arg("0.3")
                .query_async(&mut sleeper)
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        if rate(&app, drop).await <= 7 {
            fell = Some(t0.elapsed());
            break;
        }
    }
    assert!(
        fell.is_some(),
        "rate {} after 10 s of bursts",
        rate(&app, drop).await
    );
    eprintln!("autopilot: rate at most 7 after {fell:?} of DEBUG SLEEP bursts");
    let why = reasons(&app, drop).await;
    assert!(why.iter().all(|r| r == "purchase_p99"), "{why:?}");
    let bought = crowd.stop().await;
    audit(&app, drop, stock, &bought).await;
    admission.abort();
    worker.abort();
    app.cleanup().await;
}

/// Seconds from the crowd's start until `stock` units are sold.
async fn sold_out(
    app: &TestApp,
    c: &crate::autopilot_crowd::Crowd,
    stock: usize,
    drop: DropId,
) -> f64 {
    let t0 = Instant::now();
    while c.bought_n() < stock {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "drop {drop} never sold out"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = app;
    c.started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_shows_raise_the_rate_and_the_drop_sells_out_near_an_always_buying_crowds_time() {
    let _heavy = HEAVY.lock().await;
    let app = spawn_app().await;
    let stock = 150;
    let spec = |ap: serde_json::Value| {
        // Overbooking 10: with half the tokens unused the default 1.5 live tokens per unit
        // left would rule the tail of every drop here, autopilot or not.
        let mut s =
            json!({ "stock": stock, "admission_rate": 10, "token_ttl_s": 5, "overbook": 10 });
        if !ap.is_null() {
            s["autopilot"] = ap;
        }
        s
    };
    let auto = app
        .create_drop(spec(json!({ "min_rate": 5, "max_rate": 40 })))
        .await;
    let always = app.create_drop(spec(serde_json::Value::Null)).await;
    let fixed = app.create_drop(spec(serde_json::Value::Null)).await;
    let worker = app.run_worker(app.worker("w", 60_000, 50).await);
    let half = |i: usize| i.is_multiple_of(2);
    let (c_auto, c_always, c_fixed) = (
        start(&app, auto, 700, half).await,
        start(&app, always, 250, |_| true).await,
        start(&app, fixed, 700, half).await,
    );
    // Admission starts once every crowd waits: the three drops start together.
    let admission = app.start_admission(25);
    let (t_auto, t_always, t_fixed) = tokio::join!(
        sold_out(&app, &c_auto, stock as usize, auto),
        sold_out(&app, &c_always, stock as usize, always),
        sold_out(&app, &c_fixed, stock as usize, fixed),
    );
    let peak = app_peak(&app, auto).await;
    eprintln!("sell-out: autopilot {t_auto:.1} s, always-buying {t_always:.1} s, fixed {t_fixed:.1} s; peak rate {peak}");
    assert!(peak > 10, "the rate rose past the manager's 10/s: {peak}");
    assert!(reasons(&app, auto).await.contains(&"no_shows".into()));
    assert!(
        t_auto <= t_always * 1.5,
        "autopilot {t_auto:.1} s vs always-buying {t_always:.1} s"
    );
    assert!(
        t_auto < t_fixed * 0.85,
        "autopilot {t_auto:.1} s vs fixed {t_fixed:.1} s"
    );
    for (c, d) in [(c_auto, auto), (c_always, always), (c_fixed, fixed)] {
        let bought = c.stop().await;
        audit(&app, d, stock, &bought).await;
    }
    admission.abort();
    worker.abort();
    app.cleanup().await;
}

/// The highest rate the drop's history recorded.
async fn app_peak(app: &TestApp, drop: DropId) -> u64 {
    let path = format!("/v1/admin/drops/{drop}/history");
    let (_, h) = app.call("GET", &path, Some(&app.manager()), None).await;
    h["rate_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["new"].as_u64())
        .max()
        .unwrap_or(0)
}
