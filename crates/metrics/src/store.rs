//! One TSDB per tenant under `metrics.local_path/<tenant>/`, as the sink of
//! remote_write and scrapes and the source of queries. With object storage
//! each tenant's blocks live under `metrics/<tenant>/blocks/` there, and
//! local disk holds the WAL, blocks awaiting upload and the block cache.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use pharos_core::TenantId;
use pharos_core::error::{Classify, ErrorClass};
use pharos_model::{Labels, Matcher, Sample};
use pharos_promql::{QueryError, Queryable, Series, SeriesMap};
use pharos_tsdb::{MetricMetadata, MetricType, SelectError, Tsdb, TsdbError, TsdbOptions};

use crate::blocks::BlockStorage;
use crate::error::StoreError;
use crate::ingest::{AppendOutcome, SampleSink, SinkError};
use crate::remote_write::{Metadata, RawBatch};

pub struct TenantStore {
    root: PathBuf,
    opts: TsdbOptions,
    dbs: RwLock<HashMap<TenantId, Arc<Tsdb>>>,
    /// Object storage for blocks; `None` keeps them on local disk.
    blocks: Option<BlockStorage>,
    /// One tenant opened at a time, outside `dbs`' lock: opening replays
    /// a WAL and lists object storage, and must not stall other tenants.
    opening: Mutex<()>,
    /// Whether the last listing of tenants in object storage worked; when
    /// it did not, tenants open without listing their blocks (the next
    /// maintenance does) instead of each waiting for the store's deadline.
    remote_up: AtomicBool,
}

impl TenantStore {
    /// Opens every tenant directory already under `root`, replaying WALs,
    /// so data acknowledged before a crash is back before we serve. Blocks
    /// stay on local disk.
    pub fn open(root: &Path, opts: TsdbOptions) -> Result<Self, StoreError> {
        Self::open_with(root, opts, None)
    }

    /// [`TenantStore::open`] with blocks in object storage: tenants found
    /// only there are opened too, so an empty local disk serves old data.
    /// Must be called off async tasks (e.g. in `spawn_blocking`).
    pub fn open_with(
        root: &Path,
        opts: TsdbOptions,
        blocks: Option<BlockStorage>,
    ) -> Result<Self, StoreError> {
        let io = |op, e| StoreError::Io {
            op,
            path: root.display().to_string(),
            source: e,
        };
        std::fs::create_dir_all(root).map_err(|e| io("create", e))?;
        let store = Self {
            root: root.to_owned(),
            opts,
            dbs: RwLock::new(HashMap::new()),
            blocks,
            opening: Mutex::new(()),
            remote_up: AtomicBool::new(true),
        };
        // one listing first: if the store is down, say so before opening
        // tenants
        let remote_tenants = store.list_remote_tenants();
        let entries = std::fs::read_dir(root).map_err(|e| io("list", e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry.path().is_dir() {
                continue;
            }
            match TenantId::parse(&name) {
                Ok(tenant) => {
                    store.get_or_open(&tenant)?;
                }
                Err(_) => {
                    tracing::warn!(dir = %entry.path().display(), "ignoring directory that is not a tenant id")
                }
            }
        }
        for t in remote_tenants {
            if store.get(&t).is_none() {
                tracing::info!(tenant = %t, "tenant found in object storage");
                store.get_or_open(&t)?;
            }
        }
        Ok(store)
    }

    /// Tenants with blocks in object storage; none when there is no store
    /// or it cannot be listed (logged; retried by [`TenantStore::maintain`]).
    fn list_remote_tenants(&self) -> Vec<TenantId> {
        let Some(blocks) = &self.blocks else {
            return Vec::new();
        };
        match blocks.tenants() {
            Ok(t) => {
                self.remote_up.store(true, Ordering::Relaxed);
                t
            }
            Err(e) => {
                self.remote_up.store(false, Ordering::Relaxed);
                tracing::warn!(error = %e, "cannot list tenants in object storage, retrying at the next maintenance");
                Vec::new()
            }
        }
    }

    /// Opens the tenants that have blocks in object storage but no local
    /// directory; an unreachable store is logged and retried by
    /// [`TenantStore::maintain`].
    fn open_remote_tenants(&self) -> Result<(), TsdbError> {
        for t in self.list_remote_tenants() {
            if self.get(&t).is_none() {
                tracing::info!(tenant = %t, "tenant found in object storage");
                self.get_or_open(&t)?;
            }
        }
        Ok(())
    }

    pub fn get(&self, tenant: &TenantId) -> Option<Arc<Tsdb>> {
        self.dbs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .cloned()
    }

    pub fn get_or_open(&self, tenant: &TenantId) -> Result<Arc<Tsdb>, TsdbError> {
        if let Some(db) = self.get(tenant) {
            return Ok(db);
        }
        let _one = self.opening.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(db) = self.get(tenant) {
            return Ok(db);
        }
        let dir = self.root.join(tenant.as_str());
        let started = std::time::Instant::now();
        let mut opts = self.opts.clone();
        opts.remote = self.blocks.as_ref().map(|b| b.for_tenant(tenant));
        opts.list_remote_at_open &= self.remote_up.load(Ordering::Relaxed);
        let db = Arc::new(Tsdb::open(&dir, opts)?);
        tracing::info!(tenant = %tenant, dir = %dir.display(), elapsed_ms = started.elapsed().as_millis() as u64, series = db.stats().series, blocks = db.blocks().len(), "opened tsdb");
        self.dbs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.clone(), db.clone());
        Ok(db)
    }

