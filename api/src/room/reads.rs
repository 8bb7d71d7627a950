//! The room's exact re-reads, batched per node. Every socket re-reads its place now and
//! then (marking its buyer present) and checks its session is not revoked; at a drop's
//! start every pre-queue socket must read the place the draw gave it, all in the same tick.
//! One `join.lua` peek and one `EXISTS` per socket made that 2 × 19,000 Redis calls on a
//! full node, each with its own key strings, reply parsing and task wake-up. Sockets now
//! hand their ask to one task per node, which gathers what arrives within a short window
//! and answers a whole drop's asks with one `places.lua` call per few hundred buyers plus
//! one pipelined round trip of `EXISTS`. What places.lua does not answer (a token, a stale
//! last-seen, a sold-out or closed drop) the socket reads with join.lua's peek as before.
//!
//! Arrows: sessions → `Reads` → Redis; the task holds no `AppState`, so it keeps no drain
//! open, and it ends when the last sender (the state's) is dropped.

use redis::AsyncCommands;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use vq_core::domain::{DropId, UserId};
use vq_core::{Clock, Keys, RedisConn, Scripts};

/// Asks waiting for the batch task (the rest wait for room in the channel).
const QUEUE: usize = 8192;
/// Buyers per places.lua call: bounds the time one call holds Redis (a few ms).
const PER_CALL: usize = 400;
/// How long the task waits for more asks after the first of a batch.
const LINGER: Duration = Duration::from_millis(20);

/// One socket's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub revoked: bool,
    /// `(rank, admitted_total, prequeue)` for a plainly queued buyer; `None`: read the
    /// place with join.lua's peek.
    pub place: Option<(u64, u64, bool)>,
}

struct Ask {
    drop: DropId,
    user: UserId,
    /// The session to check for revocation, if this ask is the periodic one.
    jti: Option<uuid::Uuid>,
    reply: oneshot::Sender<Answer>,
}

/// The sockets' handle on the node's batch task.
pub struct Reads {
    tx: mpsc::Sender<Ask>,
}

/// What the batch task talks to.
pub struct Deps {
    pub redis: RedisConn,
    pub scripts: std::sync::Arc<Scripts>,
    pub keys: Keys,
    pub clock: Clock,
}

impl Reads {
    /// Starts the node's batch task (on the current runtime).
    pub fn start(deps: Deps) -> Reads {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(deps, rx));
        Reads { tx }
    }

    /// The place of one socket's buyer, and whether the session `jti` (when given) was
    /// revoked; `None` when the batch failed (the socket then reads on its own, as a
    /// missed batch must not close anyone).
    pub async fn ask(&self, drop: DropId, user: UserId, jti: Option<uuid::Uuid>) -> Option<Answer> {
        let (reply, rx) = oneshot::channel();
        let ask = Ask {
            drop,
            user,
            jti,
            reply,
        };
        self.tx.send(ask).await.ok()?;
        rx.await.ok()
    }
}

async fn run(mut d: Deps, mut rx: mpsc::Receiver<Ask>) {
    let mut batch = Vec::with_capacity(QUEUE);
    while rx.recv_many(&mut batch, QUEUE).await > 0 {
        tokio::time::sleep(LINGER).await;
        while batch.len() < QUEUE {
            match rx.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        metrics::histogram!("vq_room_read_batch_size").record(batch.len() as f64);
        if let Err(e) = answer(&mut d, &mut batch).await {
            tracing::warn!(error = %e, "batched room read failed; sockets read alone");
        }
        batch.clear();
    }
}

/// Answers every ask of the batch (asks dropped unanswered read alone).
async fn answer(d: &mut Deps, batch: &mut Vec<Ask>) -> redis::RedisResult<()> {
    let revoked = revoked(d, batch).await?;
    let mut by_drop: HashMap<DropId, Vec<usize>> = HashMap::new();
    for (i, a) in batch.iter().enumerate() {
        by_drop.entry(a.drop).or_default().push(i);
    }
    let mut places: Vec<Option<(u64, u64, bool)>> = vec![None; batch.len()];
    for (drop, idx) in by_drop {
        let k = d.keys.drop(drop);
        for chunk in idx.chunks(PER_CALL) {
            let users: Vec<UserId> = chunk.iter().map(|&i| batch[i].user).collect();
            let p = d.scripts.places(&mut d.redis, &k, &users, &d.clock).await?;
            for (&i, r) in chunk.iter().zip(p.ranks) {
                places[i] = r.map(|rank| (rank, p.admitted_total, p.prequeue));
            }
        }
    }
    for ((a, revoked), place) in batch.drain(..).zip(revoked).zip(places) {
        let _ = a.reply.send(Answer { revoked, place });
    }
    Ok(())
}

/// Per ask, whether its session is revoked: one round trip of `EXISTS` for the asks that
/// carry a session (none when no ask does). The revocation keys live on many slots of a
/// Redis Cluster, where redis-rs refuses a cross-slot pipeline: there the commands go out
/// concurrently on the multiplexed connection, one round trip of latency too.
async fn revoked(d: &mut Deps, batch: &[Ask]) -> redis::RedisResult<Vec<bool>> {
    let keys: Vec<String> = batch
        .iter()
        .filter_map(|a| a.jti.as_ref())
        .map(|jti| d.keys.revoked_jti(jti))
        .collect();
    let found: Vec<bool> = if keys.is_empty() {
        Vec::new()
    } else if d.redis.is_cluster() {
        let redis = &d.redis;
        futures::future::try_join_all(keys.iter().map(|k| {
            let mut conn = redis.clone();
            async move { conn.exists(k).await }
        }))
        .await?
    } else {
        let mut pipe = redis::pipe();
        for k in &keys {
            pipe.exists(k);
        }
        pipe.query_async(&mut d.redis).await?
    };
    let mut found = found.into_iter();
    Ok(batch
        .iter()
        .map(|a| a.jti.is_some() && found.next().unwrap_or(false))
        .collect())
}
