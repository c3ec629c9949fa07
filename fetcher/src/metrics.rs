//! Counters the agent exports (e.g. under `/metrics/snapshot` as
//! `containerizer/fetcher/*`).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub fetches: AtomicU64,
    pub failures: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub cache_evictions: AtomicU64,
    pub bytes_fetched: AtomicU64,
    pub bytes_extracted: AtomicU64,
}

/// A point-in-time copy of the fetcher's counters. `fetches` and `failures`
/// count URIs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub fetches: u64,
    pub failures: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_evictions: u64,
    /// Bytes downloaded or copied from their source (cache hits excluded).
    pub bytes_fetched: u64,
    /// Bytes of file contents written by extraction.
    pub bytes_extracted: u64,
    /// Bytes currently held in the cache.
    pub cache_size: u64,
}

impl Metrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, cache_size: u64) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            fetches: get(&self.fetches),
            failures: get(&self.failures),
            cache_hits: get(&self.cache_hits),
            cache_misses: get(&self.cache_misses),
            cache_evictions: get(&self.cache_evictions),
            bytes_fetched: get(&self.bytes_fetched),
            bytes_extracted: get(&self.bytes_extracted),
            cache_size,
        }
    }
}
