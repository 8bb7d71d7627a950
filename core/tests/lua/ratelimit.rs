//! lua/ratelimit.lua: every branch (take, refuse, ask, give back, the Redis clock) on
//! buckets under a unique prefix with the manual clock.

use crate::env::{hex_prefix, Env};
use redis::AsyncCommands;
use vq_core::ratelimit::{Rate, RateLimiter, Verdict};
use vq_core::Clock;

/// One cell per second, three at once.
const RATE: Rate = Rate {
    interval_ms: 1000.0,
    burst: 3,
};

fn key() -> String {
    format!("vqt-{}:rl:test:client", hex_prefix())
}

fn allowed(remaining: u32) -> Verdict {
    Verdict::Allowed { remaining }
}

fn refused(retry_after_ms: u64) -> Verdict {
    Verdict::Refused { retry_after_ms }
}

#[tokio::test]
async fn ratelimit_takes_up_to_the_burst_then_refuses_with_the_wait() {
    let mut e = Env::bare().await;
    let (rl, k) = (RateLimiter::default(), key());
    for left in [2, 1, 0] {
        assert_eq!(
            rl.take(&mut e.conn, &k, RATE, &e.clock).await.unwrap(),
            allowed(left)
        );
    }
    assert_eq!(
        rl.take(&mut e.conn, &k, RATE, &e.clock).await.unwrap(),
        refused(1000)
    );
    e.clock.advance(400);
    // A refusal takes nothing: the wait only shrinks with time.
    assert_eq!(
        rl.take(&mut e.conn, &k, RATE, &e.clock).await.unwrap(),
        refused(600)
    );
    assert_eq!(refused(600).retry_after_s(), Some(1));
    e.clock.advance(600);
    assert_eq!(
        rl.take(&mut e.conn, &k, RATE, &e.clock).await.unwrap(),
        allowed(0)
    );
    // The key lives only until the bucket is full again.
    let ttl: i64 = e.conn.pttl(&k).await.unwrap();
    assert!((2_000..=3_000).contains(&ttl), "pttl {ttl}");
    e.clock.advance(3_000);
    assert_eq!(
        rl.take(&mut e.conn, &k, RATE, &e.clock).await.unwrap(),
        allowed(2)
    );
}

#[tokio::test]
async fn ratelimit_cost_above_one_is_all_or_nothing() {
    let mut e = Env::bare().await;
    let (rl, k) = (RateLimiter::default(), key());
    assert_eq!(
        rl.call(&mut e.conn, &k, RATE, 2, &e.clock).await.unwrap(),
        allowed(1)
    );
    assert_eq!(
        rl.call(&mut e.conn, &k, RATE, 2, &e.clock).await.unwrap(),
        refused(1000)
    );
    assert_eq!(
        rl.take(&mut e.conn, &k, RATE, &e.clock).await.unwrap(),
        allowed(0)
    );
}

#[tokio::test]
async fn ratelimit_asking_changes_nothing() {
    let mut e = Env::bare().await;
    let (rl, k) = (RateLimiter::default(), key());
    assert_eq!(
        rl.call(&mut e.conn, &k, RATE, 0, &e.clock).await.unwrap(),
        allowed(3)
    );
    let exists: bool = e.conn.exists(&k).await.unwrap();
    assert!(!exists, "asking writes no key");
    for _ in 0..3 {
        rl.take(&mut e.conn, &k, RATE, &e.clock).await.unwrap();
    }
    assert_eq!(
        rl.call(&mut e.conn, &k, RATE, 0, &e.clock).await.unwrap(),
        refused(1000)
    );
    assert_eq!(
        rl.call(&mut e.conn, &k, RATE, 0, &e.clock).await.unwrap(),
        refused(1000)
    );
}

#[tokio::test]
async fn ratelimit_gives_cells_back_but_never_beyond_full() {
    let mut e = Env::bare().await;
    let (rl, k) = (RateLimiter::default(), key());
    for _ in 0..3 {
        rl.take(&mut e.conn, &k, RATE, &e.clock).await.unwrap();
    }
    assert_eq!(
        rl.give_back(&mut e.conn, &k, RATE, &e.clock).await.unwrap(),
        allowed(1)
    );
    assert_eq!(
        rl.take(&mut e.conn, &k, RATE, &e.clock).await.unwrap(),
        allowed(0)
    );
    for _ in 0..5 {
        rl.give_back(&mut e.conn, &k, RATE, &e.clock).await.unwrap();
    }
    let exists: bool = e.conn.exists(&k).await.unwrap();
    assert!(!exists, "a full bucket needs no key");
    for left in [2, 1, 0] {
        assert_eq!(
            rl.take(&mut e.conn, &k, RATE, &e.clock).await.unwrap(),
            allowed(left)
        );
    }
}

#[tokio::test]
async fn ratelimit_fractional_intervals_and_the_redis_clock() {
    let mut e = Env::bare().await;
    let (rl, k) = (RateLimiter::default(), key());
    // 120 000 per minute is one per 0.5 ms: exact, not rounded to one per ms.
    let fast = Rate::per_minute(vq_core::config::Limit {
        per_minute: 120_000,
        burst: 4,
    })
    .unwrap();
    for left in [3, 2, 1, 0] {
        assert_eq!(
            rl.take(&mut e.conn, &k, fast, &e.clock).await.unwrap(),
            allowed(left)
        );
    }
    e.clock.advance(1);
    assert_eq!(
        rl.take(&mut e.conn, &k, fast, &e.clock).await.unwrap(),
        allowed(1)
    );
    // With the Redis clock (production) the script reads TIME itself.
    let k2 = key();
    let slow = Rate::per_day(2).unwrap();
    for left in [1, 0] {
        assert_eq!(
            rl.take(&mut e.conn, &k2, slow, &Clock::Redis)
                .await
                .unwrap(),
            allowed(left)
        );
    }
    match rl
        .take(&mut e.conn, &k2, slow, &Clock::Redis)
        .await
        .unwrap()
    {
        Verdict::Refused { retry_after_ms } => {
            assert!(
                (43_100_000..=43_200_000).contains(&retry_after_ms),
                "{retry_after_ms}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(Rate::per_day(0).is_none());
    let off = vq_core::config::Limit {
        per_minute: 0,
        burst: 5,
    };
    assert!(Rate::per_minute(off).is_none());
}
