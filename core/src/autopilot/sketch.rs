//! The fleet-wide purchase latency signal: a fixed-bucket histogram per drop and second.
//!
//! Each api node counts its purchases' latencies per drop in memory ([`Recorder::record`]:
//! a mutex and an array increment, no Redis call on the purchase path) and, once a second,
//! adds its counts to the drop's `aplat:<second>` hash in Redis ([`Recorder::take`]; one
//! HINCRBY per non-empty bucket, the key expiring after [`KEEP_S`]). The autopilot merges
//! the last [`WINDOW_S`] seconds of every node and reads the p99 off the buckets. Bounded
//! everywhere: [`BOUNDS_MS`] buckets per drop and second, keys that expire, and a node's
//! memory of at most the drops bought in one second.

use crate::domain::DropId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the buckets in ms; the last bucket holds everything slower.
pub const BOUNDS_MS: [u64; 22] = [
    1, 2, 3, 5, 8, 12, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000,
    10_000,
];
/// Buckets per histogram (the bounds plus the overflow).
pub const BUCKETS: usize = BOUNDS_MS.len() + 1;
/// Seconds of histograms one decision reads (the current, unfinished second excluded).
pub const WINDOW_S: i64 = 3;
/// Seconds a histogram key lives.
pub const KEEP_S: i64 = 10;

/// The bucket of one latency.
pub fn bucket(d: Duration) -> usize {
    let ms = d.as_secs_f64() * 1000.0;
    BOUNDS_MS
        .iter()
        .position(|&b| ms <= b as f64)
        .unwrap_or(BOUNDS_MS.len())
}

/// The q-quantile (0..1) of merged bucket counts, read as its bucket's upper bound (the
/// overflow bucket reads as twice the last bound); `None` without samples.
pub fn quantile(counts: &[u64; BUCKETS], q: f64) -> Option<u64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return Some(BOUNDS_MS.get(i).copied().unwrap_or(BOUNDS_MS[21] * 2));
        }
    }
    None
}

/// Adds one histogram read from Redis (field = bucket index, value = count) into `into`;
/// fields that are no bucket are ignored.
pub fn merge(into: &mut [u64; BUCKETS], fields: &HashMap<String, u64>) {
    for (f, c) in fields {
        if let Some(slot) = f.parse::<usize>().ok().and_then(|i| into.get_mut(i)) {
            *slot += c;
        }
    }
}

/// One node's purchase latencies per drop since the last flush.
#[derive(Default)]
pub struct Recorder(Mutex<HashMap<DropId, [u32; BUCKETS]>>);

impl Recorder {
    pub fn record(&self, drop: DropId, took: Duration) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(drop).or_insert([0; BUCKETS])[bucket(took)] += 1;
    }

    /// Everything recorded since the last call, as (drop, [(bucket, count)]) of the
    /// non-empty buckets; the recorder starts empty again.
    pub fn take(&self) -> Vec<(DropId, Vec<(usize, u32)>)> {
        let m = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        m.into_iter()
            .map(|(d, c)| {
                let nz = c.iter().enumerate().filter(|(_, &n)| n > 0);
                (d, nz.map(|(i, &n)| (i, n)).collect())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_the_bucket_of_their_upper_bound() {
        assert_eq!(bucket(Duration::from_micros(500)), 0);
        assert_eq!(bucket(Duration::from_millis(1)), 0);
        assert_eq!(bucket(Duration::from_micros(1001)), 1);
        assert_eq!(bucket(Duration::from_millis(200)), 12);
        assert_eq!(bucket(Duration::from_millis(201)), 13);
        assert_eq!(bucket(Duration::from_secs(60)), BUCKETS - 1);
    }

    #[test]
    fn the_p99_reads_the_bucket_holding_the_99th_percentile() {
        let mut c = [0u64; BUCKETS];
        assert_eq!(quantile(&c, 0.99), None);
        c[bucket(Duration::from_millis(4))] = 990;
        c[bucket(Duration::from_millis(250))] = 10;
        assert_eq!(quantile(&c, 0.99), Some(5));
        c[bucket(Duration::from_millis(250))] = 11;
        assert_eq!(quantile(&c, 0.99), Some(300));
        c[BUCKETS - 1] = 1000;
        assert_eq!(quantile(&c, 0.99), Some(20_000));
    }

    #[test]
    fn histograms_merge_by_bucket_and_ignore_other_fields() {
        let mut c = [0u64; BUCKETS];
        let f: HashMap<String, u64> = [("3".into(), 2), ("3x".into(), 9), ("99".into(), 9)]
            .into_iter()
            .collect();
        merge(&mut c, &f);
        merge(&mut c, &f);
        assert_eq!(c[3], 4);
        assert_eq!(c.iter().sum::<u64>(), 4);
    }

    #[test]
    fn the_recorder_hands_over_what_it_counted_once() {
        let r = Recorder::default();
        let d = DropId::new(4).unwrap();
        r.record(d, Duration::from_millis(4));
        r.record(d, Duration::from_millis(4));
        r.record(d, Duration::from_millis(400));
        let mut got = r.take();
        assert_eq!(got.len(), 1);
        got[0].1.sort();
        assert_eq!(got[0], (d, vec![(3, 2), (14, 1)]));
        assert!(r.take().is_empty());
    }
}
