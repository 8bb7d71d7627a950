//! Integration tests for lua/{join,admit,purchase}.lua, driven through the typed wrappers in
//! `vq_core::scripts::Scripts` against a real Redis (`VQ_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`).
//!
//! Every test works under its own random key prefix with a manual clock, so tests run in
//! parallel, never see each other's data and never sleep for a TTL. A drop is set up by
//! writing its config hash and stock key directly, as the scripts read them.

use futures::StreamExt;
use redis::aio::{MultiplexedConnection, PubSub};
use redis::{FromRedisValue, ToRedisArgs};
use serde_json::{json, Value as Json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;
use vq_core::domain::{DropId, Quantity, UserId};
use vq_core::scripts::{
    Admission, AdmitOutcome, JoinOutcome, JoinReject, PurchaseOutcome, PurchaseReject,
};
use vq_core::{Clock, DropKeys, Keys, Scripts};

/// Start of every test's manual clock (and, by default, the drop start).
const T0: i64 = 1_700_000_000_000;
/// Default token TTL in ms.
const TTL: i64 = 30_000;
/// Published on the events channel to mark "everything before this has been delivered".
const MARKER: &str = "__test_marker__";

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

/// The fields of the drop config hash the scripts read, plus the stock key.
#[derive(Clone, Debug)]
struct DropCfg {
    state: &'static str,
    starts_at: i64,
    prequeue: i64,
    limit: u32,
    rate: u32,
    max_holders: u32,
    ttl: i64,
    stock: i64,
}

impl Default for DropCfg {
    fn default() -> Self {
        DropCfg {
            state: "active",
            starts_at: T0,
            prequeue: 60_000,
            limit: 2,
            rate: 1000,
            max_holders: 1000,
            ttl: TTL,
            stock: 100,
        }
    }
}

/// One test's world: a connection, a drop's keys under a unique prefix, a manual clock.
struct Env {
    client: redis::Client,
    conn: MultiplexedConnection,
    k: DropKeys,
    clock: Clock,
    scripts: Arc<Scripts>,
}

fn redis_url() -> String {
    std::env::var("VQ_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn user() -> UserId {
    UserId(Uuid::new_v4())
}

fn users(n: usize) -> Vec<UserId> {
    (0..n).map(|_| user()).collect()
}

fn hex_prefix() -> String {
    Uuid::new_v4().simple().to_string()
}

fn qty(n: u32) -> Quantity {
    Quantity::new(n).expect("valid quantity")
}

fn queued(rank: u64, admitted_total: u64, prequeue: bool) -> JoinOutcome {
    JoinOutcome::Queued {
        rank,
        admitted_total,
        prequeue,
    }
}

fn reserved(remaining: i64, user_total: i64) -> PurchaseOutcome {
    PurchaseOutcome::Reserved {
        remaining,
        user_total,
    }
}

fn rejected(r: PurchaseReject) -> PurchaseOutcome {
    PurchaseOutcome::Rejected(r)
}

fn admitted_users(out: &AdmitOutcome) -> Vec<String> {
    out.admitted.iter().map(|a| a.user.clone()).collect()
}

fn ids(us: &[UserId]) -> Vec<String> {
    us.iter().map(|u| u.to_string()).collect()
}

impl Env {
    /// A fresh key namespace with no drop configured.
    async fn bare() -> Env {
        let client = redis::Client::open(redis_url()).expect("redis url");
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis (VQ_TEST_REDIS_URL)");
        let keys = Keys::new(format!("vqt-{}", Uuid::new_v4().simple()));
        Env {
            client,
            conn,
            k: keys.drop(DropId::new(1).unwrap()),
            clock: Clock::manual(T0),
            scripts: Arc::new(Scripts::default()),
        }
    }

    /// A fresh namespace with a configured drop.
    async fn with(cfg: DropCfg) -> Env {
        let mut e = Env::bare().await;
        e.configure(&cfg).await;
        e
    }

    async fn configure(&mut self, c: &DropCfg) {
        let mut hset = redis::cmd("HSET");
        hset.arg(self.k.cfg())
            .arg("state")
            .arg(c.state)
            .arg("starts_at")
            .arg(c.starts_at)
            .arg("prequeue")
            .arg(c.prequeue)
            .arg("limit")
            .arg(c.limit)
            .arg("rate")
            .arg(c.rate)
            .arg("max_holders")
            .arg(c.max_holders)
            .arg("ttl")
            .arg(c.ttl);
        let _: i64 = self.q(&mut hset).await;
        self.set_stock(c.stock).await;
    }

    /// Runs one raw Redis command.
    async fn q<T: FromRedisValue>(&mut self, cmd: &mut redis::Cmd) -> T {
        cmd.query_async(&mut self.conn)
            .await
            .expect("redis command")
    }

    async fn set_cfg(&mut self, field: &str, value: impl ToRedisArgs) {
        let _: i64 = self
            .q(redis::cmd("HSET").arg(self.k.cfg()).arg(field).arg(value))
            .await;
    }

    async fn set_stock(&mut self, n: i64) {
        let _: () = self.q(redis::cmd("SET").arg(self.k.stock()).arg(n)).await;
    }

    async fn stock(&mut self) -> i64 {
        self.q(redis::cmd("GET").arg(self.k.stock())).await
    }

    async fn set_bought(&mut self, u: UserId, n: i64) {
        let _: i64 = self
            .q(redis::cmd("HSET")
                .arg(self.k.buyers())
                .arg(u.to_string())
                .arg(n))
            .await;
    }

    async fn bought(&mut self, u: UserId) -> Option<i64> {
        self.q(redis::cmd("HGET").arg(self.k.buyers()).arg(u.to_string()))
            .await
    }

    async fn queue_len(&mut self) -> u64 {
        self.q(redis::cmd("ZCARD").arg(self.k.queue())).await
    }

    async fn queue_score(&mut self, u: UserId) -> Option<f64> {
        self.q(redis::cmd("ZSCORE").arg(self.k.queue()).arg(u.to_string()))
            .await
    }

    async fn seq(&mut self) -> Option<i64> {
        self.q(redis::cmd("GET").arg(self.k.seq())).await
    }

    /// The tokens hash entry: "L|user" (live), "U|user" (used) or "E|user" (expired).
    async fn token_state(&mut self, token: &str) -> Option<String> {
        self.q(redis::cmd("HGET").arg(self.k.tokens()).arg(token))
            .await
    }

    async fn token_expiry(&mut self, token: &str) -> Option<f64> {
        self.q(redis::cmd("ZSCORE").arg(self.k.expiry()).arg(token))
            .await
    }

    async fn holder_token(&mut self, u: UserId) -> Option<String> {
        self.q(redis::cmd("HGET").arg(self.k.holders()).arg(u.to_string()))
            .await
    }

    async fn len(&mut self, cmd: &str, key: String) -> u64 {
        self.q(redis::cmd(cmd).arg(key)).await
    }

    async fn join_r(&mut self, u: UserId, random: f64) -> JoinOutcome {
        self.scripts
            .join(&mut self.conn, &self.k, u, &self.clock, random, false)
            .await
            .expect("join.lua")
    }

    async fn join(&mut self, u: UserId) -> JoinOutcome {
        self.join_r(u, 0.5).await
    }

    async fn peek(&mut self, u: UserId) -> JoinOutcome {
        self.scripts
            .join(&mut self.conn, &self.k, u, &self.clock, 0.5, true)
            .await
            .expect("join.lua (peek)")
    }

    /// Joins every user and checks they land at the back of the live queue in order.
    async fn join_all(&mut self, us: &[UserId]) {
        let before = self.queue_len().await;
        for (i, &u) in us.iter().enumerate() {
            match self.join(u).await {
                JoinOutcome::Queued { rank, .. } => assert_eq!(rank, before + i as u64),
                other => panic!("join of user {i}: {other:?}"),
            }
        }
    }

    async fn admit_p(&mut self, max_batch: u32, prefix: &str) -> AdmitOutcome {
        self.scripts
            .admit(&mut self.conn, &self.k, &self.clock, max_batch, prefix)
            .await
            .expect("admit.lua")
    }

    async fn admit(&mut self, max_batch: u32) -> AdmitOutcome {
        self.admit_p(max_batch, &hex_prefix()).await
    }

    /// Admits exactly the given users (who must be the whole queue) and returns their tokens.
    async fn admit_users(&mut self, us: &[UserId]) -> Vec<String> {
        self.join_all(us).await;
        let out = self.admit(us.len() as u32).await;
        assert_eq!(out.status, "ok");
        assert_eq!(admitted_users(&out), ids(us));
        out.admitted.into_iter().map(|a| a.token).collect()
    }

    async fn admit_one(&mut self, u: UserId) -> String {
        self.admit_users(&[u]).await.remove(0)
    }

    async fn purchase(&mut self, token: &str, u: UserId, n: u32) -> PurchaseOutcome {
        self.scripts
            .purchase(&mut self.conn, &self.k, token, u, qty(n), &self.clock)
            .await
            .expect("purchase.lua")
    }

    /// A separate connection subscribed to the drop's events channel.
    async fn subscribe(&self) -> PubSub {
        let mut ps = self.client.get_async_pubsub().await.expect("pubsub");
        ps.subscribe(self.k.events()).await.expect("subscribe");
        ps
    }

    /// Every event published so far: publishes a marker and collects messages up to it.
    async fn events(&mut self, ps: &mut PubSub) -> Vec<Json> {
        let _: i64 = self
            .q(redis::cmd("PUBLISH").arg(self.k.events()).arg(MARKER))
            .await;
        let mut out = Vec::new();
        let mut stream = ps.on_message();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await
                .expect("event within 10 s")
                .expect("pubsub stream open");
            let payload: String = msg.get_payload().expect("text payload");
            if payload == MARKER {
                return out;
            }
            out.push(serde_json::from_str(&payload).expect("event is JSON"));
        }
    }

    /// Best-effort removal of every key of the test drop.
    async fn cleanup(mut self) {
        let _: Result<i64, _> = redis::cmd("DEL")
            .arg(self.k.all())
            .query_async(&mut self.conn)
            .await;
    }
}

// ---------------------------------------------------------------------------------------
// join.lua
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn join_without_drop_config_is_no_drop() {
    let mut e = Env::bare().await;
    let u = user();
    assert_eq!(e.join(u).await, JoinOutcome::Rejected(JoinReject::NoDrop));
    assert_eq!(e.peek(u).await, JoinOutcome::Rejected(JoinReject::NoDrop));
    assert_eq!(e.queue_len().await, 0);
    e.cleanup().await;
}

#[tokio::test]
async fn join_closed_drop_is_rejected_even_for_members() {
    let mut e = Env::with(DropCfg::default()).await;
    let member = user();
    assert_eq!(e.join(member).await, queued(0, 0, false));

    e.set_cfg("state", "closed").await;
    assert_eq!(
        e.join(user()).await,
        JoinOutcome::Rejected(JoinReject::Closed)
    );
    assert_eq!(
        e.join(member).await,
        JoinOutcome::Rejected(JoinReject::Closed)
    );
    assert_eq!(
        e.peek(member).await,
        JoinOutcome::Rejected(JoinReject::Closed)
    );
    assert_eq!(e.queue_len().await, 1, "nobody was added");
    e.cleanup().await;
}

#[tokio::test]
async fn join_sold_out_drop_is_rejected() {
    let mut e = Env::with(DropCfg {
        stock: 0,
        ..Default::default()
    })
    .await;
    assert_eq!(
        e.join(user()).await,
        JoinOutcome::Rejected(JoinReject::SoldOut)
    );

    // A missing stock key counts as sold out too.
    let _: i64 = e.q(redis::cmd("DEL").arg(e.k.stock())).await;
    assert_eq!(
        e.join(user()).await,
        JoinOutcome::Rejected(JoinReject::SoldOut)
    );
    assert_eq!(e.queue_len().await, 0);
    e.cleanup().await;
}

#[tokio::test]
async fn join_rejects_a_buyer_at_the_per_user_limit() {
    let mut e = Env::with(DropCfg {
        limit: 2,
        ..Default::default()
    })
    .await;
    let (at_limit, over_limit, below) = (user(), user(), user());
    e.set_bought(at_limit, 2).await;
    e.set_bought(over_limit, 3).await;
    e.set_bought(below, 1).await;

    assert_eq!(
        e.join(at_limit).await,
        JoinOutcome::Rejected(JoinReject::LimitReached)
    );
    assert_eq!(
        e.join(over_limit).await,
        JoinOutcome::Rejected(JoinReject::LimitReached)
    );
    assert_eq!(e.join(below).await, queued(0, 0, false));
    assert_eq!(e.queue_len().await, 1);
    e.cleanup().await;
}

#[tokio::test]
async fn join_before_the_prequeue_opens_is_not_open() {
    let starts_at = T0 + 120_000;
    let mut e = Env::with(DropCfg {
        starts_at,
        prequeue: 60_000,
        ..Default::default()
    })
    .await;
    let u = user();
    let opens_at_ms = starts_at - 60_000;

    assert_eq!(
        e.join(u).await,
        JoinOutcome::Rejected(JoinReject::NotOpen { opens_at_ms })
    );
    e.clock.set(opens_at_ms - 1);
    assert_eq!(
        e.join(u).await,
        JoinOutcome::Rejected(JoinReject::NotOpen { opens_at_ms })
    );
    assert_eq!(e.peek(u).await, JoinOutcome::NotQueued);
    assert_eq!(e.queue_len().await, 0);

    // The pre-queue opens exactly at starts_at - prequeue.
    e.clock.set(opens_at_ms);
    assert_eq!(e.join(u).await, queued(0, 0, true));
    e.cleanup().await;
}

#[tokio::test]
async fn prequeue_join_uses_the_random_score_and_live_joiners_go_behind() {
    let starts_at = T0 + 60_000;
    let mut e = Env::with(DropCfg {
        starts_at,
        prequeue: 60_000,
        ..Default::default()
    })
    .await;
    let (a, b, c) = (user(), user(), user());

    e.clock.set(T0 + 10_000);
    assert_eq!(e.join_r(a, 0.75).await, queued(0, 0, true));
    assert_eq!(e.queue_score(a).await, Some(0.75));
    // A lower random score sorts ahead, whatever the join order.
    assert_eq!(e.join_r(b, 0.25).await, queued(0, 0, true));
    assert_eq!(e.queue_score(b).await, Some(0.25));
    assert_eq!(e.peek(a).await, queued(1, 0, true));
    // Re-joining in the pre-queue keeps the first random score.
    assert_eq!(e.join_r(a, 0.0).await, queued(1, 0, true));
    assert_eq!(e.queue_score(a).await, Some(0.75));
    assert_eq!(e.seq().await, None, "pre-queue joins do not consume seq");

    // After the start: score 1 + seq, behind every pre-queue joiner.
    e.clock.set(starts_at);
    assert_eq!(e.join_r(c, 0.1).await, queued(2, 0, false));
    assert_eq!(e.queue_score(c).await, Some(2.0));
    assert_eq!(e.seq().await, Some(1));
    assert_eq!(e.join(a).await, queued(1, 0, false), "pre flag is off now");

    // Admission follows the queue: the shuffled pre-queue first, then the live joiners.
    let out = e.admit(10).await;
    assert_eq!(admitted_users(&out), ids(&[b, a, c]));
    e.cleanup().await;
}

#[tokio::test]
async fn live_join_is_fifo_and_idempotent() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(3);
    for (i, &u) in us.iter().enumerate() {
        assert_eq!(e.join(u).await, queued(i as u64, 0, false));
        assert_eq!(e.queue_score(u).await, Some(2.0 + i as f64), "score 1+seq");
    }
    assert_eq!(e.seq().await, Some(3));

    // Reconnects keep the place, whatever random value they send, and add nobody.
    e.clock.advance(5_000);
    for (i, &u) in us.iter().enumerate().rev() {
        assert_eq!(e.join_r(u, 0.01).await, queued(i as u64, 0, false));
    }
    assert_eq!(e.queue_len().await, 3);
    assert_eq!(e.seq().await, Some(3), "re-joins do not consume seq");
    e.cleanup().await;
}

