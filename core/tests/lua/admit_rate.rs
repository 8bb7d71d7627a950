//! admit.lua's rate limit: the token bucket, the one-second window and a cap shared by
//! concurrent admission processes.

use crate::env::*;
use std::collections::BTreeSet;

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
