//! The engine as callers see it: a head fed through the WAL.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pharos_model::{LabelSet, Labels, Matcher, Sample};

use crate::block::{Block, BlockMeta, compact, write_block};
use crate::catalog::{Catalog, Entry};
use crate::error::TsdbError;
use crate::head::{Head, HeadOptions, HeadStats, MetricMetadata};
use crate::index::SeriesRef;
use crate::remote::{RemoteBlocks, RemoteStats};
use crate::wal::{ReplayStats, Wal, WalOptions, WalRecord};

/// An error out of [`Tsdb::select_map`]: the storage's own, or the one the
/// caller's function returned.
#[derive(Debug)]
pub enum SelectError<E> {
    Storage(TsdbError),
    Map(E),
}

#[derive(Debug, Clone)]
pub struct TsdbOptions {
    /// Also sets the block range: blocks cover `head.chunk_range`.
    pub head: HeadOptions,
    pub wal: WalOptions,
    /// Blocks whose newest sample is older than this, counted back from
    /// the newest data, are deleted by [`Tsdb::maintain`]. `None` keeps
    /// everything.
    pub retention: Option<Duration>,
    /// Past this many bytes of blocks in total, the oldest blocks are
    /// deleted by [`Tsdb::maintain`]. `None` (or 0) keeps everything.
    pub retention_size: Option<u64>,
    /// Object storage for blocks. With it, blocks are uploaded once cut or
    /// merged and their local copies become a cache of `cache_size`
    /// bytes; without it every block stays on local disk.
    pub remote: Option<Arc<dyn RemoteBlocks>>,
    /// Bytes of uploaded blocks kept on local disk, least recently queried
    /// evicted first. Only used with `remote`.
    pub cache_size: u64,
    /// List `remote` in [`Tsdb::open`] (else the first [`Tsdb::maintain`]
    /// does). Turned off when the store is known to be down, so opening
    /// does not wait for its deadline.
    pub list_remote_at_open: bool,
}

/// Default [`TsdbOptions::cache_size`]: 1 GiB.
pub const DEFAULT_CACHE_SIZE: u64 = 1 << 30;

impl Default for TsdbOptions {
    fn default() -> Self {
        Self {
            head: HeadOptions::default(),
            wal: WalOptions::default(),
            retention: Some(Duration::from_secs(15 * 24 * 3600)),
            retention_size: None,
            remote: None,
            cache_size: DEFAULT_CACHE_SIZE,
            list_remote_at_open: true,
        }
    }
}

/// What one [`Tsdb::maintain`] pass did.
#[derive(Debug, Default)]
pub struct MaintainReport {
    /// Blocks cut from the head.
    pub cut: Vec<BlockMeta>,
    /// Blocks produced by merging smaller ones.
    pub compacted: Vec<BlockMeta>,
    /// ULIDs of blocks deleted (merged away or past retention).
    pub deleted: Vec<String>,
    /// ULIDs of blocks uploaded to object storage.
    pub uploaded: Vec<String>,
    /// An upload failed: what is left stays local for the next pass.
    pub upload_failed: bool,
}

/// A rejected series (or some of its samples) from one append batch.
#[derive(Debug)]
pub struct SeriesError {
    /// Position of the series in the batch.
    pub index: usize,
    pub error: TsdbError,
}

/// What an append did. Samples not named in `errors` were stored and
/// logged; a caller answers remote_write with 400 and the first error's
/// text when `errors` is non-empty, as Prometheus does, while the accepted
/// samples stay.
#[derive(Debug, Default)]
pub struct AppendReport {
    /// Samples newly stored.
    pub added: usize,
    /// Samples that were already stored with the same value (retries).
    pub duplicates: usize,
    /// Series created by this append.
    pub new_series: usize,
    pub errors: Vec<SeriesError>,
}

impl AppendReport {
    pub fn first_error(&self) -> Option<&TsdbError> {
        self.errors.first().map(|e| &e.error)
    }
}

pub struct Tsdb {
    dir: PathBuf,
    head: Head,
    wal: Mutex<Wal>,
    /// Group commit: the highest WAL position known to be fsynced. Held
    /// while fsyncing so writers queue here, not on the WAL itself, and
    /// the next fsync covers everyone who queued.
    synced: Mutex<u64>,
    replay: ReplayStats,
    opts: TsdbOptions,
    /// Blocks, local and remote, sorted by min time. Queries take open
    /// readers, so a block being deleted stays readable (its files are
    /// open) until they finish.
    catalog: Catalog,
    /// One maintenance pass at a time.
    maintenance: Mutex<()>,
}

fn blocks_dir(dir: &Path) -> PathBuf {
    dir.join("blocks")
}

/// Merges sample lists of one series from several sources: sorted by
/// time, one sample per timestamp (the last source's).
fn merge_samples(mut s: Vec<Sample>) -> Vec<Sample> {
    s.sort_by_key(|x| x.t);
    let mut out: Vec<Sample> = Vec::with_capacity(s.len());
    for x in s {
        match out.last_mut() {
            Some(last) if last.t == x.t => *last = x,
            _ => out.push(x),
        }
    }
    out
}