#[tokio::test]
async fn peek_reports_the_place_without_inserting() {
    let mut e = Env::with(DropCfg::default()).await;
    let (a, b, stranger) = (user(), user(), user());
    e.join_all(&[a, b]).await;

    assert_eq!(e.peek(stranger).await, JoinOutcome::NotQueued);
    assert_eq!(e.peek(stranger).await, JoinOutcome::NotQueued);
    assert_eq!(e.queue_len().await, 2);
    assert_eq!(e.seq().await, Some(2));
    assert_eq!(e.queue_score(stranger).await, None);

    assert_eq!(e.peek(a).await, queued(0, 0, false));
    assert_eq!(e.peek(b).await, queued(1, 0, false));
    e.cleanup().await;
}

#[tokio::test]
async fn admitted_user_rejoining_gets_the_token_back() {
    let mut e = Env::with(DropCfg::default()).await;
    let (a, b, c) = (user(), user(), user());
    e.join_all(&[a, b]).await;
    let out = e.admit(1).await;
    assert_eq!(admitted_users(&out), ids(&[a]));
    let token = out.admitted[0].token.clone();
    let admitted = JoinOutcome::Admitted {
        token: token.clone(),
        expires_at_ms: T0 + TTL,
    };

    assert_eq!(e.join(a).await, admitted);
    assert_eq!(e.peek(a).await, admitted);
    // Still live one ms before expiry.
    e.clock.set(T0 + TTL - 1);
    assert_eq!(e.join(a).await, admitted);
    assert_eq!(e.queue_score(a).await, None, "not put back in the queue");

    // Everyone else sees the admitted count move.
    assert_eq!(e.join(b).await, queued(0, 1, false));
    assert_eq!(e.join(c).await, queued(1, 1, false));
    e.cleanup().await;
}

