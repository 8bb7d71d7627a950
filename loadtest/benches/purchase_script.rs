//! Criterion bench of one purchase.lua EVALSHA round trip against the local Redis (the
//! unit the raw ceiling is made of), one call at a time: latency, not throughput.
//! Every timed call burns a token seeded (untimed) just before, so each one takes the full
//! success path: token check and burn, limit, stock decrement, reservation, stream append.
//! Run: `cargo bench -p loadtest --bench purchase_script` (Redis at VQ_REDIS__URL or
//! 127.0.0.1:6379; keys live under a unique prefix and are deleted afterwards).

use criterion::{criterion_group, criterion_main, Criterion};
use std::time::{Duration, Instant};
use vq_core::domain::{DropId, Quantity, UserId};
use vq_core::{Clock, Keys, Scripts, Settings};

fn purchase(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut s = Settings::load(None).unwrap();
    s.redis.prefix = format!(
        "vqbench{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let Ok(mut conn) = rt.block_on(vq_core::store::redis(&s)) else {
        eprintln!("purchase_script: no Redis at the configured URL, bench skipped");
        return;
    };
    let k = Keys::new(&s.redis.prefix).drop(DropId::new(1).unwrap());
    let user = UserId(uuid::Uuid::new_v4());
    let scripts = Scripts::default();
    let one = Quantity::new(1).unwrap();
    rt.block_on(async {
        let _: () = redis::pipe()
            .hset_multiple(k.cfg(), &[("state", "active"), ("limit", "1000000000")])
            .set(k.stock(), 1_000_000_000i64)
            .query_async(&mut conn)
            .await
            .unwrap();
    });
    let mut next = 0u64;
    c.bench_function("redis/purchase_lua_evalsha_round_trip", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let tokens: Vec<String> =
                    (next..next + iters).map(|i| format!("bench.{i}")).collect();
                next += iters;
                let mut seed = redis::pipe();
                for t in &tokens {
                    seed.hset(k.tokens(), t, format!("L|{user}")).ignore();
                    seed.zadd(k.expiry(), t, 4_000_000_000_000i64).ignore();
                }
                let _: () = seed.query_async(&mut conn).await.unwrap();
                let start = Instant::now();
                for t in &tokens {
                    let out = scripts
                        .purchase(&mut conn, &k, t, user, one, &Clock::Redis)
                        .await
                        .unwrap();
                    assert!(
                        matches!(out, vq_core::scripts::PurchaseOutcome::Reserved { .. }),
                        "{out:?}"
                    );
                }
                start.elapsed()
            })
        })
    });
    rt.block_on(async {
        let _: () = redis::cmd("DEL")
            .arg(k.all())
            .arg(k.events())
            .query_async(&mut conn)
            .await
            .unwrap();
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = purchase
}
criterion_main!(benches);
