//! What the query API reads through, and an in-memory implementation.
//!
//! The trait is shaped for a TSDB with an inverted index: label lookups get
//! the matcher sets and the time range so postings can be intersected
//! without touching samples, and `limit` lets the index stop early.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use pharos_core::error::{Classify, ErrorClass};
use pharos_core::tenant::TenantId;
use pharos_model::{Labels, METRIC_NAME, Matcher, Sample};
use pharos_promql::{MemStorage, Queryable, Series};
use serde::Serialize;

/// Failures of the storage behind the query API.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The storage is still starting (e.g. replaying its WAL).
    #[error("TSDB not ready")]
    NotReady,
    /// The storage failed; the message reaches the client.
    #[error("{0}")]
    Storage(String),
}

impl Classify for ReadError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::NotReady => ErrorClass::Unavailable,
            Self::Storage(_) => ErrorClass::Internal,
        }
    }
}

/// One metadata record of a metric, as `/api/v1/metadata` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct MetadataEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub help: String,
    pub unit: String,
}

/// A `name`/`value` row of the TSDB status lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TsdbStat {
    pub name: String,
    pub value: u64,
}

/// `headStats` of `/api/v1/status/tsdb`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeadStats {
    pub num_series: u64,
    pub num_label_pairs: u64,
    pub chunk_count: i64,
    /// Milliseconds; `i64::MAX` / `i64::MIN` for an empty head, as upstream.
    pub min_time: i64,
    pub max_time: i64,
}

/// The body of `/api/v1/status/tsdb`, field names as Prometheus 2.42.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TsdbStatus {
    pub head_stats: HeadStats,
    pub series_count_by_metric_name: Vec<TsdbStat>,
    pub label_value_count_by_label_name: Vec<TsdbStat>,
    pub memory_in_bytes_by_label_name: Vec<TsdbStat>,
    pub series_count_by_label_value_pair: Vec<TsdbStat>,
}

/// One exemplar of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub labels: Labels,
    pub value: f64,
    /// Milliseconds.
    pub t: i64,
}

/// The exemplars of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct ExemplarSeries {
    pub series_labels: Labels,
    pub exemplars: Vec<Exemplar>,
}

/// The storage the query API reads, per tenant. Methods may block (disk
/// reads); the API calls them off the async runtime.
///
/// `matchers` is an OR of matcher sets (the `match[]` parameters), each set
/// an AND; an empty slice means "every series". Times are inclusive
/// milliseconds. `limit` is a hint the implementation may use to stop
/// early; the API truncates again after merging.
pub trait MetricsReader: Send + Sync + 'static {
    /// What PromQL evaluates over for this tenant.
    fn queryable(&self, tenant: &TenantId) -> Result<Arc<dyn Queryable>, ReadError>;

    /// Label sets of series with data in `[mint, maxt]`, sorted, no
    /// duplicates.
    fn series(
        &self,
        tenant: &TenantId,
        matchers: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
        limit: Option<usize>,
    ) -> Result<Vec<Labels>, ReadError>;

    /// Label names of the selected series, sorted, no duplicates.
    fn label_names(
        &self,
        tenant: &TenantId,
        matchers: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
        limit: Option<usize>,
    ) -> Result<Vec<String>, ReadError>;

    /// Values of label `name` on the selected series, sorted, no duplicates,
    /// no empty value.
    fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        matchers: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
        limit: Option<usize>,
    ) -> Result<Vec<String>, ReadError>;

    /// Metadata by metric name (all metrics when `metric` is `None`): at
    /// most `limit` metrics and `limit_per_metric` entries each.
    fn metadata(
        &self,
        tenant: &TenantId,
        metric: Option<&str>,
        limit: Option<usize>,
        limit_per_metric: Option<usize>,
    ) -> Result<BTreeMap<String, Vec<MetadataEntry>>, ReadError>;

    /// Cardinality statistics with the top `limit` entries of each list.
    fn tsdb_status(&self, tenant: &TenantId, limit: usize) -> Result<TsdbStatus, ReadError>;

    /// Exemplars of series matching any of `selectors`. Storages without
    /// exemplar support keep this default, which is what Prometheus answers
    /// with exemplar storage disabled.
    fn exemplars(
        &self,
        _tenant: &TenantId,
        _selectors: &[Vec<Matcher>],
        _mint: i64,
        _maxt: i64,
    ) -> Result<Vec<ExemplarSeries>, ReadError> {
        Ok(Vec::new())
    }
}

/// Tenants' series in memory, each a [`MemStorage`]; metadata kept beside.
/// For tests and for running the API without a TSDB.
#[derive(Debug, Default)]
pub struct MemReader {
    tenants: RwLock<HashMap<TenantId, Arc<MemStorage>>>,
    metadata: RwLock<HashMap<TenantId, BTreeMap<String, BTreeSet<MetadataEntry>>>>,
}

impl MemReader {
    pub fn new() -> Self {
        Self::default()
    }

    fn storage(&self, tenant: &TenantId) -> Arc<MemStorage> {
        if let Some(s) = self
            .tenants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
        {
            return s.clone();
        }
        self.tenants
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(tenant.clone())
            .or_default()
            .clone()
    }

