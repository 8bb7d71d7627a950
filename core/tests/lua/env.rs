//! Shared harness: a per-test [`Env`] (connection, unique key prefix, manual clock), the
//! [`DropCfg`] written into Redis, and small constructors for users and expected outcomes.

use redis::aio::MultiplexedConnection;
use redis::{FromRedisValue, ToRedisArgs};
use std::sync::Arc;
use uuid::Uuid;
use vq_core::domain::{DropId, Quantity, UserId};
use vq_core::scripts::{AdmitOutcome, JoinOutcome, PurchaseOutcome, PurchaseReject};
use vq_core::{Clock, DropKeys, Keys, Scripts};

/// Start of every test's manual clock (and, by default, the drop start).
pub(crate) const T0: i64 = 1_700_000_000_000;
/// Default token TTL in ms.
pub(crate) const TTL: i64 = 30_000;

/// The fields of the drop config hash the scripts read, plus the stock key.
#[derive(Clone, Debug)]
pub(crate) struct DropCfg {
    pub(crate) state: &'static str,
    pub(crate) starts_at: i64,
    pub(crate) prequeue: i64,
    pub(crate) limit: u32,
    pub(crate) rate: u32,
    pub(crate) max_holders: u32,
    pub(crate) ttl: i64,
    pub(crate) stock: i64,
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
pub(crate) struct Env {
    pub(crate) client: redis::Client,
    pub(crate) conn: MultiplexedConnection,
    pub(crate) k: DropKeys,
    pub(crate) clock: Clock,
    pub(crate) scripts: Arc<Scripts>,
}

fn redis_url() -> String {
    std::env::var("VQ_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub(crate) fn user() -> UserId {
    UserId(Uuid::new_v4())
}

pub(crate) fn users(n: usize) -> Vec<UserId> {
    (0..n).map(|_| user()).collect()
}

pub(crate) fn hex_prefix() -> String {
    Uuid::new_v4().simple().to_string()
}

pub(crate) fn qty(n: u32) -> Quantity {
    Quantity::new(n).expect("valid quantity")
}

pub(crate) fn queued(rank: u64, admitted_total: u64, prequeue: bool) -> JoinOutcome {
    JoinOutcome::Queued {
        rank,
        admitted_total,
        prequeue,
    }
}

pub(crate) fn reserved(remaining: i64, user_total: i64) -> PurchaseOutcome {
    PurchaseOutcome::Reserved {
        remaining,
        user_total,
        replayed: false,
        seq: 0,
    }
}

/// The success a retry of an earlier successful purchase answers.
pub(crate) fn replayed(remaining: i64, user_total: i64) -> PurchaseOutcome {
    PurchaseOutcome::Reserved {
        remaining,
        user_total,
        replayed: true,
        seq: 0,
    }
}

pub(crate) fn rejected(r: PurchaseReject) -> PurchaseOutcome {
    PurchaseOutcome::Rejected(r)
}

pub(crate) fn admitted_users(out: &AdmitOutcome) -> Vec<String> {
    out.admitted.iter().map(|a| a.user.clone()).collect()
}

pub(crate) fn ids(us: &[UserId]) -> Vec<String> {
    us.iter().map(|u| u.to_string()).collect()
}

impl Env {
    /// A fresh key namespace with no drop configured.
    pub(crate) async fn bare() -> Env {
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
    pub(crate) async fn with(cfg: DropCfg) -> Env {
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
    pub(crate) async fn q<T: FromRedisValue>(&mut self, cmd: &mut redis::Cmd) -> T {
        cmd.query_async(&mut self.conn)
            .await
            .expect("redis command")
    }

    pub(crate) async fn set_cfg(&mut self, field: &str, value: impl ToRedisArgs) {
        let _: i64 = self
            .q(redis::cmd("HSET").arg(self.k.cfg()).arg(field).arg(value))
            .await;
    }

    pub(crate) async fn set_stock(&mut self, n: i64) {
        let _: () = self.q(redis::cmd("SET").arg(self.k.stock()).arg(n)).await;
    }

    pub(crate) async fn stock(&mut self) -> i64 {
        self.q(redis::cmd("GET").arg(self.k.stock())).await
    }

    pub(crate) async fn set_bought(&mut self, u: UserId, n: i64) {
        let _: i64 = self
            .q(redis::cmd("HSET")
                .arg(self.k.buyers())
                .arg(u.to_string())
                .arg(n))
            .await;
    }

    pub(crate) async fn bought(&mut self, u: UserId) -> Option<i64> {
        self.q(redis::cmd("HGET").arg(self.k.buyers()).arg(u.to_string()))
            .await
    }

    pub(crate) async fn queue_len(&mut self) -> u64 {
        self.q(redis::cmd("ZCARD").arg(self.k.queue())).await
    }

    pub(crate) async fn queue_score(&mut self, u: UserId) -> Option<f64> {
        self.q(redis::cmd("ZSCORE").arg(self.k.queue()).arg(u.to_string()))
            .await
    }

    pub(crate) async fn seq(&mut self) -> Option<i64> {
        self.q(redis::cmd("GET").arg(self.k.seq())).await
    }

    /// The tokens hash entry: "L|user" (live), "U|user" (used) or "E|user" (expired).
    pub(crate) async fn token_state(&mut self, token: &str) -> Option<String> {
        self.q(redis::cmd("HGET").arg(self.k.tokens()).arg(token))
            .await
    }

    pub(crate) async fn token_expiry(&mut self, token: &str) -> Option<f64> {
        self.q(redis::cmd("ZSCORE").arg(self.k.expiry()).arg(token))
            .await
    }

    pub(crate) async fn holder_token(&mut self, u: UserId) -> Option<String> {
        self.q(redis::cmd("HGET").arg(self.k.holders()).arg(u.to_string()))
            .await
    }

    pub(crate) async fn len(&mut self, cmd: &str, key: String) -> u64 {
        self.q(redis::cmd(cmd).arg(key)).await
    }

    pub(crate) async fn join_r(&mut self, u: UserId, random: f64) -> JoinOutcome {
        self.scripts
            .join(
                &mut self.conn,
                &self.k,
                u,
                &self.clock,
                draw(random, &u),
                false,
            )
            .await
            .expect("join.lua")
    }

    /// The draw list (pseudonym -> score) join.lua keeps of pre-queue joiners.
    pub(crate) async fn draw_list(&mut self) -> Vec<(String, f64)> {
        self.q(redis::cmd("ZRANGE")
            .arg(self.k.draw())
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES"))
            .await
    }

    pub(crate) async fn join(&mut self, u: UserId) -> JoinOutcome {
        self.join_r(u, 0.5).await
    }

    pub(crate) async fn peek(&mut self, u: UserId) -> JoinOutcome {
        self.scripts
            .join(&mut self.conn, &self.k, u, &self.clock, draw(0.5, &u), true)
            .await
            .expect("join.lua (peek)")
    }

    /// Joins every user and checks they land at the back of the live queue in order.
    pub(crate) async fn join_all(&mut self, us: &[UserId]) {
        let before = self.queue_len().await;
        for (i, &u) in us.iter().enumerate() {
            match self.join(u).await {
                JoinOutcome::Queued { rank, .. } => assert_eq!(rank, before + i as u64),
                other => panic!("join of user {i}: {other:?}"),
            }
        }
    }

    pub(crate) async fn admit_p(&mut self, max_batch: u32, prefix: &str) -> AdmitOutcome {
        self.scripts
            .admit(&mut self.conn, &self.k, &self.clock, max_batch, prefix)
            .await
            .expect("admit.lua")
    }

    pub(crate) async fn admit(&mut self, max_batch: u32) -> AdmitOutcome {
        self.admit_p(max_batch, &hex_prefix()).await
    }

    /// Admits exactly the given users (who must be the whole queue) and returns their tokens.
    pub(crate) async fn admit_users(&mut self, us: &[UserId]) -> Vec<String> {
        self.join_all(us).await;
        let out = self.admit(us.len() as u32).await;
        assert_eq!(out.status, "ok");
        assert_eq!(admitted_users(&out), ids(us));
        out.admitted.into_iter().map(|a| a.token).collect()
    }

    pub(crate) async fn admit_one(&mut self, u: UserId) -> String {
        self.admit_users(&[u]).await.remove(0)
    }

    /// The purchase outcome with `seq` checked against the token's name, then zeroed so
    /// tests compare outcomes with `reserved`/`replayed`.
    pub(crate) async fn purchase(&mut self, token: &str, u: UserId, n: u32) -> PurchaseOutcome {
        let mut out = self.purchase_raw(token, u, n).await;
        if let PurchaseOutcome::Reserved { seq, .. } = &mut out {
            let named = token.rsplit_once('.').and_then(|(_, s)| s.parse().ok());
            assert_eq!(*seq, named.unwrap_or(0), "seq of {token}");
            *seq = 0;
        }
        out
    }

    pub(crate) async fn purchase_raw(&mut self, token: &str, u: UserId, n: u32) -> PurchaseOutcome {
        self.scripts
            .purchase(&mut self.conn, &self.k, token, u, qty(n), &self.clock)
            .await
            .expect("purchase.lua")
    }

    /// Best-effort removal of every key of the test drop.
    pub(crate) async fn cleanup(mut self) {
        let _: Result<i64, _> = redis::cmd("DEL")
            .arg(self.k.all())
            .query_async(&mut self.conn)
            .await;
    }
}

/// A test draw: the given score, the pseudonym "p-<user>" (join.lua takes any string).
pub(crate) fn draw(score: f64, u: &UserId) -> vq_core::fairness::Draw<'static> {
    let p: &'static str = Box::leak(format!("p-{u}").into_boxed_str());
    vq_core::fairness::Draw {
        score,
        pseudonym: p,
    }
}