#[tokio::test]
async fn admitted_user_with_an_expired_token_frees_the_slot_and_requeues_at_the_back() {
    let mut e = Env::with(DropCfg::default()).await;
    let (a, b, c) = (user(), user(), user());
    e.join_all(&[a, b]).await;
    let token = e.admit(1).await.admitted[0].token.clone();
    e.join_all(&[c]).await;
    assert_eq!(e.holder_token(a).await, Some(token.clone()));

    // Expiry is inclusive: at exactly T0 + ttl the turn is over.
    e.clock.set(T0 + TTL);
    assert_eq!(e.join(a).await, queued(2, 1, false), "back of the queue");
    assert_eq!(e.token_state(&token).await, Some(format!("E|{a}")));
    assert_eq!(e.token_expiry(&token).await, None);
    assert_eq!(e.holder_token(a).await, None);

    let tick = e.admit(0).await;
    assert_eq!(tick.live_holders, 0, "slot freed");
    assert_eq!(tick.expired, 0, "already freed by join");
    assert_eq!(
        e.purchase(&token, a, 1).await,
        rejected(PurchaseReject::TokenExpired)
    );
    e.cleanup().await;
}

// ---------------------------------------------------------------------------------------
// admit.lua
// ---------------------------------------------------------------------------------------

/// Asserts an admit call with `status` admitted nobody and left the queue of `queue_len` alone.
async fn assert_admits_nothing(e: &mut Env, status: &str, queue_len: u64) -> AdmitOutcome {
    let out = e.admit(100).await;
    assert_eq!(out.status, status);
    assert!(out.admitted.is_empty(), "{out:?}");
    assert_eq!(out.queue_len, queue_len);
    assert_eq!(e.queue_len().await, queue_len);
    out
}