    /// Appends samples to a tenant's series.
    pub fn add(
        &self,
        tenant: &TenantId,
        labels: Labels,
        samples: impl IntoIterator<Item = Sample>,
    ) {
        self.storage(tenant).add(labels, samples);
    }

    /// Records a metadata entry for a metric.
    pub fn add_metadata(&self, tenant: &TenantId, metric: &str, entry: MetadataEntry) {
        self.metadata
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(tenant.clone())
            .or_default()
            .entry(metric.to_owned())
            .or_default()
            .insert(entry);
    }

    /// Every series of a tenant with samples in range and matching any set.
    fn selected(
        &self,
        tenant: &TenantId,
        matchers: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Series>, ReadError> {
        let st = self.storage(tenant);
        let all: &[Vec<Matcher>] = if matchers.is_empty() {
            &[Vec::new()]
        } else {
            matchers
        };
        let mut out: BTreeMap<Labels, Series> = BTreeMap::new();
        for set in all {
            for s in st
                .select(set, mint, maxt)
                .map_err(|e| ReadError::Storage(e.to_string()))?
            {
                out.entry(s.labels.clone()).or_insert(s);
            }
        }
        Ok(out.into_values().collect())
    }
}

pub(crate) fn truncate<T>(mut v: Vec<T>, limit: Option<usize>) -> Vec<T> {
    if let Some(l) = limit {
        v.truncate(l);
    }
    v
}

/// The `limit` largest entries, largest first; ties by name so answers are
/// stable.
fn top(counts: HashMap<String, u64>, limit: usize) -> Vec<TsdbStat> {
    let mut v: Vec<TsdbStat> = counts
        .into_iter()
        .map(|(name, value)| TsdbStat { name, value })
        .collect();
    v.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.name.cmp(&b.name)));
    v.truncate(limit);
    v
}

impl MetricsReader for MemReader {
    fn queryable(&self, tenant: &TenantId) -> Result<Arc<dyn Queryable>, ReadError> {
        Ok(self.storage(tenant))
    }

    fn series(
        &self,
        tenant: &TenantId,
        matchers: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
        limit: Option<usize>,
    ) -> Result<Vec<Labels>, ReadError> {
        let v = self
            .selected(tenant, matchers, mint, maxt)?
            .into_iter()
            .map(|s| s.labels)
            .collect();
        Ok(truncate(v, limit))
    }

    fn label_names(
        &self,
        tenant: &TenantId,
        matchers: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
        limit: Option<usize>,
    ) -> Result<Vec<String>, ReadError> {
        let names: BTreeSet<String> = self
            .selected(tenant, matchers, mint, maxt)?
            .iter()
            .flat_map(|s| s.labels.iter().map(|l| l.name.clone()))
            .collect();
        Ok(truncate(names.into_iter().collect(), limit))
    }

    fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        matchers: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
        limit: Option<usize>,
    ) -> Result<Vec<String>, ReadError> {
        let values: BTreeSet<String> = self
            .selected(tenant, matchers, mint, maxt)?
            .iter()
            .filter_map(|s| s.labels.get(name).map(str::to_owned))
            .collect();
        Ok(truncate(values.into_iter().collect(), limit))
    }

    fn metadata(
        &self,
        tenant: &TenantId,
        metric: Option<&str>,
        limit: Option<usize>,
        limit_per_metric: Option<usize>,
    ) -> Result<BTreeMap<String, Vec<MetadataEntry>>, ReadError> {
        let all = self.metadata.read().unwrap_or_else(|e| e.into_inner());
        let Some(md) = all.get(tenant) else {
            return Ok(BTreeMap::new());
        };
        Ok(md
            .iter()
            .filter(|(name, _)| metric.is_none_or(|m| m == name.as_str()))
            .take(limit.unwrap_or(usize::MAX))
            .map(|(name, entries)| {
                let v = entries
                    .iter()
                    .take(limit_per_metric.unwrap_or(usize::MAX))
                    .cloned()
                    .collect();
                (name.clone(), v)
            })
            .collect())
    }

    fn tsdb_status(&self, tenant: &TenantId, limit: usize) -> Result<TsdbStatus, ReadError> {
        let series = self.selected(tenant, &[], i64::MIN, i64::MAX)?;
        let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
        for s in &series {
            if let (Some(first), Some(last)) = (s.samples.first(), s.samples.last()) {
                min_time = min_time.min(first.t);
                max_time = max_time.max(last.t);
            }
        }
        Ok(cardinality_status(
            series.iter().map(|s| &s.labels),
            min_time,
            max_time,
            limit,
        ))
    }
}

