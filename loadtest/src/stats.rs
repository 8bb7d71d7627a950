//! Small statistics helpers: percentiles and the sliding-window maximum.

/// The q-quantile (0..=1) of `v` by nearest rank; 0 for an empty slice.
pub fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Largest sum of `n` over any window (t - width, t] ending at an event time.
pub fn max_in_window(events: &[(i64, u64)], width: i64) -> u64 {
    let mut ev = events.to_vec();
    ev.sort_by_key(|e| e.0);
    let (mut lo, mut sum, mut best) = (0usize, 0u64, 0u64);
    for hi in 0..ev.len() {
        sum += ev[hi].1;
        while ev[lo].0 <= ev[hi].0 - width {
            sum -= ev[lo].1;
            lo += 1;
        }
        best = best.max(sum);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 0.5), 50.0);
        assert_eq!(percentile(&mut v, 0.99), 99.0);
        assert_eq!(percentile(&mut v, 1.0), 100.0);
        assert_eq!(percentile(&mut [], 0.5), 0.0);
        assert_eq!(percentile(&mut [7.0], 0.99), 7.0);
    }

    #[test]
    fn window_maximum_matches_brute_force() {
        let ev = vec![(0, 3), (500, 4), (999, 2), (1000, 5), (1999, 1), (3000, 9)];
        // (0,1000] excludes t=0: 4+2+5 = 11; [0..999] = 9; (999,1999] = 5+1 = 6
        assert_eq!(max_in_window(&ev, 1000), 11);
        assert_eq!(max_in_window(&[], 1000), 0);
        assert_eq!(max_in_window(&[(5, 2), (5, 3)], 1000), 5);
    }
}