#[tokio::test]
async fn admit_without_drop_config_is_no_drop_and_silent() {
    let mut e = Env::bare().await;
    let mut ps = e.subscribe().await;
    let out = e.admit(10).await;
    assert_eq!(
        out,
        AdmitOutcome {
            status: "no_drop".into(),
            admitted: vec![],
            admitted_total: 0,
            queue_len: 0,
            live_holders: 0,
            expired: 0,
        }
    );
    assert_eq!(e.events(&mut ps).await, Vec::<Json>::new());
    e.cleanup().await;
}

#[tokio::test]
async fn admit_while_paused_admits_nobody_but_still_expires_tokens() {
    let mut e = Env::with(DropCfg::default()).await;
    let holder = user();
    let token = e.admit_one(holder).await;
    e.join_all(&users(3)).await;

    e.set_cfg("state", "paused").await;
    let out = assert_admits_nothing(&mut e, "paused", 3).await;
    assert_eq!(out.admitted_total, 1);
    assert_eq!(out.live_holders, 1);

    e.clock.set(T0 + TTL);
    let out = assert_admits_nothing(&mut e, "paused", 3).await;
    assert_eq!(out.expired, 1);
    assert_eq!(out.live_holders, 0);
    assert_eq!(e.token_state(&token).await, Some(format!("E|{holder}")));

    e.set_cfg("state", "active").await;
    assert_eq!(e.admit(100).await.admitted.len(), 3);
    e.cleanup().await;
}

#[tokio::test]
async fn admit_on_a_closed_drop_admits_nobody() {
    let mut e = Env::with(DropCfg::default()).await;
    e.join_all(&users(3)).await;
    e.set_cfg("state", "closed").await;
    let out = assert_admits_nothing(&mut e, "closed", 3).await;
    assert_eq!(out.admitted_total, 0);
    e.cleanup().await;
}

#[tokio::test]
async fn admit_before_the_start_is_not_started() {
    let starts_at = T0 + 60_000;
    let mut e = Env::with(DropCfg {
        starts_at,
        prequeue: 60_000,
        ..Default::default()
    })
    .await;
    e.clock.set(T0 + 1);
    let us = users(3);
    for (i, &u) in us.iter().enumerate() {
        // increasing random scores: pre-queue order == join order here
        assert!(matches!(
            e.join_r(u, 0.1 * (i + 1) as f64).await,
            JoinOutcome::Queued { prequeue: true, .. }
        ));
    }
    e.clock.set(starts_at - 1);
    assert_admits_nothing(&mut e, "not_started", 3).await;

    e.clock.set(starts_at);
    let out = e.admit(100).await;
    assert_eq!(out.status, "ok");
    assert_eq!(admitted_users(&out), ids(&us));
    e.cleanup().await;
}

#[tokio::test]
async fn admit_when_sold_out_admits_nobody() {
    let mut e = Env::with(DropCfg::default()).await;
    e.join_all(&users(3)).await;
    e.set_stock(0).await;
    assert_admits_nothing(&mut e, "sold_out", 3).await;
    e.cleanup().await;
}