/// `/api/v1/status/tsdb` computed from the series' label sets: counts by
/// metric name, values and bytes by label name, series by label pair.
/// `min_time`/`max_time` are `i64::MAX`/`i64::MIN` for no data, as upstream.
pub fn cardinality_status<'a>(
    series: impl IntoIterator<Item = &'a Labels>,
    min_time: i64,
    max_time: i64,
    limit: usize,
) -> TsdbStatus {
    let mut num_series = 0u64;
    let mut by_metric: HashMap<String, u64> = HashMap::new();
    let mut values_by_name: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut by_pair: HashMap<String, u64> = HashMap::new();
    for labels in series {
        num_series += 1;
        if let Some(n) = labels.get(METRIC_NAME) {
            *by_metric.entry(n.to_owned()).or_default() += 1;
        }
        for l in labels.iter() {
            values_by_name
                .entry(l.name.clone())
                .or_default()
                .insert(l.value.clone());
            *by_pair
                .entry(format!("{}={}", l.name, l.value))
                .or_default() += 1;
        }
    }
    let num_label_pairs = by_pair.len() as u64;
    let value_counts = values_by_name
        .iter()
        .map(|(n, vs)| (n.clone(), vs.len() as u64))
        .collect();
    let value_bytes = values_by_name
        .iter()
        .map(|(n, vs)| (n.clone(), vs.iter().map(|v| v.len() as u64).sum()))
        .collect();
    TsdbStatus {
        head_stats: HeadStats {
            num_series,
            num_label_pairs,
            // chunk counts are not tracked per series
            chunk_count: 0,
            min_time,
            max_time,
        },
        series_count_by_metric_name: top(by_metric, limit),
        label_value_count_by_label_name: top(value_counts, limit),
        memory_in_bytes_by_label_name: top(value_bytes, limit),
        series_count_by_label_value_pair: top(by_pair, limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_model::MatchOp;

    fn reader() -> (MemReader, TenantId) {
        let r = MemReader::new();
        let t = TenantId::anonymous();
        for (job, inst, v) in [("a", "1", 1.0), ("a", "2", 2.0), ("b", "1", 3.0)] {
            r.add(
                &t,
                Labels::from_pairs([("__name__", "up"), ("job", job), ("instance", inst)]),
                [Sample::new(1000, v)],
            );
        }
        r.add(
            &t,
            Labels::from_pairs([("__name__", "other"), ("zone", "z")]),
            [Sample::new(5000, 1.0)],
        );
        (r, t)
    }

    #[test]
    fn series_union_of_sets_is_sorted_and_deduplicated() {
        let (r, t) = reader();
        let sets = vec![
            vec![Matcher::equal("job", "a")],
            vec![Matcher::equal("instance", "1")],
        ];
        let got = r.series(&t, &sets, i64::MIN, i64::MAX, None).unwrap();
        assert_eq!(got.len(), 3);
        assert!(got.windows(2).all(|w| w[0] < w[1]));
        let got = r.series(&t, &sets, i64::MIN, i64::MAX, Some(1)).unwrap();
        assert_eq!(got.len(), 1);
        // time range excludes samples at t=1000
        assert!(r.series(&t, &sets, 2000, 3000, None).unwrap().is_empty());
    }

    #[test]
    fn labels_and_values_follow_matchers() {
        let (r, t) = reader();
        assert_eq!(
            r.label_names(&t, &[], i64::MIN, i64::MAX, None).unwrap(),
            vec!["__name__", "instance", "job", "zone"]
        );
        let re = Matcher::new(MatchOp::Regex, "job", "b|c").unwrap();
        assert_eq!(
            r.label_values(&t, "instance", &[vec![re]], i64::MIN, i64::MAX, None)
                .unwrap(),
            vec!["1"]
        );
        let other = TenantId::parse("other").unwrap();
        assert!(
            r.label_names(&other, &[], i64::MIN, i64::MAX, None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn tsdb_status_counts_cardinality() {
        let (r, t) = reader();
        let s = r.tsdb_status(&t, 1).unwrap();
        assert_eq!(s.head_stats.num_series, 4);
        assert_eq!((s.head_stats.min_time, s.head_stats.max_time), (1000, 5000));
        assert_eq!(
            s.series_count_by_metric_name,
            vec![TsdbStat {
                name: "up".into(),
                value: 3
            }]
        );
        assert_eq!(s.series_count_by_label_value_pair[0].name, "__name__=up");
        // up, other / a, b / 1, 2 / z
        assert_eq!(s.head_stats.num_label_pairs, 7);
        let empty = r.tsdb_status(&TenantId::parse("x").unwrap(), 10).unwrap();
        assert_eq!(empty.head_stats.min_time, i64::MAX);
    }

    #[test]
    fn metadata_limits() {
        let r = MemReader::new();
        let t = TenantId::anonymous();
        for (m, k) in [("a", "counter"), ("a", "gauge"), ("b", "gauge")] {
            r.add_metadata(
                &t,
                m,
                MetadataEntry {
                    kind: k.into(),
                    help: "h".into(),
                    unit: String::new(),
                },
            );
        }
        assert_eq!(r.metadata(&t, None, None, None).unwrap().len(), 2);
        assert_eq!(r.metadata(&t, None, Some(1), None).unwrap().len(), 1);
        let one = r.metadata(&t, Some("a"), None, Some(1)).unwrap();
        assert_eq!(one["a"].len(), 1);
        assert!(r.metadata(&t, Some("zz"), None, None).unwrap().is_empty());
    }
}
