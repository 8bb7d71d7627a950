//! The pre-queue draw is uniform: over many drops (seeds), each of a set of buyers lands
//! in every position about equally often. Deterministic seeds (SHA-256 of the drop number),
//! so the test never flakes; the thresholds are the chi-square 0.999 quantiles.

use sha2::{Digest, Sha256};
use vq_core::fairness::Seed;
use vq_core::order_stats::chi_square_uniform;

const BUYERS: usize = 8;
const DROPS: u64 = 8_000;
/// Chi-square 0.999 quantiles: 7 degrees of freedom (one buyer's row), 49 (the table).
const ROW_LIMIT: f64 = 24.32;
const TABLE_LIMIT: f64 = 85.35;

fn pseudonyms() -> Vec<String> {
    (0..BUYERS)
        .map(|i| hex::encode(&Sha256::digest(format!("buyer {i}"))[..16]))
        .collect()
}

/// counts[b][p]: how often buyer b was drawn at position p.
fn positions() -> Vec<Vec<u64>> {
    let names = pseudonyms();
    let mut counts = vec![vec![0u64; BUYERS]; BUYERS];
    for drop in 0..DROPS {
        let seed = Seed::from_bytes(&Sha256::digest(drop.to_be_bytes())).unwrap();
        for (pos, p) in seed.order(&names).iter().enumerate() {
            let b = names.iter().position(|n| n == p).unwrap();
            counts[b][pos] += 1;
        }
    }
    counts
}

#[test]
fn every_buyer_is_equally_likely_at_every_position() {
    let counts = positions();
    let mut table = 0.0;
    for (b, row) in counts.iter().enumerate() {
        assert_eq!(row.iter().sum::<u64>(), DROPS);
        let x2 = chi_square_uniform(row);
        assert!(x2 < ROW_LIMIT, "buyer {b}: chi-square {x2:.1} over {row:?}");
        table += x2;
    }
    assert!(table < TABLE_LIMIT, "table chi-square {table:.1}");
}

#[test]
fn a_biased_draw_fails_the_same_test() {
    // Sanity of the test itself: a draw that always puts a buyer first (e.g. ordering by
    // pseudonym alone) must be rejected by the same threshold.
    let mut row = vec![0u64; BUYERS];
    row[0] = DROPS;
    assert!(chi_square_uniform(&row) > ROW_LIMIT);
}