#[tokio::test]
async fn admit_pops_the_queue_in_fifo_order_and_numbers_admissions() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(5);
    e.join_all(&us).await;

    let out = e.admit_p(3, "aa11").await;
    assert_eq!(out.status, "ok");
    assert_eq!(
        out.admitted,
        (0..3)
            .map(|i| Admission {
                user: us[i].to_string(),
                token: format!("aa11.{}", i + 1),
                seq: i as u64 + 1,
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(
        (
            out.admitted_total,
            out.queue_len,
            out.live_holders,
            out.expired
        ),
        (3, 2, 3, 0)
    );
    for (i, a) in out.admitted.iter().enumerate() {
        assert_eq!(e.token_state(&a.token).await, Some(format!("L|{}", us[i])));
        assert_eq!(e.token_expiry(&a.token).await, Some((T0 + TTL) as f64));
        assert_eq!(e.holder_token(us[i]).await, Some(a.token.clone()));
        assert_eq!(e.queue_score(us[i]).await, None);
    }

    e.clock.advance(1_000);
    let out = e.admit_p(10, "bb22").await;
    assert_eq!(
        out.admitted,
        vec![
            Admission {
                user: us[3].to_string(),
                token: "bb22.1".into(),
                seq: 4
            },
            Admission {
                user: us[4].to_string(),
                token: "bb22.2".into(),
                seq: 5
            },
        ]
    );
    assert_eq!(
        (out.admitted_total, out.queue_len, out.live_holders),
        (5, 0, 5)
    );
    let total: i64 = e.q(redis::cmd("GET").arg(e.k.admitted())).await;
    assert_eq!(total, 5);
    assert_eq!(
        e.len("XLEN", e.k.admlog()).await,
        2,
        "one admlog entry per batch"
    );

    // An empty queue is fine.
    let out = e.admit(10).await;
    assert_eq!((out.status.as_str(), out.admitted.len()), ("ok", 0));
    e.cleanup().await;
}

#[tokio::test]
async fn admit_honours_max_batch() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(10);
    e.join_all(&us).await;

    let out = e.admit(4).await;
    assert_eq!(admitted_users(&out), ids(&us[..4]));
    assert_eq!(out.queue_len, 6);
    assert!(e.admit(0).await.admitted.is_empty());
    let out = e.admit(1).await;
    assert_eq!(admitted_users(&out), ids(&us[4..5]));
    assert_eq!(out.admitted[0].seq, 5);
    e.cleanup().await;
}

#[tokio::test]
async fn admit_tokens_are_prefix_dot_index() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(3);
    e.join_all(&us).await;
    let prefix = hex_prefix();
    let out = e.admit_p(3, &prefix).await;
    let tokens: Vec<String> = out.admitted.iter().map(|a| a.token.clone()).collect();
    assert_eq!(
        tokens,
        vec![
            format!("{prefix}.1"),
            format!("{prefix}.2"),
            format!("{prefix}.3")
        ]
    );
    for (t, u) in tokens.iter().zip(&us) {
        assert_eq!(e.token_state(t).await, Some(format!("L|{u}")));
    }
    e.cleanup().await;
}

#[tokio::test]
async fn admit_respects_the_holder_cap_and_expiry_frees_slots() {
    let mut e = Env::with(DropCfg {
        max_holders: 2,
        ..Default::default()
    })
    .await;
    let us = users(6);
    e.join_all(&us).await;

    let out = e.admit(10).await;
    assert_eq!(admitted_users(&out), ids(&us[0..2]));
    assert_eq!(out.live_holders, 2);
    let t0 = out.admitted[0].token.clone();
    let t1 = out.admitted[1].token.clone();

    let out = e.admit(10).await;
    assert!(out.admitted.is_empty(), "cap reached");
    assert_eq!((out.live_holders, out.queue_len), (2, 4));

    // A purchase frees its slot.
    e.clock.advance(1_000);
    assert_eq!(e.purchase(&t0, us[0], 1).await, reserved(99, 1));
    let out = e.admit(10).await;
    assert_eq!(admitted_users(&out), ids(&us[2..3]));
    assert_eq!(out.live_holders, 2);

    // us[1]'s token (issued at T0) expires at T0 + ttl; us[2]'s (T0 + 1000) does not yet.
    e.clock.set(T0 + TTL);
    let out = e.admit(10).await;
    assert_eq!(out.expired, 1);
    assert_eq!(admitted_users(&out), ids(&us[3..4]));
    assert_eq!(out.live_holders, 2);
    assert_eq!(e.token_state(&t1).await, Some(format!("E|{}", us[1])));
    assert_eq!(e.holder_token(us[1]).await, None);

    e.clock.set(T0 + 1_000 + TTL);
    let out = e.admit(10).await;
    assert_eq!(out.expired, 1);
    assert_eq!(admitted_users(&out), ids(&us[4..5]));
    assert_eq!(out.live_holders, 2);

    let expired: i64 = e.q(redis::cmd("GET").arg(e.k.expired())).await;
    assert_eq!(expired, 2, "expired counter");
    e.cleanup().await;
}

#[tokio::test]
async fn admit_rate_bucket_bursts_then_refills() {
    // rate 10/s → burst ceil(10/4) = 3, refill 1 per 100 ms.
    let mut e = Env::with(DropCfg {
        rate: 10,
        ..Default::default()
    })
    .await;
    e.join_all(&users(50)).await;

    let steps = [
        (0, 3),
        (0, 0),
        (100, 1),
        (150, 0),
        (200, 1),
        (1_500, 3), // refilled, but never above the burst
        (1_500, 0),
    ];
    for (ms, want) in steps {
        e.clock.set(T0 + ms);
        let got = e.admit(100).await.admitted.len();
        assert_eq!(got, want, "admitted at +{ms} ms");
    }
    e.cleanup().await;
}

