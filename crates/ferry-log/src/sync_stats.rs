//! How long the writer's `fdatasync` calls take: a lock-free histogram with fixed bucket
//! bounds, cheap enough to update on every sync, read by whoever exports metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The upper bounds of the buckets, in seconds: 50 µs doubling up to about 1.6 s. fdatasync
/// on a local SSD lands in the low buckets; a throttled or networked disk in the high ones.
pub const SYNC_BUCKETS: [f64; 16] = {
    let mut b = [0.0; 16];
    let mut i = 0;
    let mut bound = 0.000_05;
    while i < 16 {
        b[i] = bound;
        bound *= 2.0;
        i += 1;
    }
    b
};

/// The writer's counters. Only the writer thread records; anyone may read.
#[derive(Default)]
pub(crate) struct SyncRecorder {
    count: AtomicU64,
    sum_nanos: AtomicU64,
    /// Non-cumulative: `buckets[i]` counts syncs in `(SYNC_BUCKETS[i-1], SYNC_BUCKETS[i]]`;
    /// the last slot counts those above every bound.
    buckets: [AtomicU64; SYNC_BUCKETS.len() + 1],
}

impl SyncRecorder {
    pub(crate) fn record(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let slot = SYNC_BUCKETS.iter().position(|&b| secs <= b).unwrap_or(SYNC_BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> SyncStats {
        let mut cumulative = 0;
        let buckets = SYNC_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(&bound, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (bound, cumulative)
            })
            .collect();
        SyncStats {
            count: self.count.load(Ordering::Relaxed),
            sum: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)),
            buckets,
        }
    }
}

/// The `fdatasync` calls a log has made since it was opened, as a histogram.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncStats {
    /// How many syncs completed (failed ones included).
    pub count: u64,
    /// Their total time.
    pub sum: Duration,
    /// `(upper bound in seconds, syncs that took at most that long)`, cumulative as in
    /// Prometheus; syncs slower than the last bound count only in `count`.
    pub buckets: Vec<(f64, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let r = SyncRecorder::default();
        r.record(Duration::from_micros(10));
        r.record(Duration::from_micros(70));
        r.record(Duration::from_secs(10));
        let s = r.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets[0], (0.000_05, 1));
        assert_eq!(s.buckets[1].1, 2);
        assert_eq!(s.buckets.last().map(|b| b.1), Some(2));
        assert!(s.sum >= Duration::from_secs(10));
    }
}
