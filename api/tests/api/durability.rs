//! Safe as shipped (docs/durability.md): the defaults wait for a replica whenever the
//! primary has one, a setup that cannot keep an acknowledged purchase through losing its
//! primary says so at start (log and `vq_durability_at_risk{reason}`), `redis.durability =
//! "strict"` answers 503 `not_replicated` with `Retry-After` and reserves nothing, and
//! docker-compose.yml ships a primary, a replica and three Sentinels that every role follows.

use crate::helpers::*;
use crate::procs::{api_node, free_port, temp_dir, wait_redis, Proc};
use crate::redis_procs::redis_server;
use redis::AsyncCommands;
use serde_json::json;
use serde_yaml::Value as Yaml;
use std::time::{Duration, Instant};
use vq_core::config::DurabilityMode;
use vq_core::domain::DropId;

/// A private primary with one replica (no Sentinels), killed on drop.
struct Pair {
    primary_url: String,
    replica: Proc,
    _primary: Proc,
}

async fn pair(with_replica: bool) -> Pair {
    let (pport, rport) = (free_port(), free_port());
    let (pdir, rdir) = (temp_dir("dur-p"), temp_dir("dur-r"));
    let primary = Proc::spawn("dur-primary", &mut redis_server(pport, &pdir, &[]));
    let primary_url = format!("redis://127.0.0.1:{pport}");
    wait_redis(&primary_url, Duration::from_secs(10)).await;
    let of = pport.to_string();
    let args = ["--replicaof", "127.0.0.1", of.as_str()];
    let mut replica = Proc::spawn("dur-replica", &mut redis_server(rport, &rdir, &args));
    if with_replica {
        let url = format!("redis://127.0.0.1:{rport}");
        wait_redis(&url, Duration::from_secs(10)).await;
        until_replicas(&primary_url, 1).await;
    } else {
        replica.kill9();
    }
    Pair {
        primary_url,
        replica,
        _primary: primary,
    }
}

async fn until_replicas(url: &str, n: u32) {
    let t0 = Instant::now();
    let mut c = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    loop {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut c)
            .await
            .unwrap();
        if info.contains(&format!("connected_slaves:{n}\r")) && info.contains("state=online") {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "no replica: {info}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn signal(p: &Proc, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(p.pid() as i32, sig) }, 0);
}

async fn strict_app(p: &Pair) -> TestApp {
    let opts = Opts {
        redis_url: p.primary_url.clone(),
        ..Opts::default()
    };
    spawn_app_tuned(opts, |s| s.redis.durability = DurabilityMode::Strict).await
}

/// The raw purchase, for its headers.
async fn purchase(app: &TestApp, drop: DropId, s: &Shopper, token: &str) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/v1/drops/{drop}/purchase")))
        .bearer_auth(&s.token)
        .json(&json!({ "token": token, "quantity": 1 }))
        .send()
        .await
        .unwrap()
}

async fn xlen(app: &TestApp, drop: DropId) -> i64 {
    app.redis
        .clone()
        .xlen(app.keys.drop(drop).orders())
        .await
        .unwrap()
}

async fn not_replicated(r: reqwest::Response) {
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["code"], "not_replicated", "{b}");
    assert_eq!(b["retry_after"], 1, "{b}");
}

