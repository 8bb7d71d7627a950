//! What one ETA forecast costs (vq_core::simulate::forecast: the drop model over 10 seeds
//! at each end of the abandonment range (one end when the range is a point),
//! condensed into a table), computed by each api node once per drop per push interval:
//! the four settings of BENCHMARKS.md, section "Simulator vs loadtest", at their start, a drop mid-way with the cap held by
//! abandoned tokens, and a large drop (50,000 units, 200,000 waiting, capped at
//! `MAX_ADMIT` admissions per run). Run: `cargo bench -p loadtest --bench forecast`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use vq_core::simulate::{forecast, State};

fn state(queue: u64, stock: u64, rate: u64, abandon: f64, overbook: f64) -> State {
    State {
        queue,
        stock,
        rate,
        token_ttl_s: 5,
        overbook,
        abandon: (abandon, abandon),
        start_in_s: 0.0,
        sold_out: false,
        level: None,
        tokens: Vec::new(),
    }
}

fn bench(c: &mut Criterion) {
    let mid = State {
        level: Some(0.0),
        tokens: (0..150).map(|i| i as f64 / 30.0).collect(),
        ..state(1000, 100, 150, 0.3, 1.5)
    };
    let cases = [
        ("clean", state(1000, 200, 100, 0.0, 1.5)),
        ("abandon30", state(1500, 300, 150, 0.3, 1.5)),
        ("abandon30-nocap", state(1500, 300, 150, 0.3, 100.0)),
        ("tight-cap", state(1000, 200, 200, 0.2, 1.0)),
        ("abandon30-mid-drop", mid),
        ("large-50k-units", state(200_000, 50_000, 1000, 0.3, 1.5)),
    ];
    for (name, s) in cases {
        c.bench_function(&format!("forecast {name}"), |b| {
            b.iter(|| forecast(black_box(&s)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
