//! lua/gate.lua: every branch (revoked, no revocation key, all pass, the first or a later
//! bucket refusing, the Redis clock) and its agreement with lua/ratelimit.lua on the
//! buckets they share, under a unique prefix with the manual clock.

use crate::env::{hex_prefix, Env};
use redis::AsyncCommands;
use vq_core::ratelimit::{GateScript, GateVerdict, Rate, RateLimiter, Verdict};
use vq_core::Clock;

/// One cell per second, two at once.
const SLOW: Rate = Rate {
    interval_ms: 1000.0,
    burst: 2,
};
/// A cell every 0.3 ms (200,000 a minute), ten at once: the TAT has decimals.
const FAST: Rate = Rate {
    interval_ms: 0.3,
    burst: 10,
};

fn keys() -> (String, String, String) {
    let p = format!("vqt-{}", hex_prefix());
    (
        format!("{p}:auth:revoked:jti"),
        format!("{p}:rl:by_ip:127.0.0.1"),
        format!("{p}:rl:by_user:u1"),
    )
}

async fn tat(e: &mut Env, key: &str) -> Option<String> {
    e.conn.get(key).await.unwrap()
}

#[tokio::test]
async fn gate_a_revoked_token_takes_no_cell() {
    let mut e = Env::bare().await;
    let (g, (rev, ip, user)) = (GateScript::default(), keys());
    let buckets = [(ip.as_str(), SLOW), (user.as_str(), SLOW)];
    let _: () = e.conn.set(&rev, 1).await.unwrap();
    let v = g.call(&mut e.conn, Some(&rev), &buckets, &e.clock).await;
    assert_eq!(v.unwrap(), GateVerdict::Revoked);
    assert_eq!(GateVerdict::Revoked.retry_after_s(), None);
    assert_eq!(tat(&mut e, &ip).await, None, "no bucket touched");
    assert_eq!(tat(&mut e, &user).await, None);
}

#[tokio::test]
async fn gate_takes_a_cell_of_every_bucket_until_one_is_empty() {
    let mut e = Env::bare().await;
    let (g, (rev, ip, user)) = (GateScript::default(), keys());
    let buckets = [(ip.as_str(), SLOW), (user.as_str(), SLOW)];
    for _ in 0..2 {
        let v = g.call(&mut e.conn, Some(&rev), &buckets, &e.clock).await;
        assert_eq!(v.unwrap(), GateVerdict::Passed);
    }
    let now = e.clock.now_ms();
    assert_eq!(tat(&mut e, &ip).await, Some(format!("{}.000", now + 2000)));
    assert_eq!(
        tat(&mut e, &user).await,
        Some(format!("{}.000", now + 2000))
    );
    let v = g.call(&mut e.conn, Some(&rev), &buckets, &e.clock).await;
    let refused = GateVerdict::Refused {
        bucket: 0,
        retry_after_ms: 1000,
    };
    assert_eq!(v.unwrap(), refused);
    assert_eq!(refused.retry_after_s(), Some(1));
    // The first bucket refused: the second was not touched.
    assert_eq!(
        tat(&mut e, &user).await,
        Some(format!("{}.000", now + 2000))
    );
}

#[tokio::test]
async fn gate_a_later_refusal_keeps_the_cells_taken_before_it() {
    let mut e = Env::bare().await;
    let (g, (_, ip, user)) = (GateScript::default(), keys());
    let rl = RateLimiter::default();
    // The account's bucket is spent (by ratelimit.lua: both scripts share the bucket).
    for _ in 0..2 {
        rl.take(&mut e.conn, &user, SLOW, &e.clock).await.unwrap();
    }
    e.clock.advance(250);
    let buckets = [(ip.as_str(), SLOW), (user.as_str(), SLOW)];
    // No revocation key: the buckets start at KEYS[1].
    let v = g.call(&mut e.conn, None, &buckets, &e.clock).await.unwrap();
    assert_eq!(
        v,
        GateVerdict::Refused {
            bucket: 1,
            retry_after_ms: 750
        }
    );
    // As one-after-another checks would: the address's bucket gave its cell.
    let asked = rl.call(&mut e.conn, &ip, SLOW, 0, &e.clock).await.unwrap();
    assert_eq!(asked, Verdict::Allowed { remaining: 1 });
}

#[tokio::test]
async fn gate_writes_fractional_tats_that_ratelimit_reads_alike() {
    let mut e = Env::bare().await;
    let (g, (_, ip, _)) = (GateScript::default(), keys());
    let now = e.clock.now_ms();
    for _ in 0..10 {
        let v = g.call(&mut e.conn, None, &[(&ip, FAST)], &e.clock).await;
        assert_eq!(v.unwrap(), GateVerdict::Passed);
    }
    // 10 × 0.3 ms, printed with three decimals from integers.
    assert_eq!(tat(&mut e, &ip).await, Some(format!("{}.000", now + 3)));
    let v = g.call(&mut e.conn, None, &[(&ip, FAST)], &e.clock).await;
    assert!(matches!(v.unwrap(), GateVerdict::Refused { bucket: 0, .. }));
    // ratelimit.lua sees the same bucket as full as the gate left it.
    let rl = RateLimiter::default();
    let asked = rl.call(&mut e.conn, &ip, FAST, 0, &e.clock).await.unwrap();
    assert!(matches!(asked, Verdict::Refused { .. }));
    e.clock.advance(1);
    // 1 ms refills three cells (and a third): one for the gate, one for ratelimit.lua,
    // one left.
    let v = g.call(&mut e.conn, None, &[(&ip, FAST)], &e.clock).await;
    assert_eq!(v.unwrap(), GateVerdict::Passed);
    assert_eq!(tat(&mut e, &ip).await, Some(format!("{}.300", now + 3)));
    let left = rl.take(&mut e.conn, &ip, FAST, &e.clock).await.unwrap();
    assert_eq!(left, Verdict::Allowed { remaining: 1 });
    assert_eq!(tat(&mut e, &ip).await, Some(format!("{}.600", now + 3)));
}

#[tokio::test]
async fn gate_reads_the_redis_clock_when_given_none() {
    let mut e = Env::bare().await;
    let (g, (rev, ip, _)) = (GateScript::default(), keys());
    for _ in 0..2 {
        let v = g
            .call(&mut e.conn, Some(&rev), &[(&ip, SLOW)], &Clock::Redis)
            .await;
        assert_eq!(v.unwrap(), GateVerdict::Passed);
    }
    let v = g
        .call(&mut e.conn, Some(&rev), &[(&ip, SLOW)], &Clock::Redis)
        .await;
    match v.unwrap() {
        GateVerdict::Refused {
            bucket: 0,
            retry_after_ms,
        } => {
            assert!((1..=1000).contains(&retry_after_ms), "{retry_after_ms}")
        }
        other => panic!("{other:?}"),
    }
    let ttl: i64 = e.conn.pttl(&ip).await.unwrap();
    assert!((1_000..=2_000).contains(&ttl), "pttl {ttl}");
}