    pub fn tenants(&self) -> Vec<(TenantId, Arc<Tsdb>)> {
        self.dbs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(t, d)| (t.clone(), d.clone()))
            .collect()
    }

    /// Cuts blocks, compacts, uploads and applies retention for every
    /// tenant, after opening tenants that appeared in object storage; run
    /// periodically from a blocking task.
    pub fn maintain(&self) {
        if let Err(e) = self.open_remote_tenants() {
            tracing::warn!(error = %e, "cannot open a tenant found in object storage");
        }
        for (tenant, db) in self.tenants() {
            match db.maintain() {
                Ok(r)
                    if !r.cut.is_empty()
                        || !r.compacted.is_empty()
                        || !r.deleted.is_empty()
                        || !r.uploaded.is_empty()
                        || r.upload_failed =>
                {
                    tracing::info!(tenant = %tenant, cut = r.cut.len(), compacted = r.compacted.len(), uploaded = r.uploaded.len(), upload_failed = r.upload_failed, deleted = r.deleted.len(), "tsdb maintenance");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(tenant = %tenant, error = %e, "tsdb maintenance failed"),
            }
        }
    }

    /// Flushes every WAL; called on shutdown.
    pub fn sync(&self) {
        for (tenant, db) in self.tenants() {
            if let Err(e) = db.sync() {
                tracing::warn!(tenant = %tenant, error = %e, "wal sync failed");
            }
        }
    }

    /// Runs [`Self::maintain`] every `every` until the runtime stops.
    pub fn spawn_maintenance(self: &Arc<Self>, every: Duration) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let m = me.clone();
                let _ = tokio::task::spawn_blocking(move || m.maintain()).await;
            }
        });
    }
}

/// What the receiver answers for a TSDB append report.
fn outcome(report: &pharos_tsdb::AppendReport) -> AppendOutcome {
    AppendOutcome {
        samples_written: report.added + report.duplicates,
        rejected: report.errors.iter().map(|e| e.error.to_string()).collect(),
        series_limited: report
            .errors
            .iter()
            .filter(|e| matches!(e.error, TsdbError::SeriesLimit { .. }))
            .count(),
    }
}

fn sink_error(e: &TsdbError) -> SinkError {
    SinkError {
        class: e.class(),
        message: e.to_string(),
    }
}

impl SampleSink for TenantStore {
    fn append(
        &self,
        tenant: &TenantId,
        series: Vec<(Labels, Vec<Sample>)>,
    ) -> Result<AppendOutcome, SinkError> {
        if series.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let db = self.get_or_open(tenant).map_err(|e| sink_error(&e))?;
        let report = db.append(&series).map_err(|e| sink_error(&e))?;
        Ok(outcome(&report))
    }

