//! What the engine reads from, and an in-memory implementation for tests.

use std::sync::RwLock;

use pharos_model::{Labels, Matcher, Sample};

use crate::error::QueryError;

/// One series with its samples, sorted by timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// Per-series work handed to [`Queryable::select_map`]: the series' result,
/// or `None` to drop it.
pub type SeriesMap<'a> = dyn Fn(Series) -> Result<Option<Series>, QueryError> + Sync + 'a;

pub trait Queryable: Send + Sync {
    /// Series matching all matchers with their samples in [mint, maxt] (ms,
    /// inclusive), samples sorted by t.
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64)
    -> Result<Vec<Series>, QueryError>;

    /// The matching series sorted by labels, each passed through `f`,
    /// keeping what it returns in that order. Storage that reads series on
    /// several threads overrides this to call `f` where each series is
    /// read, so the engine's per-series work (range functions) joins the
    /// read's pass instead of a second pass over every sample.
    fn select_map(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        f: &SeriesMap<'_>,
    ) -> Result<Vec<Series>, QueryError> {
        let mut ss = self.select(matchers, mint, maxt)?;
        sort_by_labels(&mut ss);
        // long inputs are split over threads, each series dropped once
        // mapped (see par_chunks_owned)
        let n = ss.len();
        let work: usize = ss.iter().map(|s| s.samples.len()).sum();
        let parts = crate::engine::par_chunks_owned(ss, work, |chunk| {
            let mut out = Vec::with_capacity(chunk.len());
            for s in chunk {
                if let Some(s) = f(s)? {
                    out.push(s);
                }
            }
            Ok::<_, QueryError>(out)
        });
        let mut out = Vec::with_capacity(n);
        for p in parts {
            out.extend(p?);
        }
        Ok(out)
    }
}

/// Sorts series by labels, unless they already are (storage usually
/// returns them so).
pub(crate) fn sort_by_labels(ss: &mut [Series]) {
    if !ss.windows(2).all(|w| w[0].labels <= w[1].labels) {
        ss.sort_by(|a, b| a.labels.cmp(&b.labels));
    }
}

/// Series kept in memory, sorted by labels; for tests and the script runner.
#[derive(Debug, Default)]
pub struct MemStorage {
    series: RwLock<Vec<Series>>,
}

impl MemStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends samples to a series (creating it); samples are kept sorted and
    /// a sample at an existing timestamp replaces the old one.
    pub fn add(&self, labels: Labels, samples: impl IntoIterator<Item = Sample>) {
        let mut all = self.series.write().unwrap_or_else(|e| e.into_inner());
        let idx = match all.binary_search_by(|s| s.labels.cmp(&labels)) {
            Ok(i) => i,
            Err(i) => {
                all.insert(
                    i,
                    Series {
                        labels,
                        samples: Vec::new(),
                    },
                );
                i
            }
        };
        let s = &mut all[idx].samples;
        for smp in samples {
            match s.binary_search_by(|x| x.t.cmp(&smp.t)) {
                Ok(i) => s[i] = smp,
                Err(i) => s.insert(i, smp),
            }
        }
    }

    pub fn clear(&self) {
        self.series
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl Queryable for MemStorage {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let all = self.series.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for s in all.iter() {
            if !matchers
                .iter()
                .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
            {
                continue;
            }
            let lo = s.samples.partition_point(|x| x.t < mint);
            let hi = s.samples.partition_point(|x| x.t <= maxt);
            if lo < hi {
                out.push(Series {
                    labels: s.labels.clone(),
                    samples: s.samples[lo..hi].to_vec(),
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_filters_by_matcher_and_time() {
        let st = MemStorage::new();
        st.add(
            Labels::from_pairs([("__name__", "a"), ("x", "1")]),
            [
                Sample::new(0, 1.0),
                Sample::new(10, 2.0),
                Sample::new(20, 3.0),
            ],
        );
        st.add(
            Labels::from_pairs([("__name__", "b")]),
            [Sample::new(0, 1.0)],
        );
        let got = st
            .select(&[Matcher::equal("__name__", "a")], 5, 20)
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].samples,
            vec![Sample::new(10, 2.0), Sample::new(20, 3.0)]
        );
        assert!(
            st.select(&[Matcher::equal("x", "2")], 0, 100)
                .unwrap()
                .is_empty()
        );
    }
}