#[tokio::test]
async fn admit_rate_window_counts_batches_until_a_full_second_has_passed() {
    // rate 10/s, burst 3: bucket refills fast enough to exceed 10 in a second; the window
    // stops it, and a batch at t still counts at t + 999 ms, but not at t + 1000 ms.
    let mut e = Env::with(DropCfg {
        rate: 10,
        ..Default::default()
    })
    .await;
    e.join_all(&users(50)).await;

    let steps = [
        (0, 3),
        (300, 3),
        (600, 3),
        (700, 1),   // 10 admitted in [0, 700]
        (999, 0),   // the bucket has ~3 again, but the batch at 0 still counts
        (1_300, 3), // batches at 0 and 300 have left the window
    ];
    for (ms, want) in steps {
        e.clock.set(T0 + ms);
        let got = e.admit(100).await.admitted.len();
        assert_eq!(got, want, "admitted at +{ms} ms");
    }
    e.cleanup().await;
}

#[tokio::test]
async fn admit_rate_never_exceeds_the_rate_in_any_second() {
    let rate = 10usize;
    let mut e = Env::with(DropCfg {
        rate: rate as u32,
        ..Default::default()
    })
    .await;
    e.join_all(&users(200)).await;

    // An admission process ticking every 10 ms for 3 s.
    let mut batches: Vec<(i64, usize)> = Vec::new();
    for ms in (0..=3_000).step_by(10) {
        e.clock.set(T0 + ms);
        let out = e.admit(100).await;
        assert_eq!(out.status, "ok");
        if !out.admitted.is_empty() {
            batches.push((ms, out.admitted.len()));
        }
    }

    let max_in_window = batches
        .iter()
        .map(|&(start, _)| {
            batches
                .iter()
                .filter(|&&(t, _)| t >= start && t < start + 1_000)
                .map(|&(_, n)| n)
                .sum::<usize>()
        })
        .max()
        .unwrap();
    assert!(
        max_in_window <= rate,
        "{max_in_window} in one second: {batches:?}"
    );
    // The bucket alone would allow 3 + 9 = 12 in the first second; the window caps it at 10.
    assert_eq!(max_in_window, rate, "{batches:?}");
    let total: usize = batches.iter().map(|&(_, n)| n).sum();
    assert!(total >= 25, "the rate keeps refilling: {total} in 3 s");
    e.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_admitters_share_the_rate_cap() {
    // rate 40 → burst 10: twenty admission processes at the same instant admit 10 in total.
    let mut e = Env::with(DropCfg {
        rate: 40,
        ..Default::default()
    })
    .await;
    e.join_all(&users(100)).await;

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (scripts, mut conn, k, clock) = (
                e.scripts.clone(),
                e.conn.clone(),
                e.k.clone(),
                e.clock.clone(),
            );
            tokio::spawn(async move {
                scripts
                    .admit(&mut conn, &k, &clock, 5, &hex_prefix())
                    .await
                    .expect("admit.lua")
            })
        })
        .collect();
    let mut seqs = BTreeSet::new();
    let mut who = BTreeSet::new();
    for t in futures::future::join_all(tasks).await {
        for a in t.unwrap().admitted {
            assert!(seqs.insert(a.seq), "duplicate seq {}", a.seq);
            assert!(who.insert(a.user), "user admitted twice");
        }
    }
    assert_eq!(seqs, (1..=10).collect::<BTreeSet<u64>>());
    assert_eq!(e.queue_len().await, 90);
    e.cleanup().await;
}

#[tokio::test]
async fn admit_publishes_one_tick_event_per_call() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(3);
    e.join_all(&us).await;
    let mut ps = e.subscribe().await;

    e.admit_p(2, "cc33").await;
    let events = e.events(&mut ps).await;
    assert_eq!(
        events,
        vec![json!({
            "type": "tick",
            "now": T0,
            "status": "ok",
            "admitted_total": 2,
            "queue_len": 1,
            "rate": 1000,
            "live": 2,
            "remaining": 100,
            "admitted": [
                [us[0].to_string(), "cc33.1", T0 + TTL, 1],
                [us[1].to_string(), "cc33.2", T0 + TTL, 2],
            ],
        })]
    );

    // Expired holders are announced; a tick without admissions has no "admitted" field.
    e.clock.set(T0 + TTL);
    e.set_cfg("state", "paused").await;
    e.admit(10).await;
    let events = e.events(&mut ps).await;
    assert_eq!(events.len(), 1);
    let ev = &events[0];
    assert_eq!(ev["type"], "tick");
    assert_eq!(ev["status"], "paused");
    assert_eq!(ev["admitted_total"], 2);
    assert_eq!(ev["expired"], json!([us[0].to_string(), us[1].to_string()]));
    assert!(ev.get("admitted").is_none(), "{ev}");
    e.cleanup().await;
}