    fn append_raw(&self, tenant: &TenantId, batch: &RawBatch) -> Result<AppendOutcome, SinkError> {
        if batch.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let db = self.get_or_open(tenant).map_err(|e| sink_error(&e))?;
        // borrowed labels: the TSDB allocates only for series it has not seen
        let series: Vec<_> = batch.iter().collect();
        let report = db.append(&series).map_err(|e| sink_error(&e))?;
        Ok(outcome(&report))
    }

    fn set_metadata(&self, tenant: &TenantId, metadata: &[Metadata]) {
        let Ok(db) = self.get_or_open(tenant) else {
            return;
        };
        for m in metadata {
            let md = MetricMetadata {
                metric_type: MetricType::parse(m.kind),
                help: m.help.clone(),
                unit: m.unit.clone(),
            };
            if let Err(e) = db.set_metadata(&m.metric, md) {
                tracing::warn!(tenant = %tenant, metric = %m.metric, error = %e, "cannot store metadata");
            }
        }
    }
}

/// A tenant's TSDB as the PromQL engine's storage. A tenant with no data
/// yet answers every selection with nothing.
pub struct TsdbQueryable(pub Option<Arc<Tsdb>>);

impl Queryable for TsdbQueryable {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let Some(db) = &self.0 else {
            return Ok(Vec::new());
        };
        let rows = db
            .select(matchers, mint, maxt)
            .map_err(|e| storage_error(&e))?;
        Ok(rows
            .into_iter()
            .map(|(labels, samples)| Series { labels, samples })
            .collect())
    }

    fn select_map(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        f: &SeriesMap<'_>,
    ) -> Result<Vec<Series>, QueryError> {
        let Some(db) = &self.0 else {
            return Ok(Vec::new());
        };
        db.select_map(matchers, mint, maxt, |labels, samples| {
            f(Series { labels, samples })
        })
        .map_err(|e| match e {
            SelectError::Map(e) => e,
            SelectError::Storage(e) => storage_error(&e),
        })
    }
}

