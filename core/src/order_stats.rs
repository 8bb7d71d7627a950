//! Order statistics for the fairness report and its tests: inversions and Kendall tau
//! between two orders, and a chi-square uniformity statistic.
//!
//! Arrows: pure functions; used by the api's fairness report and by tests.

/// Pairs (i < j) with `xs[i] > xs[j]`: how far `xs` is from sorted. Merge sort, so
/// O(n log n) time and O(n) extra memory (the caller bounds n).
pub fn inversions(xs: &[f64]) -> u64 {
    let mut a = xs.to_vec();
    let mut buf = vec![0.0; a.len()];
    sort_count(&mut a, &mut buf)
}

fn sort_count(a: &mut [f64], buf: &mut [f64]) -> u64 {
    let n = a.len();
    if n < 2 {
        return 0;
    }
    let mid = n / 2;
    let mut inv =
        sort_count(&mut a[..mid], &mut buf[..mid]) + sort_count(&mut a[mid..], &mut buf[mid..]);
    let (mut i, mut j, mut k) = (0, mid, 0);
    while i < mid && j < n {
        if a[j] < a[i] {
            // Every element left in the left half is greater than a[j].
            inv += (mid - i) as u64;
            buf[k] = a[j];
            j += 1;
        } else {
            buf[k] = a[i];
            i += 1;
        }
        k += 1;
    }
    buf[k..k + mid - i].copy_from_slice(&a[i..mid]);
    k += mid - i;
    buf[k..k + n - j].copy_from_slice(&a[j..n]);
    a.copy_from_slice(&buf[..n]);
    inv
}

/// Kendall tau (no ties) between the position order and the values' order of `n` items
/// with `inv` inversions: 1 when identical, -1 when reversed; 1 for fewer than two items.
pub fn kendall_tau(n: u64, inv: u64) -> f64 {
    if n < 2 {
        return 1.0;
    }
    let pairs = n as f64 * (n as f64 - 1.0) / 2.0;
    1.0 - 2.0 * inv as f64 / pairs
}

/// Pearson's chi-square statistic of `counts` against equal expected counts.
pub fn chi_square_uniform(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if counts.is_empty() || total == 0 {
        return 0.0;
    }
    let e = total as f64 / counts.len() as f64;
    counts.iter().map(|&c| (c as f64 - e).powi(2) / e).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(xs: &[f64]) -> u64 {
        let mut n = 0;
        for i in 0..xs.len() {
            for j in i + 1..xs.len() {
                n += u64::from(xs[i] > xs[j]);
            }
        }
        n
    }

    #[test]
    fn merge_count_matches_the_quadratic_count() {
        let mut x = 12345u64;
        for len in [0usize, 1, 2, 3, 10, 57, 300] {
            let xs: Vec<f64> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (x >> 40) as f64
                })
                .collect();
            assert_eq!(inversions(&xs), brute(&xs), "len {len}");
        }
    }

    #[test]
    fn tau_is_one_sorted_and_minus_one_reversed() {
        let up: Vec<f64> = (0..100).map(f64::from).collect();
        let down: Vec<f64> = up.iter().rev().copied().collect();
        assert_eq!(kendall_tau(100, inversions(&up)), 1.0);
        assert_eq!(kendall_tau(100, inversions(&down)), -1.0);
        assert_eq!(kendall_tau(1, 0), 1.0);
    }

    #[test]
    fn chi_square_of_equal_counts_is_zero() {
        assert_eq!(chi_square_uniform(&[5, 5, 5]), 0.0);
        assert_eq!(chi_square_uniform(&[10, 0]), 10.0);
    }
}