fn lock(m: &Mutex<Wal>) -> MutexGuard<'_, Wal> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Tsdb {
    /// Opens (or creates) a database in `dir`, rebuilding the head from the
    /// WAL in `dir/wal`. With object storage, its blocks are listed too
    /// (an unreachable store is retried by [`Tsdb::maintain`]).
    pub fn open(dir: &Path, opts: TsdbOptions) -> Result<Self, TsdbError> {
        let wal_dir = dir.join("wal");
        std::fs::create_dir_all(&wal_dir).map_err(|e| TsdbError::io("create dir", &wal_dir, e))?;
        let catalog = Catalog::open(
            &blocks_dir(dir),
            opts.remote.clone(),
            opts.cache_size,
            opts.list_remote_at_open,
        )?;
        let head = Head::new(opts.head.clone());
        // data up to the newest block is in blocks; WAL samples before it
        // (left by a crash between cutting a block and checkpointing) are
        // skipped, and late samples there are refused
        if let Some(end) = catalog.metas().iter().map(|m| m.max_time).max() {
            head.set_min_valid_t(end);
        }
        let mut unknown_refs = 0usize;
        let mut rejected = 0usize;
        let started = std::time::Instant::now();
        let replay = Wal::replay(&wal_dir, |rec| match rec {
            WalRecord::Series(s) => {
                for (r, l) in s {
                    head.restore_series(r, &l);
                }
            }
            WalRecord::Samples(s) => {
                let mut buf: Vec<Sample> = Vec::new();
                // runs of one series go in with one lock
                for run in s.chunk_by(|a, b| a.0 == b.0) {
                    buf.clear();
                    buf.extend(run.iter().map(|&(_, t, v)| Sample::new(t, v)));
                    match head.append_series(run[0].0, &buf, true, |_, _| {}) {
                        Ok(_) => {}
                        Err(None) => unknown_refs += run.len(),
                        Err(Some(_)) => rejected += 1,
                    }
                }
            }
            WalRecord::Metadata(m) => {
                for (name, md) in m {
                    head.set_metadata(&name, md);
                }
            }
        })?;
        if unknown_refs > 0 || rejected > 0 {
            tracing::warn!(
                unknown_refs,
                rejected,
                "wal replay skipped samples of unknown series, already in blocks, or conflicting"
            );
        }
        let st = head.stats();
        tracing::info!(
            dir = %dir.display(),
            records = replay.records,
            series = st.series,
            samples = st.samples,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "wal replayed"
        );
        let wal = Wal::open(&wal_dir, opts.wal.clone())?;
        Ok(Self {
            dir: dir.to_owned(),
            head,
            wal: Mutex::new(wal),
            synced: Mutex::new(0),
            replay,
            opts,
            catalog,
            maintenance: Mutex::new(()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    /// What replay found at open.
    pub fn replay_stats(&self) -> ReplayStats {
        self.replay
    }

    /// Appends a batch. Samples go into the head and then into the WAL; the
    /// call returns after the WAL append (and fsync, per policy). Bad
    /// samples are reported per series and do not stop the rest. An `Err`
    /// means the WAL could not be written: nothing in the batch may be
    /// treated as durable, and retrying the whole batch is safe because
    /// identical samples are accepted as duplicates (and logged again).
    ///
    /// Readers can see samples of a batch before its WAL append finished.
    /// How far in the future a timestamp may be is the caller's policy.
    pub fn append<L: LabelSet, S: AsRef<[Sample]>>(
        &self,
        batch: &[(L, S)],
    ) -> Result<AppendReport, TsdbError> {
        let mut report = AppendReport::default();
        let labels: Vec<&L> = batch.iter().map(|(l, _)| l).collect();
        let mut refs = self.head.resolve(&labels);
        // only series the head does not know yet are materialized: a known
        // series costs no allocation here
        let missing: Vec<usize> = (0..refs.len()).filter(|&i| refs[i].is_none()).collect();
        if !missing.is_empty() {
            let owned: Vec<(Labels, Vec<Sample>)> = missing
                .iter()
                .map(|&i| (batch[i].0.to_labels(), Vec::new()))
                .collect();
            let mut got = vec![None; owned.len()];
            let mut sub = AppendReport::default();
            self.create_missing(&owned, &mut got, &mut sub)?;
            report.new_series += sub.new_series;
            report
                .errors
                .extend(sub.errors.into_iter().map(|e| SeriesError {
                    index: missing[e.index],
                    error: e.error,
                }));
            for (&i, r) in missing.iter().zip(got) {
                refs[i] = r;
            }
        }
        let mut logged: Vec<(SeriesRef, i64, f64)> =
            Vec::with_capacity(batch.iter().map(|(_, s)| s.as_ref().len()).sum());
        let known: Vec<usize> = (0..refs.len()).filter(|&i| refs[i].is_some()).collect();
        let work: Vec<(SeriesRef, &[Sample])> = known
            .iter()
            .map(|&i| (refs[i].unwrap_or_default(), batch[i].1.as_ref()))
            .collect();
        let results = self
            .head
            .append_many(&work, |r, t, v| logged.push((r, t, v)));
        for ((&i, &(_, samples)), mut res) in known.iter().zip(&work).zip(results) {
            let l = &batch[i].0;
            if let Err(None) = res {
                // dropped by a concurrent truncation between lookup and
                // append: create it again
                let one_batch = [(l.to_labels(), Vec::new())];
                let mut one = [None];
                let mut sub = AppendReport::default();
                self.create_missing(&one_batch, &mut one, &mut sub)?;
                report.new_series += sub.new_series;
                report
                    .errors
                    .extend(sub.errors.into_iter().map(|e| SeriesError {
                        index: i,
                        error: e.error,
                    }));
                let Some(sref) = one[0] else { continue };
                res = self.head.append_series(sref, samples, false, |t, v| {
                    logged.push((sref, t, v));
                });
            }
            match res {
                Ok(added) => {
                    report.added += added;
                    report.duplicates += samples.len() - added;
                }
                Err(e) => {
                    let error = e.unwrap_or_else(|| TsdbError::InvalidLabels {
                        series: l.to_labels().to_string(),
                        reason: "series vanished during append".into(),
                    });
                    report.errors.push(SeriesError { index: i, error });
                }
            }
        }
        if !logged.is_empty() {
            let pos = {
                let mut wal = lock(&self.wal);
                wal.log_samples(&logged)?;
                wal.commit_deferred()?
            };
            if let Some(pos) = pos {
                self.wait_synced(pos)?;
            }
        }
        Ok(report)
    }

    /// Returns once the WAL is fsynced at least up to `pos`, doing the
    /// fsync unless another writer's already covered it.
    fn wait_synced(&self, pos: u64) -> Result<(), TsdbError> {
        let mut synced = self
            .synced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *synced >= pos {
            return Ok(());
        }
        let (file, upto) = lock(&self.wal).sync_target()?;
        let res = file.sync_data();
        lock(&self.wal).synced(upto, res)?;
        *synced = upto;
        Ok(())
    }

    /// Creates the series that `refs` lacks, logging them first; series with
    /// invalid labels get an error in the report and stay `None`.
    fn create_missing(
        &self,
        batch: &[(Labels, Vec<Sample>)],
        refs: &mut [Option<SeriesRef>],
        report: &mut AppendReport,
    ) -> Result<(), TsdbError> {
        let mut want: Vec<usize> = Vec::new();
        for (i, r) in refs.iter().enumerate() {
            if r.is_some() {
                continue;
            }
            let l = &batch[i].0;
            if l.is_empty() || l.iter().any(|x| x.name.is_empty()) {
                report.errors.push(SeriesError {
                    index: i,
                    error: TsdbError::InvalidLabels {
                        series: l.to_string(),
                        reason: "a series needs at least one label, all with names".into(),
                    },
                });
                continue;
            }
            want.push(i);
        }
        if want.is_empty() {
            return Ok(());
        }
        let labels: Vec<&Labels> = want.iter().map(|&i| &batch[i].0).collect();
        let mut created = 0;
        let got = self.head.get_or_create(&labels, |new| {
            created = new.len();
            let mut wal = lock(&self.wal);
            wal.log_series(new)
        })?;
        report.new_series += created;
        for (&i, r) in want.iter().zip(got) {
            refs[i] = r;
            if r.is_none() {
                report.errors.push(SeriesError {
                    index: i,
                    error: TsdbError::SeriesLimit {
                        limit: self.head.options().max_series,
                        series: batch[i].0.to_string(),
                    },
                });
            }
        }
        Ok(())
    }

    /// Records metric metadata (TYPE/HELP/UNIT), logging it when it changed.
    pub fn set_metadata(&self, metric: &str, md: MetricMetadata) -> Result<(), TsdbError> {
        if self.head.set_metadata(metric, md.clone()) {
            let mut wal = lock(&self.wal);
            wal.log_metadata(&[(metric, &md)])?;
            // changes are rare, so no group commit here
            wal.commit()?;
        }
        Ok(())
    }

    pub fn metadata(&self, metric: Option<&str>) -> Vec<(String, MetricMetadata)> {
        self.head.metadata(metric)
    }

    /// Readers of the blocks overlapping `[mint, maxt]`; blocks only in
    /// object storage are downloaded into the cache first.
    fn blocks_overlapping(&self, mint: i64, maxt: i64) -> Result<Vec<Arc<Block>>, TsdbError> {
        self.catalog.overlapping(mint, maxt)
    }

    /// Every block's metadata (local or in object storage), oldest first.
    pub fn blocks(&self) -> Vec<BlockMeta> {
        self.catalog.metas()
    }

    /// Where the blocks are and what the catalogue has uploaded,
    /// downloaded and evicted.
    pub fn remote_stats(&self) -> RemoteStats {
        self.catalog.stats()
    }

    /// Matching series with their samples in `[mint, maxt]` from blocks and
    /// head, sorted by labels.
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<(Labels, Vec<Sample>)>, TsdbError> {
        self.select_map(matchers, mint, maxt, |l, s| {
            Ok::<_, std::convert::Infallible>(Some((l, s)))
        })
        .map_err(|e| match e {
            SelectError::Storage(e) => e,
            SelectError::Map(never) => match never {},
        })
    }

    /// [`Tsdb::select`] with `f` applied to each series (labels, samples)
    /// on the thread that read it, keeping what it returns, in the same
    /// label order: per-series work (a range function) runs in the pass
    /// that decodes the series, while its samples are in cache, and no
    /// series' samples outlive its `f`.
    pub fn select_map<R: Send, E: Send>(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        f: impl Fn(Labels, Vec<Sample>) -> Result<Option<R>, E> + Sync,
    ) -> Result<Vec<R>, SelectError<E>> {
        type Sources = Vec<(usize, SeriesRef)>;
        let mut blocks = self
            .blocks_overlapping(mint, maxt)
            .map_err(SelectError::Storage)?;
        blocks.sort_by_key(|b| b.meta().min_time);
        // one label-sorted list per source: blocks oldest first, then the
        // head (source index blocks.len()). A block's series keep their
        // labels in its index until one is the first source of a series:
        // only then are they built, once per series.
        let mut lists: Vec<std::vec::IntoIter<Found<'_>>> = Vec::with_capacity(blocks.len() + 1);
        for b in &blocks {
            let refs = b.select_refs(matchers).map_err(SelectError::Storage)?;
            lists.push(
                refs.into_iter()
                    .map(|r| Found::Block(b, r))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
        }
        lists.push(
            self.head
                .select_labeled(matchers)
                .map_err(SelectError::Storage)?
                .into_iter()
                .map(|(l, r)| Found::Head(l, r))
                .collect::<Vec<_>>()
                .into_iter(),
        );
        // each series with where it is, in source order
        let mut heads: Vec<Option<Found<'_>>> = lists.iter_mut().map(Iterator::next).collect();
        let mut series: Vec<(Labels, Sources)> = Vec::new();
        // the sources whose next series is the smallest, ascending: one
        // comparison per source finds both the smallest and its equals
        let mut same: Vec<usize> = Vec::with_capacity(heads.len());
        loop {
            same.clear();
            for (i, h) in heads.iter().enumerate() {
                let Some(f) = h else { continue };
                let order = same
                    .first()
                    .and_then(|&m| heads[m].as_ref())
                    .map(|mf| f.order(mf));
                match order {
                    None | Some(std::cmp::Ordering::Less) => {
                        same.clear();
                        same.push(i);
                    }
                    Some(std::cmp::Ordering::Equal) => same.push(i),
                    Some(std::cmp::Ordering::Greater) => {}
                }
            }
            let Some(&m) = same.first() else { break };
            let Some(first) = heads[m].take() else {
                break;
            };
            heads[m] = lists[m].next();
            let (labels, r) = match first {
                Found::Head(l, r) => (l, r),
                Found::Block(b, r) => match b.labels_of(r) {
                    Some(l) => (l, r),
                    // labels the index cannot give: not selectable (the
                    // other sources' series come up again next)
                    None => continue,
                },
            };
            let mut at: Sources = Vec::with_capacity(same.len());
            at.push((m, r));
            for &i in &same[1..] {
                if let Some(f) = heads[i].take() {
                    heads[i] = lists[i].next();
                    at.push((i, f.series_ref()));
                }
            }
            series.push((labels, at));
        }
        // Each series is decoded from all its sources into one buffer,
        // concatenated when the parts follow each other in time (blocks and
        // head normally do), else merged with the later source winning a
        // shared timestamp.
        let read = |group: Vec<(Labels, Sources)>| -> Result<Vec<R>, SelectError<E>> {
            let mut out = Vec::with_capacity(group.len());
            // series of one selector tend to hold similar numbers of
            // samples: sizing each buffer like the largest so far saves
            // growing (copying) it chunk by chunk
            let mut hint = 0;
            // The head reserves room for whole chunks, which may reach
            // outside the range: after block samples that would regrow a
            // buffer sized just right (a copy into fresh pages), so the head's
            // part goes through this reused buffer then.
            let mut head_part: Vec<Sample> = Vec::new();
            for (labels, at) in group {
                let mut samples: Vec<Sample> = Vec::with_capacity(hint);
                let mut ordered = true;
                for (src, r) in at {
                    let before = samples.len();
                    let last = samples.last().map(|s| s.t);
                    match blocks.get(src) {
                        Some(b) => b
                            .samples_into(r, mint, maxt, &mut samples)
                            .map_err(SelectError::Storage)?,
                        None if samples.is_empty() => {
                            self.head.samples_into(r, mint, maxt, &mut samples);
                        }
                        None => {
                            head_part.clear();
                            self.head.samples_into(r, mint, maxt, &mut head_part);
                            samples.extend_from_slice(&head_part);
                        }
                    }
                    if let (Some(last), Some(first)) = (last, samples.get(before)) {
                        ordered &= last < first.t;
                    }
                }
                // the capacity, not the length: a head read reserves whole
                // chunks, and a smaller next buffer would be regrown
                hint = hint.max(samples.capacity());
                if samples.is_empty() {
                    continue;
                }
                if !ordered {
                    samples = merge_samples(samples);
                }
                if let Some(r) = f(labels, samples).map_err(SelectError::Map)? {
                    out.push(r);
                }
            }
            Ok(out)
        };
        // Long ranges over several series are read on several threads:
        // decoding chunks is most of a dashboard query's cost.
        const PARALLEL_MIN_MS: i64 = 40 * 60 * 1000;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let threads = if maxt.saturating_sub(mint) < PARALLEL_MIN_MS {
            1
        } else {
            threads.min(series.len())
        };
        if threads <= 1 {
            return read(series);
        }
        let rows = pharos_core::parallel::map_chunks(series, threads, 4, read);
        let mut out = Vec::new();
        for r in rows {
            out.extend(r?);
        }
        Ok(out)
    }

    /// Label sets of matching series with data in `[mint, maxt]`, sorted.
    pub fn series(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Labels>, TsdbError> {
        let mut out = self.head.series(matchers, mint, maxt)?;
        for b in self.blocks_overlapping(mint, maxt)? {
            out.extend(b.series(matchers, mint, maxt)?);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Label names, sorted; see [`Head::label_names`] for how matchers and
    /// the range apply.
    pub fn label_names(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, TsdbError> {
        let mut out = self.head.label_names(matchers, mint, maxt)?;
        for b in self.blocks_overlapping(mint, maxt)? {
            if matchers.is_empty() {
                out.extend(b.label_names());
            } else {
                for l in b.series(matchers, mint, maxt)? {
                    out.extend(l.iter().map(|x| x.name.clone()));
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Values of one label, sorted, with the rules of [`Tsdb::label_names`].
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, TsdbError> {
        let mut out = self.head.label_values(name, matchers, mint, maxt)?;
        for b in self.blocks_overlapping(mint, maxt)? {
            if matchers.is_empty() {
                out.extend(b.label_values(name));
            } else {
                for l in b.series(matchers, mint, maxt)? {
                    out.extend(l.get(name).map(str::to_owned));
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Housekeeping, to be called periodically (e.g. every minute): with
    /// object storage, lists its blocks first; cuts the head into a block
    /// once it holds one and a half block ranges, merges complete groups of
    /// blocks (3 and then 9 ranges wide), uploads new blocks (those that
    /// fail stay local for the next pass), deletes blocks past retention
    /// (time and size) here and remotely, and trims the block cache.
    pub fn maintain(&self) -> Result<MaintainReport, TsdbError> {
        let _one = self
            .maintenance
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut report = MaintainReport::default();
        if let Err(e) = self.catalog.sync_remote() {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot list blocks in object storage");
        }
        let range = i64::try_from(self.opts.head.chunk_range.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let dir = blocks_dir(&self.dir);
        loop {
            let st = self.head.stats();
            let (Some(lo), Some(hi)) = (st.min_t, st.max_t) else {
                break;
            };
            let start = lo.div_euclid(range).saturating_mul(range);
            let end = start.saturating_add(range);
            if hi < end.saturating_add(range / 2) {
                break;
            }
            // refuse late samples before reading, so none can slip in
            // behind the read and be dropped by the truncation below
            self.head.set_min_valid_t(end);
            let head = &self.head;
            let series = head
                .sorted_series()
                .into_iter()
                .map(|(l, r)| (l, head.samples_of(r, start, end - 1)));
            let meta = write_block(&dir, start, end, 1, series)?;
            let b = Block::open(&dir.join(&meta.ulid))?;
            self.catalog.add_local(meta.clone(), Some(Arc::new(b)))?;
            self.truncate_locked(end)?;
            tracing::info!(ulid = %meta.ulid, min_t = start, max_t = end, series = meta.stats.num_series, "block cut from head");
            report.cut.push(meta);
        }
        for factor in [3, 9] {
            self.compact_level(range.saturating_mul(factor), &mut report)?;
        }
        let (uploaded, failed) = self.catalog.upload_pending();
        report.uploaded = uploaded;
        report.upload_failed = failed;
        let cutoff = self.opts.retention.and_then(|ret| {
            let ret = i64::try_from(ret.as_millis()).unwrap_or(i64::MAX);
            let newest = self
                .catalog
                .metas()
                .iter()
                .map(|m| m.max_time)
                .chain(self.head.stats().max_t)
                .max()?;
            Some(newest.saturating_sub(ret))
        });
        let max_bytes = self.opts.retention_size.filter(|&b| b > 0);
        let expired = self.catalog.apply_retention(cutoff, max_bytes);
        if !expired.is_empty() {
            tracing::info!(blocks = expired.len(), "blocks deleted by retention");
        }
        report.deleted.extend(expired);
        self.catalog.evict(&[]);
        Ok(report)
    }

    /// Merges blocks lying within one aligned `width` window, once the
    /// window is complete (newer data exists past its end). Blocks only in
    /// object storage are downloaded for it; the merged block is uploaded
    /// by the caller, and only then are its sources deleted remotely.
    fn compact_level(&self, width: i64, report: &mut MaintainReport) -> Result<(), TsdbError> {
        let entries = self.catalog.entries();
        let Some(newest) = entries.iter().map(|e| e.meta().max_time).max() else {
            return Ok(());
        };
        let mut groups: BTreeMap<i64, Vec<Arc<Entry>>> = BTreeMap::new();
        for e in entries {
            let m = e.meta();
            let w = m.min_time.div_euclid(width);
            let w_end = w.saturating_add(1).saturating_mul(width);
            if m.max_time <= w_end && m.max_time.saturating_sub(m.min_time) < width {
                groups.entry(w).or_default().push(e);
            }
        }
        for (w, group) in groups {
            let w_end = w.saturating_add(1).saturating_mul(width);
            if group.len() < 2 || w_end > newest {
                continue;
            }
            let parts: Result<Vec<Option<Arc<Block>>>, TsdbError> =
                group.iter().map(|e| self.catalog.load(e)).collect();
            let parts: Vec<Arc<Block>> = match parts {
                Ok(p) => p.into_iter().flatten().collect(),
                Err(e) => {
                    // sources not cached and the store unreachable: merge later
                    tracing::warn!(error = %e, "cannot read blocks to compact, retrying next round");
                    continue;
                }
            };
            if parts.len() != group.len() {
                continue;
            }
            let refs: Vec<&Block> = parts.iter().map(|b| &**b).collect();
            let meta = compact(&blocks_dir(&self.dir), &refs)?;
            let b = Block::open(&blocks_dir(&self.dir).join(&meta.ulid))?;
            self.catalog.add_local(meta.clone(), Some(Arc::new(b)))?;
            self.catalog.remove(&group, false);
            for old in &group {
                report.deleted.push(old.meta().ulid.clone());
            }
            tracing::info!(ulid = %meta.ulid, merged = group.len(), "blocks compacted");
            report.compacted.push(meta);
        }
        Ok(())
    }

    pub fn stats(&self) -> HeadStats {
        self.head.stats()
    }

    /// Drops head data older than `before_t` and checkpoints the WAL so the
    /// log stops growing. [`Tsdb::maintain`] calls this after cutting a
    /// block; called directly it deletes that head data.
    pub fn truncate(&self, before_t: i64) -> Result<(), TsdbError> {
        let _one = self
            .maintenance
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.truncate_locked(before_t)
    }

    /// [`Tsdb::truncate`] with the maintenance lock held. The WAL lock is
    /// held only to close the current segment: reading old segments into
    /// the checkpoint can take a while and must not stall appends.
    fn truncate_locked(&self, before_t: i64) -> Result<(), TsdbError> {
        let dropped = self.head.truncate(before_t);
        let last = lock(&self.wal).close_segment()?;
        // taken after the close: series created later are logged in
        // segments the checkpoint does not cover
        let live = self.head.all_refs();
        let cp = Wal::write_checkpoint(
            &self.dir.join("wal"),
            last,
            |r| live.binary_search(&r).is_ok(),
            before_t,
        )?;
        tracing::info!(
            before_t,
            dropped_series = dropped.len(),
            checkpoint = cp,
            "head truncated"
        );
        Ok(())
    }

    /// fsyncs the WAL regardless of policy (e.g. at shutdown).
    pub fn sync(&self) -> Result<(), TsdbError> {
        lock(&self.wal).sync()
    }
}

impl Drop for Tsdb {
    fn drop(&mut self) {
        if let Err(e) = lock(&self.wal).sync() {
            tracing::warn!(error = %e, "wal fsync at close failed");
        }
    }
}

/// A matching series in one source of [`Tsdb::select_map`]: a block's
/// keeps its labels in the block's index.
enum Found<'a> {
    Block(&'a Block, SeriesRef),
    Head(Labels, SeriesRef),
}

impl Found<'_> {
    fn series_ref(&self) -> SeriesRef {
        match self {
            Found::Block(_, r) | Found::Head(_, r) => *r,
        }
    }

    /// Label order, as [`Labels`] compare.
    fn order(&self, other: &Found<'_>) -> std::cmp::Ordering {
        match (self, other) {
            (Found::Head(a, _), Found::Head(b, _)) => a.cmp(b),
            (Found::Head(a, _), Found::Block(b, s)) => a.pairs().cmp(b.label_strs(*s)),
            (Found::Block(a, r), Found::Head(b, _)) => a.label_strs(*r).cmp(b.pairs()),
            (Found::Block(a, r), Found::Block(b, s)) => a.label_strs(*r).cmp(b.label_strs(*s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::FsyncPolicy;
    use pharos_core::error::{Classify, ErrorClass};
    use pharos_model::STALE_NAN;
    use std::sync::Arc;

    fn opts() -> TsdbOptions {
        TsdbOptions {
            wal: WalOptions {
                fsync: FsyncPolicy::Never,
                ..WalOptions::default()
            },
            ..TsdbOptions::default()
        }
    }

    fn series(name: &str, i: usize) -> Labels {
        Labels::from_pairs([("__name__", name.to_owned()), ("instance", format!("h{i}"))])
    }

    fn dump(db: &Tsdb) -> String {
        let all = db
            .select(
                &[Matcher::new(pharos_model::MatchOp::Regex, "__name__", ".+").unwrap()],
                i64::MIN,
                i64::MAX,
            )
            .unwrap();
        let mut s = String::new();
        for (l, samples) in all {
            s.push_str(&l.to_string());
            for x in samples {
                s.push_str(&format!(" {}:{:x}", x.t, x.v.to_bits()));
            }
            s.push('\n');
        }
        s
    }

    #[test]
    fn append_reopen_replays_everything_bit_exact() {
        let dir = tempfile::tempdir().unwrap();
        let before;
        {
            let db = Tsdb::open(dir.path(), opts()).unwrap();
            let batch: Vec<(Labels, Vec<Sample>)> = (0..50)
                .map(|i| {
                    let s = (0..300)
                        .map(|k| {
                            let v = match k % 5 {
                                0 => f64::from_bits(STALE_NAN),
                                1 => -0.0,
                                _ => (k * i) as f64 / 7.0,
                            };
                            Sample::new(k as i64 * 15_000, v)
                        })
                        .collect();
                    (series("m", i), s)
                })
                .collect();
            let rep = db.append(&batch).unwrap();
            assert_eq!(rep.added, 50 * 300);
            assert_eq!(rep.new_series, 50);
            assert!(rep.errors.is_empty());
            // an out-of-order sample, and metadata
            db.append(&[(series("m", 0), vec![Sample::new(299 * 15_000 - 7, 1.5)])])
                .unwrap();
            db.set_metadata(
                "m",
                MetricMetadata {
                    metric_type: crate::head::MetricType::Gauge,
                    help: "help".into(),
                    unit: "bytes".into(),
                },
            )
            .unwrap();
            before = dump(&db);
        }
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        assert_eq!(dump(&db), before);
        assert_eq!(db.stats().samples, 50 * 300 + 1);
        assert_eq!(db.metadata(Some("m"))[0].1.unit, "bytes");
        // refs continue after the replayed ones
        db.append(&[(series("new", 0), vec![Sample::new(1, 1.0)])])
            .unwrap();
        drop(db);
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        assert_eq!(db.stats().series, 51);
    }

    #[test]
    fn select_map_keeps_order_drops_and_stops_at_the_first_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        // long enough a range for the reads to go parallel
        let batch: Vec<(Labels, Vec<Sample>)> = (0..40)
            .map(|i| {
                let s = (0..400)
                    .map(|k| Sample::new(k * 15_000, (i * k) as f64))
                    .collect();
                (series("m", i as usize), s)
            })
            .collect();
        db.append(&batch).unwrap();
        let all = [Matcher::new(pharos_model::MatchOp::Equal, "__name__", "m").unwrap()];
        let want = db.select(&all, 0, i64::MAX).unwrap();
        assert_eq!(want.len(), 40);
        // a sum per series, odd instances dropped, label order kept
        let got = db
            .select_map(&all, 0, i64::MAX, |l, s| {
                let odd = l
                    .get("instance")
                    .is_some_and(|v| v.trim_start_matches('h').parse::<u32>().unwrap() % 2 == 1);
                let total: f64 = s.iter().map(|x| x.v).sum();
                Ok::<_, TsdbError>((!odd).then_some((l, total)))
            })
            .unwrap();
        let expect: Vec<(Labels, f64)> = want
            .iter()
            .filter(|(l, _)| {
                l.get("instance")
                    .is_some_and(|v| v.trim_start_matches('h').parse::<u32>().unwrap() % 2 == 0)
            })
            .map(|(l, s)| (l.clone(), s.iter().map(|x| x.v).sum()))
            .collect();
        assert_eq!(got, expect);
        // the caller's error comes back as is
        let err = db
            .select_map(&all, 0, i64::MAX, |l, _| {
                if l.get("instance") == Some("h7") {
                    Err("h7".to_owned())
                } else {
                    Ok(Some(()))
                }
            })
            .unwrap_err();
        assert!(matches!(err, SelectError::Map(e) if e == "h7"));
    }

    #[test]
    fn select_merges_series_across_blocks_and_head_in_label_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        let hour = 3_600_000i64;
        let zoned = |i: usize| {
            Labels::from_pairs([
                ("__name__", "m".to_owned()),
                ("instance", format!("h{i}")),
                ("zone", "z".to_owned()),
            ])
        };
        // (labels, hours written): in both blocks and the head, in one
        // block only, in the second block and the head, in the head only;
        // a label set and its extension with one more label
        let plan: Vec<(Labels, std::ops::Range<i64>)> = vec![
            (series("m", 5), 0..7),
            (series("m", 1), 0..2),
            (zoned(1), 2..4),
            (series("m", 3), 3..7),
            (series("m", 0), 5..7),
            (zoned(0), 0..7),
        ];
        let mut want: std::collections::BTreeMap<Labels, Vec<Sample>> = Default::default();
        // 6.5 hours at one sample a minute: blocks [0, 2 h) and [2, 4 h),
        // the rest in the head
        for minute in 0..390i64 {
            let t = minute * 60_000;
            let mut batch = Vec::new();
            for (k, (l, hours)) in plan.iter().enumerate() {
                if hours.contains(&(t / hour)) {
                    let s = Sample::new(t, (minute * (k as i64 + 1)) as f64);
                    want.entry(l.clone()).or_default().push(s);
                    batch.push((l.clone(), vec![s]));
                }
            }
            db.append(&batch).unwrap();
            if minute % 60 == 59 {
                db.maintain().unwrap();
            }
        }
        let spans: Vec<(i64, i64)> = db
            .blocks()
            .iter()
            .map(|b| (b.min_time, b.max_time))
            .collect();
        assert_eq!(spans, vec![(0, 2 * hour), (2 * hour, 4 * hour)]);
        let all = [Matcher::equal("__name__", "m")];
        let got = db.select(&all, i64::MIN, i64::MAX).unwrap();
        let want: Vec<(Labels, Vec<Sample>)> = want.into_iter().collect();
        assert_eq!(got, want);
        // a window inside the second block sees only its series
        let mid = db.select(&all, 2 * hour + 60_000, 3 * hour - 1).unwrap();
        let names: Vec<&Labels> = mid.iter().map(|(l, _)| l).collect();
        assert_eq!(names, vec![&zoned(0), &zoned(1), &series("m", 5)]);
    }

    #[test]
    fn per_series_errors_keep_good_samples() {
        let dir = tempfile::tempdir().unwrap();
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        db.append(&[(series("m", 1), vec![Sample::new(10_000_000, 1.0)])])
            .unwrap();
        let rep = db
            .append(&[
                (series("m", 0), vec![Sample::new(1, 1.0)]),
                (
                    series("m", 1),
                    vec![Sample::new(1, 1.0), Sample::new(10_000_000, 2.0)],
                ),
                (Labels::new(), vec![Sample::new(1, 1.0)]),
                (
                    series("m", 1),
                    vec![Sample::new(10_000_000, 1.0), Sample::new(10_000_001, 1.0)],
                ),
            ])
            .unwrap();
        assert_eq!(rep.added, 2);
        assert_eq!(rep.duplicates, 1);
        let idx: Vec<usize> = rep.errors.iter().map(|e| e.index).collect();
        assert_eq!(idx, vec![2, 1]);
        assert!(
            rep.errors
                .iter()
                .all(|e| e.error.class() == ErrorClass::BadRequest)
        );
        let msg = rep.errors[1].error.to_string();
        assert!(
            msg.contains("out of bounds") && msg.contains(r#"instance="h1""#),
            "{msg}"
        );
        drop(db);
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        assert_eq!(db.stats().samples, 3);
    }

    #[test]
    fn concurrent_appends() {
        concurrent_appends_with(opts());
    }

    #[test]
    fn concurrent_appends_with_group_commit() {
        concurrent_appends_with(TsdbOptions::default());
    }

    fn concurrent_appends_with(opts: TsdbOptions) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Tsdb::open(dir.path(), opts.clone()).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|w| {
                let db = Arc::clone(&db);
                std::thread::spawn(move || {
                    for round in 0..50i64 {
                        // overlapping series between workers, distinct
                        // timestamps per worker
                        let batch: Vec<(Labels, Vec<Sample>)> = (0..20)
                            .map(|i| (series("c", i), vec![Sample::new(round * 1000 + w, 1.0)]))
                            .collect();
                        let rep = db.append(&batch).unwrap();
                        assert!(rep.errors.is_empty(), "{:?}", rep.errors);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let st = db.stats();
        assert_eq!((st.series, st.samples), (20, 20 * 50 * 4));
        let before = dump(&db);
        drop(db);
        let db = Tsdb::open(dir.path(), opts).unwrap();
        assert_eq!(dump(&db), before);
    }

    #[test]
    fn truncate_checkpoints_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        let s: Vec<Sample> = (0..1000)
            .map(|i| Sample::new(i * 15_000, i as f64))
            .collect();
        db.append(&[
            (series("a", 0), s.clone()),
            (series("b", 0), s[..10].to_vec()),
        ])
        .unwrap();
        db.truncate(7_200_000).unwrap();
        db.append(&[(series("a", 0), vec![Sample::new(1000 * 15_000, 5.0)])])
            .unwrap();
        let before = dump(&db);
        assert!(!before.contains("\"b\""));
        drop(db);
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        assert_eq!(dump(&db), before);
        assert!(db.replay_stats().checkpoint.is_some());
    }

    #[test]
    fn same_new_series_twice_in_a_batch_is_one_series() {
        let dir = tempfile::tempdir().unwrap();
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        let rep = db
            .append(&[
                (series("d", 0), vec![Sample::new(1, 1.0)]),
                (series("d", 0), vec![Sample::new(2, 2.0)]),
            ])
            .unwrap();
        assert_eq!((rep.new_series, rep.added), (1, 2));
        assert_eq!(db.stats().series, 1);
        drop(db);
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        assert_eq!(
            db.select(&[Matcher::equal("__name__", "d")], 0, 10)
                .unwrap()[0]
                .1
                .len(),
            2
        );
    }

    #[test]
    fn series_limit_refuses_new_series_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts();
        o.head.max_series = 3;
        let db = Tsdb::open(dir.path(), o).unwrap();
        let batch: Vec<(Labels, Vec<Sample>)> = (0..5)
            .map(|i| (series("m", i), vec![Sample::new(1, i as f64)]))
            .collect();
        let rep = db.append(&batch).unwrap();
        assert_eq!((rep.new_series, rep.added), (3, 3));
        let refused: Vec<usize> = rep.errors.iter().map(|e| e.index).collect();
        assert_eq!(refused, vec![3, 4]);
        let msg = rep.errors[0].error.to_string();
        assert!(
            msg.contains("series limit of 3") && msg.contains("max_active_series"),
            "{msg}"
        );
        assert!(msg.contains(r#"instance="h3""#), "{msg}");
        assert_eq!(rep.errors[0].error.class(), ErrorClass::BadRequest);
        // known series keep taking samples at the limit; a new one still cannot
        let rep = db
            .append(&[
                (series("m", 0), vec![Sample::new(2, 1.0)]),
                (series("m", 9), vec![Sample::new(2, 1.0)]),
            ])
            .unwrap();
        assert_eq!((rep.new_series, rep.added, rep.errors.len()), (0, 1, 1));
        assert_eq!(db.stats().series, 3);
    }

    #[test]
    fn fsync_always_works() {
        let dir = tempfile::tempdir().unwrap();
        let db = Tsdb::open(dir.path(), TsdbOptions::default()).unwrap();
        db.append(&[(series("a", 0), vec![Sample::new(1, 1.0)])])
            .unwrap();
        db.sync().unwrap();
        assert_eq!(db.stats().samples, 1);
    }

    #[test]
    fn maintain_cuts_compacts_and_queries_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let o = TsdbOptions {
            retention: None,
            ..opts()
        };
        let db = Tsdb::open(dir.path(), o.clone()).unwrap();
        let hour = 3_600_000i64;
        let mut want: Vec<Vec<Sample>> = vec![Vec::new(); 3];
        // 20 hours at one sample per minute; series 2 stops after 3 hours
        for minute in 0..20 * 60i64 {
            let t = minute * 60_000;
            let mut batch = Vec::new();
            for (i, w) in want.iter_mut().enumerate() {
                if i == 2 && t >= 3 * hour {
                    continue;
                }
                let v = if minute % 97 == 0 {
                    f64::from_bits(STALE_NAN)
                } else {
                    (minute * (i as i64 + 1)) as f64 / 10.0
                };
                let s = Sample::new(t, v);
                w.push(s);
                batch.push((series("m", i), vec![s]));
            }
            db.append(&batch).unwrap();
            if minute % 60 == 59 {
                db.maintain().unwrap();
            }
        }
        let blocks = db.blocks();
        // 2 h blocks merged into 6 h ones, those into one 18 h block
        assert_eq!(blocks.len(), 1, "{blocks:?}");
        assert_eq!(
            (
                blocks[0].min_time,
                blocks[0].max_time,
                blocks[0].compaction_level
            ),
            (0, 18 * hour, 3)
        );
        let names: Vec<String> = std::fs::read_dir(dir.path().join("blocks"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![blocks[0].ulid.clone()]);
        // blocks do not overlap and the head holds only what is newer
        for w in blocks.windows(2) {
            assert!(w[0].max_time <= w[1].min_time);
        }
        let head_min = db.stats().min_t.unwrap();
        assert!(head_min >= blocks.last().unwrap().max_time);
        let check = |db: &Tsdb| {
            let all = db
                .select(&[Matcher::equal("__name__", "m")], i64::MIN, i64::MAX)
                .unwrap();
            assert_eq!(all.len(), 3);
            for (i, (l, s)) in all.iter().enumerate() {
                assert_eq!(l, &series("m", i));
                let got: Vec<(i64, u64)> = s.iter().map(|x| (x.t, x.v.to_bits())).collect();
                let exp: Vec<(i64, u64)> = want[i].iter().map(|x| (x.t, x.v.to_bits())).collect();
                assert_eq!(got, exp, "series {i}");
            }
            // series 2 only lives in blocks now
            assert_eq!(
                db.label_values("instance", &[], 0, hour).unwrap(),
                vec!["h0", "h1", "h2"]
            );
            assert_eq!(
                db.series(&[Matcher::equal("instance", "h2")], 0, hour)
                    .unwrap()
                    .len(),
                1
            );
            assert!(
                db.series(&[Matcher::equal("instance", "h2")], 10 * hour, 20 * hour)
                    .unwrap()
                    .is_empty()
            );
        };
        check(&db);
        // a late sample for a range already in a block is refused
        let rep = db
            .append(&[(series("m", 0), vec![Sample::new(hour, 1.0)])])
            .unwrap();
        assert!(matches!(
            rep.first_error(),
            Some(TsdbError::OutOfBounds { .. })
        ));
        drop(db);
        let db = Tsdb::open(dir.path(), o).unwrap();
        check(&db);
        // retention counts back from the newest data and drops whole
        // blocks only: 6 h keeps the 0-18 h block (it reaches 14 h), 1 h
        // does not
        drop(db);
        let reopen = |hours: u64| {
            Tsdb::open(
                dir.path(),
                TsdbOptions {
                    retention: Some(Duration::from_secs(hours * 3600)),
                    ..opts()
                },
            )
            .unwrap()
        };
        let db = reopen(6);
        assert!(db.maintain().unwrap().deleted.is_empty());
        drop(db);
        let db = reopen(1);
        assert_eq!(db.maintain().unwrap().deleted.len(), 1);
        assert!(db.blocks().is_empty());
        let first = db
            .select(&[Matcher::equal("instance", "h0")], i64::MIN, i64::MAX)
            .unwrap();
        assert_eq!(first[0].1[0].t, 18 * hour);
        assert!(
            db.series(&[Matcher::equal("instance", "h2")], i64::MIN, i64::MAX)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn maintenance_races_appends_without_losing_samples() {
        let dir = tempfile::tempdir().unwrap();
        let o = TsdbOptions {
            head: HeadOptions {
                chunk_range: Duration::from_secs(300),
                ..HeadOptions::default()
            },
            retention: None,
            ..opts()
        };
        let db = Arc::new(Tsdb::open(dir.path(), o.clone()).unwrap());
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let steps = 3000i64;
        // writers stay within 100 s of each other: a series lagging more
        // than half a block range behind the newest data would be refused
        // as out of bounds once that range is cut, as in Prometheus
        let lockstep = Arc::new(std::sync::Barrier::new(2));
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let db = Arc::clone(&db);
                let lockstep = Arc::clone(&lockstep);
                std::thread::spawn(move || {
                    for k in 0..steps {
                        if k % 100 == 0 {
                            lockstep.wait();
                        }
                        let batch: Vec<(Labels, Vec<Sample>)> = (0..5)
                            .map(|i| {
                                (
                                    series("r", w * 5 + i),
                                    vec![Sample::new(k * 1000, (k * 7 + i as i64) as f64 / 4.0)],
                                )
                            })
                            .collect();
                        let rep = db.append(&batch).unwrap();
                        assert!(rep.errors.is_empty(), "{:?}", rep.errors);
                    }
                })
            })
            .collect();
        let maint = {
            let db = Arc::clone(&db);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut cut = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    cut += db.maintain().unwrap().cut.len();
                    std::thread::yield_now();
                }
                cut
            })
        };
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let cut = maint.join().unwrap() + db.maintain().unwrap().cut.len();
        assert!(cut >= 5, "only {cut} blocks cut");
        let verify = |db: &Tsdb| {
            let all = db
                .select(&[Matcher::equal("__name__", "r")], i64::MIN, i64::MAX)
                .unwrap();
            assert_eq!(all.len(), 10);
            for (l, s) in &all {
                let i: i64 = l.get("instance").unwrap()[1..].parse::<i64>().unwrap() % 5;
                assert_eq!(s.len() as i64, steps, "{l}");
                for (k, x) in s.iter().enumerate() {
                    assert_eq!(
                        *x,
                        Sample::new(k as i64 * 1000, (k as i64 * 7 + i) as f64 / 4.0)
                    );
                }
            }
        };
        verify(&db);
        drop(db);
        let db = Tsdb::open(dir.path(), o).unwrap();
        verify(&db);
    }
}
