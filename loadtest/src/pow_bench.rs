//! `loadtest pow`: how long a buyer takes to solve a join challenge, per difficulty, with
//! the same puzzle the server checks (`vq_core::pow`). Random nonces, accounts and drops;
//! the median is what an honest buyer waits, the maximum what an unlucky one does.

use serde::Serialize;
use std::time::Instant;
use vq_core::domain::{DropId, UserId};

#[derive(clap::Args, Debug, Clone)]
pub struct PowArgs {
    /// Difficulties to measure (leading zero bits).
    #[arg(long, value_delimiter = ',', default_value = "12,16,20")]
    pub bits: Vec<u32>,
    /// Challenges solved per difficulty.
    #[arg(long, default_value_t = 30)]
    pub samples: usize,
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

#[derive(Serialize, Debug)]
pub struct PowRow {
    pub bits: u32,
    pub samples: usize,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub max_ms: f64,
    pub median_hashes: u64,
}

pub fn run(a: &PowArgs) -> Vec<PowRow> {
    a.bits
        .iter()
        .map(|b| measure(*b, a.samples.max(1)))
        .collect()
}

fn measure(bits: u32, samples: usize) -> PowRow {
    let mut ms = Vec::with_capacity(samples);
    let mut hashes = Vec::with_capacity(samples);
    for i in 0..samples {
        let nonce = hex_nonce();
        let user = UserId(uuid::Uuid::new_v4());
        let drop = DropId::new(1 + i as i64).expect("positive");
        let t = Instant::now();
        let counter = vq_core::pow::solve(&nonce, user, drop, bits);
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        hashes.push(counter + 1);
    }
    ms.sort_by(f64::total_cmp);
    hashes.sort_unstable();
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    PowRow {
        bits,
        samples,
        median_ms: at(0.5),
        p90_ms: at(0.9),
        max_ms: at(1.0),
        median_hashes: hashes[hashes.len() / 2],
    }
}

fn hex_nonce() -> String {
    rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn print(rows: &[PowRow]) {
    println!("bits  samples  median ms   p90 ms    max ms  median hashes");
    for r in rows {
        println!(
            "{:>4}  {:>7}  {:>9.1}  {:>7.1}  {:>8.1}  {:>13}",
            r.bits, r.samples, r.median_ms, r.p90_ms, r.max_ms, r.median_hashes
        );
    }
}
