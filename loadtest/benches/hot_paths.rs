//! Criterion benches of the pure functions on VitaQueue's hot paths: the hub's per-tick
//! dispatch and fan-out to many registered sockets, the position message, JWT verification
//! (every HTTP request), Redis key formatting (every script call) and the report statistics.
//! Run: `cargo bench -p loadtest --bench hot_paths`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use vq_api::hub::{Hub, Registration};
use vq_api::messages::{Position, ServerMsg};
use vq_core::auth::{JwtKeys, Role};
use vq_core::config::Secret;
use vq_core::domain::{DropId, UserId};
use vq_core::Keys;

/// Sockets per api process the issue targets.
const SOCKETS: usize = 19_000;

fn tick_payload(users: &[UserId], admitted_total: u64) -> Vec<u8> {
    let admitted: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            serde_json::json!([
                u.to_string(),
                format!("tok.{i}"),
                1_800_000_000_000i64,
                i + 1
            ])
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "type": "tick", "now": 1_700_000_000_000i64, "status": "ok",
        "admitted_total": admitted_total, "queue_len": SOCKETS, "rate": 2000,
        "admitted": admitted,
    }))
    .unwrap()
}

fn hub(c: &mut Criterion) {
    let hub = Arc::new(Hub::default());
    let drop = DropId::new(1).unwrap();
    let users: Vec<UserId> = (0..SOCKETS).map(|_| UserId(uuid::Uuid::new_v4())).collect();
    let mut regs: Vec<Registration> = users.iter().map(|u| hub.register(drop, *u, 3)).collect();
    // One 50 ms tick at 2000 admissions/s admits 100 buyers.
    let payload = tick_payload(&users[..100], 100);
    // Sanity check before timing: one dispatch reaches every registered socket.
    hub.dispatch(drop, &payload);
    let heard = regs
        .iter_mut()
        .filter_map(|r| r.events.try_recv().ok())
        .count();
    assert_eq!(
        heard, SOCKETS,
        "the tick payload must parse and reach every socket"
    );
    let mut g = c.benchmark_group("hub");
    g.sample_size(30).measurement_time(Duration::from_secs(4));
    g.bench_function("dispatch_tick_100_admitted_19k_registered", |b| {
        b.iter(|| {
            hub.dispatch(drop, black_box(&payload));
            for r in regs.iter_mut().take(100) {
                while r.direct.try_recv().is_some() {}
            }
        })
    });
    // What one tick costs the node for every waiting socket: receive the broadcast and build
    // the position message (the socket write itself is not included).
    g.throughput(Throughput::Elements(SOCKETS as u64));
    g.bench_function("tick_fanout_positions_19k", |b| {
        b.iter(|| {
            hub.dispatch(drop, &payload);
            let mut bytes = 0;
            for (i, r) in regs.iter_mut().enumerate() {
                while r.direct.try_recv().is_some() {}
                loop {
                    let ev = match r.events.try_recv() {
                        Ok(ev) => ev,
                        // Earlier benches left the ring behind: skip to what is retained.
                        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    };
                    if let vq_api::hub::RoomEvent::Tick {
                        admitted_total,
                        queue_len,
                        rate,
                        ..
                    } = ev
                    {
                        let ahead = (i as u64).saturating_sub(admitted_total);
                        bytes += position(ahead, rate, queue_len).to_json().len();
                    }
                }
            }
            black_box(bytes)
        })
    });
    g.finish();
    c.bench_function("hub/register_and_drop_one", |b| {
        b.iter_batched(
            || UserId(uuid::Uuid::new_v4()),
            |u| drop_reg(hub.register(drop, u, 3)),
            BatchSize::SmallInput,
        )
    });
}

fn position(ahead: u64, rate: u64, queue_len: u64) -> ServerMsg {
    ServerMsg::Position(Position::new(ahead, rate, queue_len, false))
}

fn drop_reg(r: Registration) {
    drop(r)
}

fn small(c: &mut Criterion) {
    c.bench_function("views/position_json_to_string", |b| {
        b.iter(|| position(black_box(12_345), 2000, 19_000).to_json())
    });
    let keys = JwtKeys::new(&Secret::new("bench-secret"));
    let token = keys.issue(UserId(uuid::Uuid::new_v4()), Role::Shopper, 3600);
    c.bench_function("auth/jwt_verify", |b| {
        b.iter(|| keys.verify(black_box(&token)).unwrap())
    });
    let k = Keys::new("vq");
    let id = DropId::new(123_456).unwrap();
    // purchase.lua takes 10 keys, each formatted per call.
    c.bench_function("keys/purchase_key_set", |b| {
        b.iter(|| {
            let d = k.drop(black_box(id));
            [
                d.cfg(),
                d.tokens(),
                d.expiry(),
                d.holders(),
                d.stock(),
                d.buyers(),
                d.orders(),
                d.events(),
                d.reservations(),
                d.expired(),
            ]
        })
    });
    let lat: Vec<f64> = (0..20_000)
        .map(|i| ((i * 7919) % 20_000) as f64 / 10.0)
        .collect();
    c.bench_function("stats/percentile_p99_20k", |b| {
        b.iter_batched(
            || lat.clone(),
            |mut v| loadtest::stats::percentile(&mut v, 0.99),
            BatchSize::LargeInput,
        )
    });
    let ev: Vec<(i64, u64)> = (0..10_000).map(|i| (i * 20, 100)).collect();
    c.bench_function("stats/max_in_window_10k", |b| {
        b.iter(|| loadtest::stats::max_in_window(black_box(&ev), 1000))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = hub, small
}
criterion_main!(benches);
