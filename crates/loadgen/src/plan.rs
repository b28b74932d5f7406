//! Which samples go in which request.
//!
//! Series are dealt round-robin to `shards` connections; each connection
//! sends its series scrape by scrape in `batch`-sized requests, one at a
//! time, so a series' samples always reach the server in time order, as
//! from one Prometheus remote_write shard.

use std::sync::Arc;

use crate::series::SeriesSet;

/// A request: connection `shard`, its `seq`-th request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId {
    pub shard: usize,
    pub seq: u64,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub set: Arc<SeriesSet>,
    pub shards: usize,
    pub batch: usize,
    pub start_ms: i64,
    pub interval_ms: i64,
}

impl Plan {
    pub fn new(
        set: Arc<SeriesSet>,
        shards: usize,
        batch: usize,
        start_ms: i64,
        interval_ms: i64,
    ) -> Self {
        let shards = shards.clamp(1, set_len_or_one(&set));
        Self {
            set,
            shards,
            batch: batch.max(1),
            start_ms,
            interval_ms: interval_ms.max(1),
        }
    }

    /// Series dealt to `shard`.
    pub fn shard_len(&self, shard: usize) -> usize {
        let n = self.set.len();
        n / self.shards + usize::from(shard < n % self.shards)
    }

    /// Requests per scrape for `shard`.
    pub fn batches_per_scrape(&self, shard: usize) -> u64 {
        self.shard_len(shard).div_ceil(self.batch) as u64
    }

    pub fn timestamp(&self, k: u64) -> i64 {
        self.start_ms + k as i64 * self.interval_ms
    }

    /// The scrape a timestamp belongs to, if it is on the grid.
    pub fn scrape_of(&self, t: i64) -> Option<u64> {
        let d = t - self.start_ms;
        (d >= 0 && d % self.interval_ms == 0).then(|| (d / self.interval_ms) as u64)
    }

    /// (scrape, series indexes) of a request.
    pub fn batch(&self, id: BatchId) -> (u64, impl Iterator<Item = usize> + '_) {
        let bps = self.batches_per_scrape(id.shard).max(1);
        let (k, j) = (id.seq / bps, (id.seq % bps) as usize);
        let from = j * self.batch;
        let to = (from + self.batch).min(self.shard_len(id.shard));
        let shards = self.shards;
        (k, (from..to).map(move |p| id.shard + p * shards))
    }

    /// The request that carries series `idx` at scrape `k`.
    pub fn batch_of(&self, idx: usize, k: u64) -> BatchId {
        let shard = idx % self.shards;
        let pos = idx / self.shards;
        BatchId {
            shard,
            seq: k * self.batches_per_scrape(shard) + (pos / self.batch) as u64,
        }
    }

    pub fn samples_in(&self, id: BatchId) -> usize {
        self.batch(id).1.count()
    }
}

fn set_len_or_one(s: &SeriesSet) -> usize {
    s.len().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_in_exactly_one_request_per_scrape() {
        let set = Arc::new(SeriesSet::node_exporter(1000, 1));
        let p = Plan::new(set, 3, 64, 0, 15_000);
        for k in 0..2u64 {
            let mut seen = vec![0u32; 1000];
            for shard in 0..3 {
                let bps = p.batches_per_scrape(shard);
                for seq in k * bps..(k + 1) * bps {
                    let id = BatchId { shard, seq };
                    let (kk, it) = p.batch(id);
                    assert_eq!(kk, k);
                    for idx in it {
                        seen[idx] += 1;
                        assert_eq!(p.batch_of(idx, k), id);
                    }
                }
            }
            assert!(seen.iter().all(|&c| c == 1));
        }
        assert_eq!(p.scrape_of(30_000), Some(2));
        assert_eq!(p.scrape_of(30_001), None);
        assert_eq!(p.scrape_of(-15_000), None);
    }
}