// ---------------------------------------------------------------------------------------
// purchase.lua
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn purchase_with_an_unknown_token_is_invalid() {
    let mut e = Env::with(DropCfg::default()).await;
    let u = user();
    e.admit_one(u).await;
    assert_eq!(
        e.purchase("nope.1", u, 1).await,
        rejected(PurchaseReject::InvalidToken)
    );
    assert_eq!(e.stock().await, 100);
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_with_another_accounts_token_keeps_it_for_the_owner() {
    let mut e = Env::with(DropCfg::default()).await;
    let (owner, thief) = (user(), user());
    let token = e.admit_one(owner).await;

    assert_eq!(
        e.purchase(&token, thief, 1).await,
        rejected(PurchaseReject::NotYourToken)
    );
    assert_eq!(e.token_state(&token).await, Some(format!("L|{owner}")));
    assert_eq!(e.holder_token(owner).await, Some(token.clone()));
    assert_eq!(e.bought(thief).await, None);
    assert_eq!(e.purchase(&token, owner, 1).await, reserved(99, 1));
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_token_is_single_use() {
    let mut e = Env::with(DropCfg::default()).await;
    let u = user();
    let token = e.admit_one(u).await;
    assert_eq!(e.purchase(&token, u, 1).await, reserved(99, 1));
    assert_eq!(
        e.purchase(&token, u, 1).await,
        rejected(PurchaseReject::TokenUsed)
    );
    assert_eq!(e.stock().await, 99);
    assert_eq!(e.bought(u).await, Some(1));
    assert_eq!(e.len("XLEN", e.k.orders()).await, 1);
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_with_a_live_but_overdue_token_expires_it() {
    let mut e = Env::with(DropCfg::default()).await;
    let (late, on_time) = (user(), user());
    let tokens = e.admit_users(&[late, on_time]).await;

    e.clock.set(T0 + TTL - 1);
    assert_eq!(e.purchase(&tokens[1], on_time, 1).await, reserved(99, 1));

    // Not yet swept by admit: still "L" in the tokens hash but past its expiry.
    e.clock.set(T0 + TTL);
    assert_eq!(e.token_state(&tokens[0]).await, Some(format!("L|{late}")));
    assert_eq!(
        e.purchase(&tokens[0], late, 1).await,
        rejected(PurchaseReject::TokenExpired)
    );
    assert_eq!(e.token_state(&tokens[0]).await, Some(format!("E|{late}")));
    assert_eq!(e.token_expiry(&tokens[0]).await, None);
    assert_eq!(e.holder_token(late).await, None);

    // Now the already-marked path.
    assert_eq!(
        e.purchase(&tokens[0], late, 1).await,
        rejected(PurchaseReject::TokenExpired)
    );
    assert_eq!(e.stock().await, 99);
    assert_eq!(e.bought(late).await, None);
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_with_a_token_expired_by_admit_is_rejected() {
    let mut e = Env::with(DropCfg::default()).await;
    let u = user();
    let token = e.admit_one(u).await;
    e.clock.set(T0 + TTL + 5_000);
    assert_eq!(e.admit(10).await.expired, 1);
    assert_eq!(e.token_state(&token).await, Some(format!("E|{u}")));

    // Even a clock going back would not revive it: the mark is checked first.
    e.clock.set(T0);
    assert_eq!(
        e.purchase(&token, u, 1).await,
        rejected(PurchaseReject::TokenExpired)
    );
    assert_eq!(e.stock().await, 100);
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_on_a_closed_drop_keeps_the_token() {
    let mut e = Env::with(DropCfg::default()).await;
    let u = user();
    let token = e.admit_one(u).await;
    e.set_cfg("state", "closed").await;
    assert_eq!(
        e.purchase(&token, u, 1).await,
        rejected(PurchaseReject::DropClosed)
    );
    assert_eq!(e.token_state(&token).await, Some(format!("L|{u}")));
    assert_eq!(e.stock().await, 100);

    e.set_cfg("state", "active").await;
    assert_eq!(e.purchase(&token, u, 1).await, reserved(99, 1));
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_at_the_limit_burns_the_token() {
    let mut e = Env::with(DropCfg {
        limit: 2,
        ..Default::default()
    })
    .await;
    let u = user();
    let token = e.admit_one(u).await;
    e.set_bought(u, 2).await;

    assert_eq!(
        e.purchase(&token, u, 1).await,
        rejected(PurchaseReject::LimitReached { allowance: 0 })
    );
    assert_eq!(e.token_state(&token).await, Some(format!("U|{u}")));
    assert_eq!(e.token_expiry(&token).await, None);
    assert_eq!(e.holder_token(u).await, None);
    assert_eq!(
        e.purchase(&token, u, 1).await,
        rejected(PurchaseReject::TokenUsed)
    );
    assert_eq!(e.stock().await, 100);
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_over_the_remaining_allowance_keeps_the_token() {
    let mut e = Env::with(DropCfg {
        limit: 3,
        ..Default::default()
    })
    .await;
    let u = user();
    let token = e.admit_one(u).await;
    e.set_bought(u, 1).await;

    assert_eq!(
        e.purchase(&token, u, 3).await,
        rejected(PurchaseReject::LimitReached { allowance: 2 })
    );
    assert_eq!(e.token_state(&token).await, Some(format!("L|{u}")));
    assert_eq!(e.stock().await, 100);
    assert_eq!(e.purchase(&token, u, 2).await, reserved(98, 3));
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_when_sold_out_burns_the_token() {
    let mut e = Env::with(DropCfg::default()).await;
    let u = user();
    let token = e.admit_one(u).await;
    e.set_stock(0).await;

    assert_eq!(
        e.purchase(&token, u, 1).await,
        rejected(PurchaseReject::SoldOut)
    );
    assert_eq!(e.token_state(&token).await, Some(format!("U|{u}")));
    assert_eq!(e.holder_token(u).await, None);
    assert_eq!(e.stock().await, 0);
    assert_eq!(e.len("XLEN", e.k.orders()).await, 0);
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_of_more_than_the_stock_keeps_the_token() {
    let mut e = Env::with(DropCfg {
        limit: 5,
        stock: 2,
        ..Default::default()
    })
    .await;
    let u = user();
    let token = e.admit_one(u).await;

    assert_eq!(
        e.purchase(&token, u, 3).await,
        rejected(PurchaseReject::InsufficientStock { remaining: 2 })
    );
    assert_eq!(e.token_state(&token).await, Some(format!("L|{u}")));
    assert_eq!(e.stock().await, 2);
    assert_eq!(e.purchase(&token, u, 2).await, reserved(0, 2));
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_reserves_stock_and_enqueues_the_order() {
    let mut e = Env::with(DropCfg {
        limit: 5,
        stock: 10,
        ..Default::default()
    })
    .await;
    let (u, other) = (user(), user());
    let tokens = e.admit_users(&[u, other]).await;
    let token = &tokens[0];
    e.set_bought(u, 1).await;

    e.clock.set(T0 + 1_234);
    assert_eq!(e.purchase(token, u, 2).await, reserved(8, 3));
    assert_eq!(e.stock().await, 8);
    assert_eq!(e.bought(u).await, Some(3));
    assert_eq!(e.token_state(token).await, Some(format!("U|{u}")));
    assert_eq!(e.token_expiry(token).await, None);
    assert_eq!(e.holder_token(u).await, None);
    assert_eq!(e.admit(0).await.live_holders, 1, "slot freed");

    let reservation: Option<String> = e
        .q(redis::cmd("HGET").arg(e.k.reservations()).arg(token))
        .await;
    assert_eq!(reservation, Some(format!("{u}|2|{}", T0 + 1_234)));

    let entries: Vec<(String, HashMap<String, String>)> = e
        .q(redis::cmd("XRANGE").arg(e.k.orders()).arg("-").arg("+"))
        .await;
    assert_eq!(entries.len(), 1);
    let fields = &entries[0].1;
    let want: HashMap<String, String> = [
        ("token", token.clone()),
        ("user", u.to_string()),
        ("qty", "2".into()),
        ("ts", (T0 + 1_234).to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(fields, &want);

    // The other holder's purchase stacks on top.
    assert_eq!(e.purchase(&tokens[1], other, 5).await, reserved(3, 5));
    assert_eq!(e.len("XLEN", e.k.orders()).await, 2);
    assert_eq!(e.len("HLEN", e.k.reservations()).await, 2);
    e.cleanup().await;
}

#[tokio::test]
async fn purchase_of_the_last_unit_publishes_sold_out() {
    let mut e = Env::with(DropCfg {
        limit: 5,
        stock: 3,
        ..Default::default()
    })
    .await;
    let (a, b) = (user(), user());
    let tokens = e.admit_users(&[a, b]).await;
    let mut ps = e.subscribe().await;

    e.clock.set(T0 + 100);
    assert_eq!(e.purchase(&tokens[0], a, 2).await, reserved(1, 2));
    e.clock.set(T0 + 200);
    assert_eq!(e.purchase(&tokens[1], b, 1).await, reserved(0, 1));

    assert_eq!(
        e.events(&mut ps).await,
        vec![json!({"type": "sold_out", "now": T0 + 200})],
        "only the purchase that empties the stock announces it"
    );
    e.cleanup().await;
}

// ---------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_purchases_never_oversell() {
    const STOCK: i64 = 100;
    const BUYERS: usize = 2_000;
    let mut e = Env::with(DropCfg {
        limit: 1,
        rate: 1_000_000,
        max_holders: 1_000_000,
        ttl: 600_000,
        stock: STOCK,
        ..Default::default()
    })
    .await;

    // Everyone joins at once: each gets a distinct place.
    let us = users(BUYERS);
    let joins: Vec<_> = us
        .iter()
        .map(|&u| {
            let (scripts, mut conn, k, clock) = (
                e.scripts.clone(),
                e.conn.clone(),
                e.k.clone(),
                e.clock.clone(),
            );
            tokio::spawn(async move {
                scripts
                    .join(&mut conn, &k, u, &clock, 0.5, false)
                    .await
                    .expect("join.lua")
            })
        })
        .collect();
    let mut ranks = BTreeSet::new();
    for j in futures::future::join_all(joins).await {
        match j.unwrap() {
            JoinOutcome::Queued { rank, .. } => assert!(ranks.insert(rank)),
            other => panic!("join: {other:?}"),
        }
    }
    assert_eq!(ranks, (0..BUYERS as u64).collect::<BTreeSet<_>>());

    let out = e.admit(BUYERS as u32).await;
    assert_eq!(out.admitted.len(), BUYERS);
    let holders: Vec<(UserId, String)> = out
        .admitted
        .into_iter()
        .map(|a| (UserId(a.user.parse().unwrap()), a.token))
        .collect();
    let mut ps = e.subscribe().await;

    // Everyone buys at once over one multiplexed connection.
    let buys: Vec<_> = holders
        .into_iter()
        .map(|(u, token)| {
            let (scripts, mut conn, k, clock) = (
                e.scripts.clone(),
                e.conn.clone(),
                e.k.clone(),
                e.clock.clone(),
            );
            tokio::spawn(async move {
                scripts
                    .purchase(&mut conn, &k, &token, u, qty(1), &clock)
                    .await
                    .expect("purchase.lua")
            })
        })
        .collect();
    let mut remaining = BTreeSet::new();
    let mut sold_out = 0;
    for b in futures::future::join_all(buys).await {
        match b.unwrap() {
            PurchaseOutcome::Reserved {
                remaining: left,
                user_total,
            } => {
                assert!(left >= 0, "stock went negative: {left}");
                assert!(remaining.insert(left), "two purchases saw {left} left");
                assert_eq!(user_total, 1);
            }
            PurchaseOutcome::Rejected(PurchaseReject::SoldOut) => sold_out += 1,
            other => panic!("unexpected purchase outcome {other:?}"),
        }
    }
    assert_eq!(remaining.len(), STOCK as usize, "exactly {STOCK} reserved");
    assert_eq!(remaining, (0..STOCK).collect::<BTreeSet<_>>());
    assert_eq!(sold_out, BUYERS - STOCK as usize);

    assert_eq!(e.stock().await, 0);
    assert_eq!(e.len("XLEN", e.k.orders()).await, STOCK as u64);
    assert_eq!(e.len("HLEN", e.k.reservations()).await, STOCK as u64);
    assert_eq!(e.len("HLEN", e.k.buyers()).await, STOCK as u64);
    assert_eq!(e.len("ZCARD", e.k.expiry()).await, 0, "every token burned");
    assert_eq!(e.len("HLEN", e.k.holders()).await, 0);
    let events = e.events(&mut ps).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "sold_out");
    e.cleanup().await;
}