/// A storage error as the engine reports it.
fn storage_error(e: &TsdbError) -> QueryError {
    match e.class() {
        ErrorClass::BadRequest => QueryError::BadRequest(e.to_string()),
        _ => QueryError::Storage(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, t: i64, v: f64) -> (Labels, Vec<Sample>) {
        (
            Labels::from_pairs([("__name__", name), ("job", "j")]),
            vec![Sample::new(t, v)],
        )
    }

    #[test]
    fn tenants_are_separate_and_reopen_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let a = TenantId::parse("team-a").unwrap();
        let b = TenantId::parse("team-b").unwrap();
        {
            let store = TenantStore::open(dir.path(), TsdbOptions::default()).unwrap();
            let out = store.append(&a, vec![series("up", 1000, 1.0)]).unwrap();
            assert_eq!(out.samples_written, 1);
            store.append(&b, vec![series("up", 1000, 0.0)]).unwrap();
            store.sync();
        }
        let store = TenantStore::open(dir.path(), TsdbOptions::default()).unwrap();
        let m = [Matcher::equal("__name__", "up")];
        let qa = TsdbQueryable(store.get(&a)).select(&m, 0, 2000).unwrap();
        assert_eq!(qa.len(), 1);
        assert_eq!(qa[0].samples, vec![Sample::new(1000, 1.0)]);
        let qb = TsdbQueryable(store.get(&b)).select(&m, 0, 2000).unwrap();
        assert_eq!(qb[0].samples, vec![Sample::new(1000, 0.0)]);
        assert!(
            TsdbQueryable(store.get(&TenantId::anonymous()))
                .select(&m, 0, 2000)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn conflicting_duplicate_is_rejected_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = TenantStore::open(dir.path(), TsdbOptions::default()).unwrap();
        let t = TenantId::anonymous();
        store.append(&t, vec![series("up", 1000, 1.0)]).unwrap();
        let again = store.append(&t, vec![series("up", 1000, 1.0)]).unwrap();
        assert!(again.rejected.is_empty(), "{again:?}");
        let out = store.append(&t, vec![series("up", 1000, 2.0)]).unwrap();
        assert_eq!(out.rejected.len(), 1);
        assert!(out.rejected[0].contains("up"), "{:?}", out.rejected);
    }
}

mod reader_impl {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use pharos_core::TenantId;
    use pharos_model::{Labels, MatchOp, Matcher};
    use pharos_promql::Queryable;
    use pharos_tsdb::TsdbError;

    use super::{TenantStore, TsdbQueryable};
    use crate::reader::{
        MetadataEntry, MetricsReader, ReadError, TsdbStatus, cardinality_status, truncate,
    };

    fn read_err(e: TsdbError) -> ReadError {
        ReadError::Storage(e.to_string())
    }

    fn all_series() -> Vec<Matcher> {
        // matches every series: each has a metric name
        vec![Matcher::new(MatchOp::Regex, "__name__", ".+").expect("static regex")]
    }

    /// Runs `f` once per matcher set (all series for none) and merges.
    fn union<T: Ord>(
        sets: &[Vec<Matcher>],
        mut f: impl FnMut(&[Matcher]) -> Result<Vec<T>, TsdbError>,
    ) -> Result<Vec<T>, ReadError> {
        let mut out = BTreeSet::new();
        if sets.is_empty() {
            out.extend(f(&[]).map_err(read_err)?);
        }
        for set in sets {
            out.extend(f(set).map_err(read_err)?);
        }
        Ok(out.into_iter().collect())
    }

    impl MetricsReader for TenantStore {
        fn queryable(&self, tenant: &TenantId) -> Result<Arc<dyn Queryable>, ReadError> {
            Ok(Arc::new(TsdbQueryable(self.get(tenant))))
        }

        fn series(
            &self,
            tenant: &TenantId,
            matchers: &[Vec<Matcher>],
            mint: i64,
            maxt: i64,
            limit: Option<usize>,
        ) -> Result<Vec<Labels>, ReadError> {
            let Some(db) = self.get(tenant) else {
                return Ok(Vec::new());
            };
            let all = all_series();
            let out = union(matchers, |m| {
                db.series(if m.is_empty() { &all } else { m }, mint, maxt)
            })?;
            Ok(truncate(out, limit))
        }

        fn label_names(
            &self,
            tenant: &TenantId,
            matchers: &[Vec<Matcher>],
            mint: i64,
            maxt: i64,
            limit: Option<usize>,
        ) -> Result<Vec<String>, ReadError> {
            let Some(db) = self.get(tenant) else {
                return Ok(Vec::new());
            };
            Ok(truncate(
                union(matchers, |m| db.label_names(m, mint, maxt))?,
                limit,
            ))
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
            let Some(db) = self.get(tenant) else {
                return Ok(Vec::new());
            };
            let out: Vec<String> = union(matchers, |m| db.label_values(name, m, mint, maxt))?;
            Ok(truncate(
                out.into_iter().filter(|v| !v.is_empty()).collect(),
                limit,
            ))
        }

        fn metadata(
            &self,
            tenant: &TenantId,
            metric: Option<&str>,
            limit: Option<usize>,
            limit_per_metric: Option<usize>,
        ) -> Result<BTreeMap<String, Vec<MetadataEntry>>, ReadError> {
            let Some(db) = self.get(tenant) else {
                return Ok(BTreeMap::new());
            };
            let mut out = BTreeMap::new();
            for (name, md) in db.metadata(metric) {
                if limit.is_some_and(|l| l > 0 && out.len() >= l) {
                    break;
                }
                let mut entries = vec![MetadataEntry {
                    kind: md.metric_type.as_str().to_owned(),
                    help: md.help,
                    unit: md.unit,
                }];
                if let Some(l) = limit_per_metric.filter(|l| *l > 0) {
                    entries.truncate(l);
                }
                out.insert(name, entries);
            }
            Ok(out)
        }

        fn tsdb_status(&self, tenant: &TenantId, limit: usize) -> Result<TsdbStatus, ReadError> {
            let Some(db) = self.get(tenant) else {
                return Ok(cardinality_status([], i64::MAX, i64::MIN, limit));
            };
            let stats = db.stats();
            let series = db
                .series(&all_series(), i64::MIN, i64::MAX)
                .map_err(read_err)?;
            Ok(cardinality_status(
                &series,
                stats.min_t.unwrap_or(i64::MAX),
                stats.max_t.unwrap_or(i64::MIN),
                limit,
            ))
        }
    }
}