/// An admitted shopper and their token on `drop`.
async fn admitted(app: &TestApp, drop: DropId) -> (Shopper, String) {
    let s = app.shopper();
    let (st, b) = app.join(drop, &s).await;
    assert_eq!(st, 200, "{b}");
    app.admitter().tick_drop(drop).await.unwrap();
    let token = app.admitted_token(drop, &s).await;
    (s, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_without_a_replica_refuses_up_front_and_reserves_nothing() {
    let p = pair(false).await;
    let app = strict_app(&p).await;
    let drop = app.create_drop(json!({ "stock": 5 })).await;
    let (s, token) = admitted(&app, drop).await;
    not_replicated(purchase(&app, drop, &s, &token).await).await;
    assert_eq!(app.remaining(drop).await, 5, "nothing reserved");
    assert_eq!(xlen(&app, drop).await, 0, "no order entry");
    let state: Option<String> = app
        .redis
        .clone()
        .hget(app.keys.drop(drop).tokens(), &token)
        .await
        .unwrap();
    assert_eq!(
        state,
        Some(format!("L|{}", s.user)),
        "the token is still the buyer's to use"
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_undoes_a_purchase_no_replica_confirmed_and_takes_the_retry_once_one_does() {
    let p = pair(true).await;
    let app = strict_app(&p).await;
    let drop = app.create_drop(json!({ "stock": 5 })).await;
    let (s, token) = admitted(&app, drop).await;
    // The replica stays connected but answers nothing: WAIT comes back short.
    signal(&p.replica, libc::SIGSTOP);
    not_replicated(purchase(&app, drop, &s, &token).await).await;
    assert_eq!(app.remaining(drop).await, 5, "the reservation was undone");
    assert_eq!(xlen(&app, drop).await, 0, "no worker will ever see it");
    let k = app.keys.drop(drop);
    let staged: i64 = app.redis.clone().hlen(k.staged()).await.unwrap();
    assert_eq!(staged, 0);
    let bought: Option<i64> = app
        .redis
        .clone()
        .hget(k.buyers(), s.user.to_string())
        .await
        .unwrap();
    assert_eq!(bought, None, "the buyer's count is back");
    signal(&p.replica, libc::SIGCONT);
    // The same token buys once the replica confirms again (it acks once a second).
    let t0 = Instant::now();
    let body = loop {
        let r = purchase(&app, drop, &s, &token).await;
        if r.status() == 201 {
            break r.json::<serde_json::Value>().await.unwrap();
        }
        not_replicated(r).await;
        assert!(t0.elapsed() < Duration::from_secs(10), "never confirmed");
        assert_eq!(app.remaining(drop).await, 5);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(body["remaining"], 4, "{body}");
    assert_eq!(app.remaining(drop).await, 4);
    assert_eq!(xlen(&app, drop).await, 1, "committed: one order entry");
    // A retry of the confirmed purchase replays it and writes nothing more.
    assert_eq!(purchase(&app, drop, &s, &token).await.status(), 201);
    assert_eq!(xlen(&app, drop).await, 1);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledge_mode_by_default_waits_for_the_replica_and_answers_201() {
    let p = pair(true).await;
    let opts = Opts {
        redis_url: p.primary_url.clone(),
        ..Opts::default()
    };
    let app = spawn_app_with(opts).await;
    let drop = app.create_drop(json!({ "stock": 5 })).await;
    let (s, token) = admitted(&app, drop).await;
    let r = purchase(&app, drop, &s, &token).await;
    assert_eq!(r.status(), 201);
    assert_eq!(xlen(&app, drop).await, 1);
    // The default waited for the one replica: it already holds the order entry.
    let mut rep = redis::Client::open(format!("redis://127.0.0.1:{}", replica_port(&p).await))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let on_replica: i64 = rep.xlen(app.keys.drop(drop).orders()).await.unwrap();
    assert_eq!(on_replica, 1, "WAIT 1 ran before the 201");
    app.cleanup().await;
}

async fn replica_port(p: &Pair) -> u16 {
    let mut c = redis::Client::open(p.primary_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut c)
        .await
        .unwrap();
    let line = info
        .lines()
        .find(|l| l.starts_with("slave0:"))
        .expect("a replica");
    let port = line
        .split(',')
        .find_map(|f| f.strip_prefix("port="))
        .unwrap();
    port.parse().unwrap()
}

/// `vq_durability_at_risk{reason="…"}` on a node's /metrics.
async fn at_risk(port: u16) -> Vec<(String, f64)> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("vq_durability_at_risk{reason=\""))
        .filter_map(|l| {
            let (reason, v) = l.split_once("\"} ")?;
            Some((reason.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn risk(all: &[(String, f64)], reason: &str) -> f64 {
    all.iter()
        .find(|(r, _)| r == reason)
        .unwrap_or_else(|| panic!("no gauge for {reason}: {all:?}"))
        .1
}

/// Each node is its own process (the gauges are per process), so each reads its own setup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_keep_a_purchase_through_a_failover_says_so_at_start() {
    let alone = spawn_app().await; // the shared Redis: no replica, no AOF
    let (mut node, port) = api_node(&alone.settings, "risk-alone", &[]).await;
    let g = at_risk(port).await;
    assert_eq!(risk(&g, "no_replica"), 1.0, "{g:?}");
    assert_eq!(risk(&g, "no_aof"), 1.0, "{g:?}");
    assert_eq!(risk(&g, "wait_off"), 0.0, "{g:?}");
    node.kill9();
    let log = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("vq-logs")
            .join(format!("{}-risk-alone.log", alone.settings.redis.prefix)),
    )
    .unwrap();
    assert!(
        log.contains("may not survive losing the Redis primary"),
        "{log}"
    );
    let off = [("VQ_REDIS__WAIT_REPLICAS", "0".to_string())];
    let p = pair(true).await;
    let mut s = alone.settings.clone();
    s.redis.url = vq_core::config::Secret::new(p.primary_url.clone());
    let (_off, port) = api_node(&s, "risk-off", &off).await;
    let g = at_risk(port).await;
    assert_eq!(risk(&g, "wait_off"), 1.0, "{g:?}");
    assert_eq!(risk(&g, "no_replica"), 0.0, "{g:?}");
    let (_safe, port) = api_node(&s, "risk-safe", &[]).await;
    let g = at_risk(port).await;
    assert!(
        g.iter().all(|(_, v)| *v == 0.0),
        "the defaults with a replica: {g:?}"
    );
    alone.cleanup().await;
}

fn service<'a>(compose: &'a Yaml, name: &str) -> &'a Yaml {
    let s = &compose["services"][name];
    assert!(!s.is_null(), "docker-compose.yml has no service {name}");
    s
}

/// A service's command as one string (list or string form).
fn command(s: &Yaml) -> String {
    match &s["command"] {
        Yaml::Sequence(v) => v
            .iter()
            .filter_map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        Yaml::String(c) => c.clone(),
        other => panic!("no command: {other:?}"),
    }
}

#[test]
fn docker_compose_runs_a_primary_a_replica_and_three_sentinels_that_every_role_follows() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    let mut compose: Yaml = serde_yaml::from_str(&text).unwrap();
    compose.apply_merge().unwrap();
    let primary = command(service(&compose, "redis"));
    assert!(primary.contains("--appendonly yes"), "{primary}");
    let replica = command(service(&compose, "redis-replica"));
    assert!(replica.contains("--appendonly yes"), "{replica}");
    assert!(replica.contains("--replicaof redis 6379"), "{replica}");
    let conf = std::fs::read_to_string(root.join("redis/sentinel.conf")).unwrap();
    let monitor: Vec<&str> = conf
        .lines()
        .find_map(|l| l.trim().strip_prefix("sentinel monitor "))
        .expect("sentinel monitor line")
        .split_whitespace()
        .collect();
    let (master, host, port, quorum) = (monitor[0], monitor[1], monitor[2], monitor[3]);
    assert_eq!(
        (host, port),
        ("redis", "6379"),
        "the Sentinels watch the primary"
    );
    assert_eq!(quorum, "2", "a majority of the three Sentinels");
    let sentinels: Vec<String> = (1..=3).map(|i| format!("sentinel-{i}")).collect();
    for name in &sentinels {
        let s = service(&compose, name);
        assert!(command(s).contains("redis-sentinel"), "{name}");
        let mounts = serde_yaml::to_string(&s["volumes"]).unwrap();
        assert!(
            mounts.contains("./redis/sentinel.conf:"),
            "{name}: {mounts}"
        );
    }
    let want: Vec<String> = sentinels
        .iter()
        .map(|n| format!("redis://{n}:26379"))
        .collect();
    let Yaml::Mapping(services) = &compose["services"] else {
        panic!("services")
    };
    let mut roles = Vec::new();
    for (name, s) in services {
        if s["image"].as_str() != Some("vitaqueue:local") {
            continue;
        }
        let name = name.as_str().unwrap();
        let env = &s["environment"];
        let listed: Vec<&str> = env["VQ_REDIS__SENTINELS"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no VQ_REDIS__SENTINELS"))
            .split(',')
            .collect();
        assert_eq!(listed, want, "{name}");
        assert_eq!(
            env["VQ_REDIS__MASTER_NAME"].as_str(),
            Some(master),
            "{name}"
        );
        assert!(
            env["VQ_REDIS__WAIT_REPLICAS"].is_null(),
            "{name}: the default (auto) waits"
        );
        for dep in sentinels.iter().chain(["redis-replica".to_string()].iter()) {
            assert!(
                !s["depends_on"][dep.as_str()].is_null(),
                "{name} waits for {dep}"
            );
        }
        roles.push(name.to_string());
    }
    roles.sort();
    assert_eq!(
        roles,
        ["admission", "api", "worker"],
        "every role follows the Sentinels"
    );
}
