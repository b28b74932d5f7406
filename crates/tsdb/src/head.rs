//! The in-memory head: every active series with its compressed chunks, the
//! inverted index over them, and metric metadata.
//!
//! Locking: the index sits behind one `RwLock` (written only when series
//! are created or dropped); series data and the labels-hash lookup are
//! split over stripes of mutexes so appends from many connections rarely
//! meet. Lock order is index, then lookup stripe, then series stripe.
//!
//! The head does not check how far in the future a sample is; the caller
//! (remote_write / scrape) owns that policy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use pharos_model::{LabelSet, Labels, Matcher, Sample};

use crate::chunk::{Chunk, ChunkAppender, Encoding};
use crate::error::TsdbError;
use crate::hash::{IntMap, NarrowMap};
use crate::index::{Index, SeriesRef};

const STRIPES: usize = 64;
/// Bytes reserved for a new series' first chunk. Its size is not known yet
/// (later chunks are sized after the one before): 48 holds the header, the
/// first full timestamp and value and a dozen more samples without
/// regrowing from 4 through 8, 16 and 32 bytes (each step a reallocation,
/// and for a million series in lockstep, tens of MB of freed small slabs
/// the allocator keeps for a while). 48 is an allocator size class, and so
/// are its doublings (96, 192, 384).
const FIRST_CHUNK_BYTES: usize = 48;
/// Out-of-order samples are buffered raw until this many, then compressed.
const OOO_BUF_SAMPLES: usize = 32;

#[derive(Debug, Clone)]
pub struct HeadOptions {
    /// How far behind a series' newest sample a sample may still arrive.
    /// Zero rejects every out-of-order sample.
    pub out_of_order_window: Duration,
    /// Samples per chunk before a new one is cut.
    pub chunk_samples: usize,
    /// Chunks never span a multiple of this, so they fall cleanly into
    /// blocks of the same range.
    pub chunk_range: Duration,
    /// Most series the head may hold at once (the tenant's active series);
    /// new series beyond it are refused. 0 means no limit.
    pub max_series: usize,
}

impl Default for HeadOptions {
    fn default() -> Self {
        Self {
            out_of_order_window: Duration::from_secs(600),
            chunk_samples: 120,
            chunk_range: Duration::from_secs(2 * 3600),
            max_series: 0,
        }
    }
}

/// Prometheus metric types as exposed by `/api/v1/metadata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetricType {
    Unknown,
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
}

impl MetricType {
    /// Prometheus' lowercase spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::GaugeHistogram => "gaugehistogram",
            Self::Summary => "summary",
            Self::Info => "info",
            Self::StateSet => "stateset",
        }
    }

    /// Parses Prometheus' spelling; anything else is `Unknown`.
    pub fn parse(s: &str) -> Self {
        match s {
            "counter" => Self::Counter,
            "gauge" => Self::Gauge,
            "histogram" => Self::Histogram,
            "gaugehistogram" => Self::GaugeHistogram,
            "summary" => Self::Summary,
            "info" => Self::Info,
            "stateset" => Self::StateSet,
            _ => Self::Unknown,
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::Counter => 1,
            Self::Gauge => 2,
            Self::Histogram => 3,
            Self::GaugeHistogram => 4,
            Self::Summary => 5,
            Self::Info => 6,
            Self::StateSet => 7,
        }
    }

    pub(crate) fn from_code(c: u8) -> Self {
        match c {
            1 => Self::Counter,
            2 => Self::Gauge,
            3 => Self::Histogram,
            4 => Self::GaugeHistogram,
            5 => Self::Summary,
            6 => Self::Info,
            7 => Self::StateSet,
            _ => Self::Unknown,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricMetadata {
    pub metric_type: MetricType,
    pub help: String,
    pub unit: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeadStats {
    pub series: usize,
    pub samples: usize,
    /// Encoded chunk bytes (closed chunks, open chunks and out-of-order
    /// data).
    pub chunk_bytes: usize,
    /// Estimate of all heap memory the head holds: chunks, series structs,
    /// index, lookup tables.
    pub memory_bytes: usize,
    pub min_t: Option<i64>,
    pub max_t: Option<i64>,
}

/// What happened to one appended sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Added,
    /// The same sample was there already; fine, and idempotent retries
    /// depend on it.
    Duplicate,
}

#[derive(Debug, Default)]
struct Ooo {
    /// Sorted by time, unique.
    buf: Vec<Sample>,
    /// Each sorted internally; may overlap each other and in-order data.
    chunks: Vec<Chunk>,
}

/// One series' data. Kept small: one lives per active series. Its labels
/// and their hash live in the index.
#[derive(Debug)]
struct MemSeries {
    /// Closed chunks, in time order, not overlapping. A boxed slice rather
    /// than a `Vec`: a chunk is closed every 120 samples, so an exact
    /// reallocation then is cheap and saves both the capacity word and the
    /// doubling slack (up to half the array).
    chunks: Box<[Chunk]>,
    /// Holds the newest in-order sample once the series has any.
    open: ChunkAppender,
    ooo: Option<Box<Ooo>>,
}

impl MemSeries {
    fn new() -> Self {
        Self {
            chunks: Box::default(),
            open: ChunkAppender::with_encoding_and_capacity(Encoding::default(), FIRST_CHUNK_BYTES),
            ooo: None,
        }
    }

    /// Appends a closed chunk, reallocating the array to the exact size.
    fn push_chunk(&mut self, c: Chunk) {
        let old = std::mem::take(&mut self.chunks);
        let mut v = Vec::with_capacity(old.len() + 1);
        v.extend(old);
        v.push(c);
        self.chunks = v.into_boxed_slice();
    }

    fn max_t(&self) -> Option<i64> {
        self.open
            .last()
            .map(|(t, _)| t)
            .or_else(|| self.chunks.last().map(Chunk::max_t))
    }

    fn bounds(&self) -> Option<(i64, i64)> {
        let mut min = i64::MAX;
        let mut max = i64::MIN;
        let mut widen = |lo: i64, hi: i64| {
            min = min.min(lo);
            max = max.max(hi);
        };
        if let Some(c) = self.chunks.first() {
            widen(c.min_t(), c.max_t());
        }
        if let Some(c) = self.chunks.last() {
            widen(c.min_t(), c.max_t());
        }
        if !self.open.is_empty() {
            widen(self.open.min_t(), self.open.max_t());
        }
        if let Some(o) = &self.ooo {
            for c in &o.chunks {
                widen(c.min_t(), c.max_t());
            }
            if let (Some(a), Some(b)) = (o.buf.first(), o.buf.last()) {
                widen(a.t, b.t);
            }
        }
        (min <= max).then_some((min, max))
    }

    /// Value bits of the sample at exactly `t`, if stored.
    fn find(&self, t: i64) -> Option<u64> {
        let in_range = |lo: i64, hi: i64| lo <= t && t <= hi;
        let scan =
            |mut it: crate::chunk::ChunkIter<'_>| it.find(|s| s.t == t).map(|s| s.v.to_bits());
        for c in &self.chunks {
            if in_range(c.min_t(), c.max_t())
                && let Some(v) = scan(c.iter())
            {
                return Some(v);
            }
        }
        if !self.open.is_empty()
            && in_range(self.open.min_t(), self.open.max_t())
            && let Some(v) = scan(self.open.iter())
        {
            return Some(v);
        }
        let o = self.ooo.as_ref()?;
        if let Ok(i) = o.buf.binary_search_by_key(&t, |s| s.t) {
            return Some(o.buf[i].v.to_bits());
        }
        o.chunks
            .iter()
            .filter(|c| in_range(c.min_t(), c.max_t()))
            .find_map(|c| scan(c.iter()))
    }

    /// Appends the samples in `[mint, maxt]` to `out`, sorted among
    /// themselves (what `out` held before is left alone).
    fn samples(&self, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
        let start = out.len();
        let keep = |s: &Sample| mint <= s.t && s.t <= maxt;
        // closed chunks are in time order and do not overlap
        let first = self.chunks.partition_point(|c| c.max_t() < mint);
        let last = first + self.chunks[first..].partition_point(|c| c.min_t() <= maxt);
        // one allocation per series: growing a large buffer chunk by chunk
        // copies it each time (and touches fresh pages with some allocators)
        out.reserve(
            self.chunks[first..last]
                .iter()
                .map(Chunk::len)
                .sum::<usize>()
                + self.open.len(),
        );
        for c in &self.chunks[first..] {
            if c.min_t() > maxt {
                break;
            }
            c.samples_into(mint, maxt, out);
        }
        if !self.open.is_empty() && self.open.max_t() >= mint && self.open.min_t() <= maxt {
            self.open.iter().samples_into(mint, maxt, out);
        }
        let Some(o) = &self.ooo else { return };
        let mut extra: Vec<Sample> = o.buf.iter().copied().filter(keep).collect();
        for c in &o.chunks {
            if c.max_t() >= mint && c.min_t() <= maxt {
                extra.extend(c.iter().filter(keep));
            }
        }
        if extra.is_empty() {
            return;
        }
        // timestamps are unique across all parts (duplicates are rejected
        // at append), so a sort is a merge
        out.extend(extra);
        out[start..].sort_by_key(|s| s.t);
    }

    fn sample_count(&self) -> usize {
        let ooo = self.ooo.as_ref().map_or(0, |o| {
            o.buf.len() + o.chunks.iter().map(Chunk::len).sum::<usize>()
        });
        self.chunks.iter().map(Chunk::len).sum::<usize>() + self.open.len() + ooo
    }

    fn chunk_bytes(&self) -> usize {
        let ooo = self.ooo.as_ref().map_or(0, |o| {
            o.buf.len() * 16 + o.chunks.iter().map(|c| c.bytes().len()).sum::<usize>()
        });
        self.chunks.iter().map(|c| c.bytes().len()).sum::<usize>() + self.open.bytes().len() + ooo
    }

    fn heap_bytes(&self) -> usize {
        let ooo = self.ooo.as_ref().map_or(0, |o| {
            std::mem::size_of::<Ooo>()
                + o.buf.capacity() * 16
                + o.chunks
                    .iter()
                    .map(|c| c.bytes().len() + std::mem::size_of::<Chunk>())
                    .sum::<usize>()
        });
        self.chunks.len() * std::mem::size_of::<Chunk>()
            + self.chunks.iter().map(|c| c.bytes().len()).sum::<usize>()
            + self.open.capacity()
            + ooo
    }
}

/// Series per page of a stripe's slab.
const PAGE: usize = 64;

/// One stripe's series. They sit in fixed-size pages (a growing `Vec`
/// would carry up to half its length in slack, and a map of inline series
/// half-empty buckets of 150 bytes each); a small map finds a ref's slot,
/// and a dropped series' slot goes to the next new one.
#[derive(Debug, Default)]
struct SeriesStripe {
    /// Slot of each series by `ref / STRIPES` (unique within a stripe, and
    /// small enough for the map's narrow table).
    slot_of: NarrowMap,
    /// Every page but the last is full; each is allocated at `PAGE` and
    /// never grows.
    pages: Vec<Vec<Option<(SeriesRef, MemSeries)>>>,
    free: Vec<u32>,
}

impl SeriesStripe {
    fn slot(&self, i: u64) -> Option<&(SeriesRef, MemSeries)> {
        let i = usize::try_from(i).ok()?;
        self.pages.get(i / PAGE)?.get(i % PAGE)?.as_ref()
    }

    fn slot_mut(&mut self, i: u64) -> Option<&mut Option<(SeriesRef, MemSeries)>> {
        let i = usize::try_from(i).ok()?;
        self.pages.get_mut(i / PAGE)?.get_mut(i % PAGE)
    }

    fn get(&self, r: &SeriesRef) -> Option<&MemSeries> {
        let i = self.slot_of.get(*r / STRIPES as u64)?;
        self.slot(i).map(|(_, s)| s)
    }

    fn get_mut(&mut self, r: &SeriesRef) -> Option<&mut MemSeries> {
        let i = self.slot_of.get(*r / STRIPES as u64)?;
        self.slot_mut(i)?.as_mut().map(|(_, s)| s)
    }

    /// Adds series `r`; a ref already present keeps its data.
    fn insert(&mut self, r: SeriesRef, s: MemSeries) {
        let key = r / STRIPES as u64;
        if self.slot_of.contains_key(key) {
            return;
        }
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.slot_mut(u64::from(i)) {
                    *slot = Some((r, s));
                }
                u64::from(i)
            }
            None => {
                if self.pages.last().is_none_or(|p| p.len() == PAGE) {
                    self.pages.push(Vec::with_capacity(PAGE));
                }
                let first = (self.pages.len() - 1) * PAGE;
                let Some(page) = self.pages.last_mut() else {
                    return;
                };
                let i = first + page.len();
                page.push(Some((r, s)));
                i as u64
            }
        };
        self.slot_of.insert(key, i);
    }

    fn iter(&self) -> impl Iterator<Item = &(SeriesRef, MemSeries)> {
        self.pages.iter().flatten().flatten()
    }

    /// Keeps the series for which `keep` says so.
    fn retain(&mut self, mut keep: impl FnMut(SeriesRef, &mut MemSeries) -> bool) {
        for (p, page) in self.pages.iter_mut().enumerate() {
            for (o, slot) in page.iter_mut().enumerate() {
                let Some((r, s)) = slot else { continue };
                if !keep(*r, s) {
                    self.slot_of.remove(*r / STRIPES as u64);
                    // slots count one stripe's series: far below u32::MAX
                    self.free.push((p * PAGE + o) as u32);
                    *slot = None;
                }
            }
        }
    }

    /// Heap bytes of the stripe's own structure (not what series point to).
    fn heap_bytes(&self) -> usize {
        self.slot_of.heap_bytes()
            + self
                .pages
                .iter()
                .map(|p| p.capacity() * std::mem::size_of::<Option<(SeriesRef, MemSeries)>>())
                .sum::<usize>()
            + self.pages.capacity() * std::mem::size_of::<Vec<()>>()
            + self.free.capacity() * 4
    }
}

pub struct Head {
    opts: HeadOptions,
    window_ms: i64,
    range_ms: i64,
    index: RwLock<Index>,
    /// labels hash -> ref; a second series with the same hash goes to
    /// `collisions`.
    lookup: Box<[Mutex<IntMap<u64, SeriesRef>>]>,
    collisions: Mutex<Vec<(u64, SeriesRef)>>,
    series: Box<[Mutex<SeriesStripe>]>,
    /// Serializes series creation so a series is logged before any sample
    /// can refer to it.
    create: Mutex<()>,
    next_ref: AtomicU64,
    /// Samples older than this are refused (the head was truncated there).
    min_valid_t: AtomicI64,
    /// Oldest and newest timestamp ever accepted (not lowered or raised
    /// back by truncation).
    seen_min_t: AtomicI64,
    seen_max_t: AtomicI64,
    metadata: RwLock<HashMap<String, MetricMetadata>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // a panic in another thread while holding the lock leaves data that
    // is still structurally valid; carry on rather than cascade
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn stripe(x: u64) -> usize {
    (x as usize) % STRIPES
}

/// Positions of `keys` grouped by stripe (a stable counting sort), and
/// where each stripe's group starts: stripe `i` is
/// `order[bounds[i]..bounds[i + 1]]`.
fn by_stripe(keys: impl ExactSizeIterator<Item = u64> + Clone) -> (Vec<u32>, [usize; STRIPES + 1]) {
    let mut bounds = [0usize; STRIPES + 1];
    for k in keys.clone() {
        bounds[stripe(k) + 1] += 1;
    }
    for i in 1..=STRIPES {
        bounds[i] += bounds[i - 1];
    }
    let mut next = bounds;
    let mut order = vec![0u32; keys.len()];
    for (i, k) in keys.enumerate() {
        let slot = &mut next[stripe(k)];
        order[*slot] = i as u32;
        *slot += 1;
    }
    (order, bounds)
}

fn to_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Head {
    pub fn new(opts: HeadOptions) -> Self {
        let window_ms = to_ms(opts.out_of_order_window);
        let range_ms = to_ms(opts.chunk_range).max(1);
        Self {
            opts,
            window_ms,
            range_ms,
            index: RwLock::new(Index::new()),
            lookup: (0..STRIPES).map(|_| Mutex::default()).collect(),
            collisions: Mutex::default(),
            series: (0..STRIPES).map(|_| Mutex::default()).collect(),
            create: Mutex::new(()),
            next_ref: AtomicU64::new(1),
            min_valid_t: AtomicI64::new(i64::MIN),
            seen_min_t: AtomicI64::new(i64::MAX),
            seen_max_t: AtomicI64::new(i64::MIN),
            metadata: RwLock::default(),
        }
    }

    pub fn options(&self) -> &HeadOptions {
        &self.opts
    }

    fn find_ref<L: LabelSet + ?Sized>(
        &self,
        index: &Index,
        hash: u64,
        labels: &L,
    ) -> Option<SeriesRef> {
        let r = lock(&self.lookup[stripe(hash)]).get(&hash).copied()?;
        if index.labels_eq(r, labels) {
            return Some(r);
        }
        lock(&self.collisions)
            .iter()
            .find(|&&(h, r)| h == hash && index.labels_eq(r, labels))
            .map(|&(_, r)| r)
    }

    /// The refs of existing series, `None` where a series is new.
    ///
    /// Each lookup stripe is locked once for the whole batch rather than
    /// once per series: with no atomic operation between them, the table
    /// probes' cache misses overlap instead of queueing.
    pub(crate) fn resolve<L: LabelSet>(&self, labels: &[&L]) -> Vec<Option<SeriesRef>> {
        let hashes: Vec<u64> = labels
            .iter()
            .map(|l| crate::hash::labels_hash(*l))
            .collect();
        let (order, bounds) = by_stripe(hashes.iter().copied());
        let index = read(&self.index);
        let mut found: Vec<Option<SeriesRef>> = vec![None; labels.len()];
        for (st, w) in bounds.windows(2).enumerate() {
            if w[0] == w[1] {
                continue;
            }
            let map = lock(&self.lookup[st]);
            for &i in &order[w[0]..w[1]] {
                found[i as usize] = map.get(&hashes[i as usize]).copied();
            }
        }
        for ((slot, l), &hash) in found.iter_mut().zip(labels).zip(&hashes) {
            let Some(r) = *slot else { continue };
            if !index.labels_eq(r, *l) {
                // another series owns the table slot (a hash collision):
                // the slow path searches the collision list too
                *slot = self.find_ref(&index, hash, *l);
            }
        }
        found
    }

    /// Creates the series not yet present, calling `log` with the new ones
    /// before they become visible, so the WAL holds a series before any
    /// sample referring to it. Returns the ref of every input, in order;
    /// `None` for a new series refused because the head holds
    /// `max_series` already.
    pub(crate) fn get_or_create(
        &self,
        labels: &[&Labels],
        log: impl FnOnce(&[(SeriesRef, &Labels)]) -> Result<(), TsdbError>,
    ) -> Result<Vec<Option<SeriesRef>>, TsdbError> {
        for l in labels {
            validate_labels(l)?;
        }
        let _creating = lock(&self.create);
        let mut refs = self.resolve(labels);
        // under the creation lock: concurrent writers cannot both take the
        // last free places
        let mut room = match self.opts.max_series {
            0 => usize::MAX,
            max => max.saturating_sub(read(&self.index).len()),
        };
        let mut new: Vec<(SeriesRef, &Labels)> = Vec::new();
        let mut fresh: HashMap<&Labels, SeriesRef> = HashMap::new();
        for (slot, l) in refs.iter_mut().zip(labels) {
            if slot.is_some() {
                continue;
            }
            // the same new series twice in one batch gets one ref
            if let Some(&r) = fresh.get(*l) {
                *slot = Some(r);
                continue;
            }
            if room == 0 {
                continue;
            }
            room -= 1;
            let r = self.next_ref.fetch_add(1, Ordering::Relaxed);
            new.push((r, *l));
            fresh.insert(*l, r);
            *slot = Some(r);
        }
        if !new.is_empty() {
            log(&new)?;
            let mut index = write(&self.index);
            for (r, l) in &new {
                self.insert_series(&mut index, *r, l);
            }
        }
        Ok(refs)
    }

    /// Recreates a series under a known ref (WAL replay).
    pub(crate) fn restore_series(&self, r: SeriesRef, labels: &Labels) {
        let mut index = write(&self.index);
        if index.labels(r).is_some() {
            return;
        }
        self.insert_series(&mut index, r, labels);
        self.next_ref
            .fetch_max(r.saturating_add(1), Ordering::Relaxed);
    }

    fn insert_series(&self, index: &mut Index, r: SeriesRef, labels: &Labels) {
        let hash = crate::hash::labels_hash(labels);
        index.add(r, labels);
        {
            let mut lk = lock(&self.lookup[stripe(hash)]);
            match lk.entry(hash) {
                std::collections::hash_map::Entry::Occupied(_) => {
                    lock(&self.collisions).push((hash, r));
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(r);
                }
            }
        }
        lock(&self.series[stripe(r)]).insert(r, MemSeries::new());
    }

    /// Appends samples to one series. Each sample is checked on its own:
    /// accepted ones (including exact duplicates) are passed to `accepted`,
    /// and the first error is returned after trying all of them, so good
    /// samples in a batch stay. `replay` relaxes the out-of-order window,
    /// because the log holds only samples that were accepted once.
    pub(crate) fn append_series(
        &self,
        r: SeriesRef,
        samples: &[Sample],
        replay: bool,
        mut accepted: impl FnMut(i64, f64),
    ) -> Result<usize, Option<TsdbError>> {
        let mut guard = lock(&self.series[stripe(r)]);
        let Some(s) = guard.get_mut(&r) else {
            return Err(None);
        };
        let (added, first_err) = self.append_samples(s, samples, replay, &mut accepted);
        drop(guard);
        match first_err {
            None => Ok(added),
            Some((t, dup)) => Err(Some(self.sample_error(r, t, dup))),
        }
    }

    /// [`Head::append_series`] for many series at once (never a replay),
    /// taking each series stripe's lock once for the batch. `accepted` gets
    /// the ref with each accepted sample; the results are in input order.
    /// A series may appear more than once; its samples are applied in input
    /// order.
    pub(crate) fn append_many(
        &self,
        batch: &[(SeriesRef, &[Sample])],
        mut accepted: impl FnMut(SeriesRef, i64, f64),
    ) -> Vec<Result<usize, Option<TsdbError>>> {
        let (order, bounds) = by_stripe(batch.iter().map(|&(r, _)| r));
        // (added, first refused sample) per series, None if it is gone
        type Applied = Option<(usize, Option<(i64, bool)>)>;
        let mut done: Vec<Applied> = vec![None; batch.len()];
        for (st, w) in bounds.windows(2).enumerate() {
            if w[0] == w[1] {
                continue;
            }
            let mut guard = lock(&self.series[st]);
            for &i in &order[w[0]..w[1]] {
                let (r, samples) = batch[i as usize];
                if let Some(s) = guard.get_mut(&r) {
                    let mut acc = |t, v| accepted(r, t, v);
                    done[i as usize] = Some(self.append_samples(s, samples, false, &mut acc));
                }
            }
        }
        // errors are named after the stripe locks are gone (naming reads
        // the index and the series again)
        done.into_iter()
            .zip(batch)
            .map(|(d, &(r, _))| {
                // None: dropped by a concurrent truncation
                let (added, first_err) = d.ok_or(None)?;
                match first_err {
                    None => Ok(added),
                    Some((t, dup)) => Err(Some(self.sample_error(r, t, dup))),
                }
            })
            .collect()
    }

    /// Applies samples to a locked series: how many were added, and the
    /// first refused one (time, whether it was a conflicting duplicate).
    /// Every sample is tried, so good ones in a batch stay.
    fn append_samples(
        &self,
        s: &mut MemSeries,
        samples: &[Sample],
        replay: bool,
        accepted: &mut impl FnMut(i64, f64),
    ) -> (usize, Option<(i64, bool)>) {
        let mut first_err: Option<(i64, bool)> = None;
        let mut added = 0;
        for smp in samples {
            match self.append_one(s, smp.t, smp.v, replay) {
                Ok(o) => {
                    if o == Outcome::Added {
                        added += 1;
                    }
                    accepted(smp.t, smp.v);
                }
                Err(dup) => {
                    if first_err.is_none() {
                        first_err = Some((smp.t, dup));
                    }
                }
            }
        }
        (added, first_err)
    }

    fn sample_error(&self, r: SeriesRef, t: i64, duplicate: bool) -> TsdbError {
        let series = read(&self.index)
            .labels(r)
            .map_or_else(|| format!("ref {r}"), |l| l.to_string());
        if duplicate {
            TsdbError::DuplicateSample { series, t }
        } else {
            let max_t = lock(&self.series[stripe(r)])
                .get(&r)
                .and_then(MemSeries::max_t)
                .unwrap_or(i64::MIN);
            TsdbError::OutOfBounds {
                series,
                t,
                min_t: max_t
                    .saturating_sub(self.window_ms)
                    .max(self.min_valid_t.load(Ordering::Relaxed)),
                window_ms: self.window_ms,
            }
        }
    }

    /// `Err(true)` for a conflicting duplicate, `Err(false)` for too old.
    fn append_one(&self, s: &mut MemSeries, t: i64, v: f64, replay: bool) -> Result<Outcome, bool> {
        if t < self.min_valid_t.load(Ordering::Relaxed) {
            return Err(false);
        }
        let bits = v.to_bits();
        let Some((last_t, last_bits)) = s.open.last().or_else(|| {
            // right after a truncation the open chunk may be empty while
            // closed chunks remain
            s.chunks
                .last()
                .and_then(|c| c.iter().last().map(|x| (x.t, x.v.to_bits())))
        }) else {
            s.open.append(t, v);
            return Ok(Outcome::Added);
        };
        if t > last_t {
            let full = s.open.len() >= self.opts.chunk_samples || s.open.is_full();
            let crosses = !s.open.is_empty()
                && t >= (s.open.min_t().div_euclid(self.range_ms) + 1)
                    .saturating_mul(self.range_ms);
            if full || crosses {
                let old = std::mem::take(&mut s.open);
                let (chunk, best) = old.finish_best();
                // a little headroom: the next chunk may be slightly larger
                let expect = chunk.bytes().len() + chunk.bytes().len() / 8 + 8;
                s.push_chunk(chunk);
                s.open = ChunkAppender::with_encoding_and_capacity(best, expect);
            }
            s.open.append(t, v);
            return Ok(Outcome::Added);
        }
        if t == last_t {
            return if bits == last_bits {
                Ok(Outcome::Duplicate)
            } else {
                Err(true)
            };
        }
        if !replay && t < last_t.saturating_sub(self.window_ms) {
            return Err(false);
        }
        if let Some(old) = s.find(t) {
            return if old == bits {
                Ok(Outcome::Duplicate)
            } else {
                Err(true)
            };
        }
        let o = s.ooo.get_or_insert_with(Box::default);
        let at = o.buf.partition_point(|x| x.t < t);
        o.buf.insert(at, Sample::new(t, v));
        if o.buf.len() >= OOO_BUF_SAMPLES {
            let mut a = ChunkAppender::new();
            for x in o.buf.drain(..) {
                a.append(x.t, x.v);
            }
            o.chunks.push(a.finish_best().0);
        }
        Ok(Outcome::Added)
    }

    fn select_refs(&self, matchers: &[Matcher]) -> Result<Vec<SeriesRef>, TsdbError> {
        read(&self.index).select(matchers)
    }

    /// Series matching `matchers` with their samples in `[mint, maxt]`,
    /// sorted by labels; series without samples in the range are left out.
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<(Labels, Vec<Sample>)>, TsdbError> {
        let refs = self.select_refs(matchers)?;
        let mut out = Vec::new();
        for r in refs {
            let mut samples = Vec::new();
            if let Some(s) = lock(&self.series[stripe(r)]).get(&r) {
                s.samples(mint, maxt, &mut samples);
            }
            if samples.is_empty() {
                continue;
            }
            if let Some(l) = read(&self.index).labels(r) {
                out.push((l, samples));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Samples of one series in `[mint, maxt]`, sorted.
    /// Oldest and newest timestamp the head has accepted, or None if it
    /// never took a sample. Data truncated into blocks since still counts,
    /// so this may be wider than what the head holds.
    pub fn seen_bounds(&self) -> Option<(i64, i64)> {
        let lo = self.seen_min_t.load(Ordering::Relaxed);
        let hi = self.seen_max_t.load(Ordering::Relaxed);
        (lo <= hi).then_some((lo, hi))
    }

    /// Appends one series' samples in `[mint, maxt]`, sorted, to `out`.
    pub(crate) fn samples_into(&self, r: SeriesRef, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
        if let Some(s) = lock(&self.series[stripe(r)]).get(&r) {
            s.samples(mint, maxt, out);
        }
    }

    /// Labels and refs of the series matching `matchers`, sorted by labels.
    pub(crate) fn select_labeled(
        &self,
        matchers: &[Matcher],
    ) -> Result<Vec<(Labels, SeriesRef)>, TsdbError> {
        let refs = self.select_refs(matchers)?;
        let index = read(&self.index);
        let mut out: Vec<(Labels, SeriesRef)> = refs
            .into_iter()
            .filter_map(|r| index.labels(r).map(|l| (l, r)))
            .collect();
        drop(index);
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub(crate) fn samples_of(&self, r: SeriesRef, mint: i64, maxt: i64) -> Vec<Sample> {
        let mut out = Vec::new();
        if let Some(s) = lock(&self.series[stripe(r)]).get(&r) {
            s.samples(mint, maxt, &mut out);
        }
        out
    }

    /// Every series' labels and ref, sorted by labels (for writing blocks).
    pub(crate) fn sorted_series(&self) -> Vec<(Labels, SeriesRef)> {
        let refs = self.all_refs();
        let index = read(&self.index);
        let mut v: Vec<(Labels, SeriesRef)> = refs
            .into_iter()
            .filter_map(|r| index.labels(r).map(|l| (l, r)))
            .collect();
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Refuses samples older than `t` from now on (e.g. data that already
    /// went into blocks).
    pub(crate) fn set_min_valid_t(&self, t: i64) {
        self.min_valid_t.fetch_max(t, Ordering::Relaxed);
    }

    fn overlaps(&self, r: SeriesRef, mint: i64, maxt: i64) -> bool {
        lock(&self.series[stripe(r)])
            .get(&r)
            .and_then(MemSeries::bounds)
            .is_some_and(|(lo, hi)| hi >= mint && lo <= maxt)
    }

    /// Label sets of the matching series with data in `[mint, maxt]`,
    /// sorted.
    pub fn series(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Labels>, TsdbError> {
        let refs = self.select_refs(matchers)?;
        let live: Vec<SeriesRef> = refs
            .into_iter()
            .filter(|&r| self.overlaps(r, mint, maxt))
            .collect();
        let index = read(&self.index);
        let mut out: Vec<Labels> = live.into_iter().filter_map(|r| index.labels(r)).collect();
        out.sort();
        Ok(out)
    }

    /// Label names, sorted. Without matchers every name in the head (the
    /// time range is not consulted, as in Prometheus' head); with matchers
    /// the names of matching series with data in the range.
    pub fn label_names(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, TsdbError> {
        if matchers.is_empty() {
            return Ok(read(&self.index).label_names());
        }
        let refs = self.select_refs(matchers)?;
        let live: Vec<SeriesRef> = refs
            .into_iter()
            .filter(|&r| self.overlaps(r, mint, maxt))
            .collect();
        let index = read(&self.index);
        let mut names: Vec<String> = Vec::new();
        for r in live {
            index.for_each_label(r, |n, _| {
                if let Err(i) = names.binary_search_by(|x| x.as_str().cmp(n)) {
                    names.insert(i, n.to_owned());
                }
            });
        }
        Ok(names)
    }

    /// Values of label `name`, sorted, with the same rules as
    /// [`Head::label_names`].
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, TsdbError> {
        if matchers.is_empty() {
            return Ok(read(&self.index).label_values(name));
        }
        let refs = self.select_refs(matchers)?;
        let live: Vec<SeriesRef> = refs
            .into_iter()
            .filter(|&r| self.overlaps(r, mint, maxt))
            .collect();
        let index = read(&self.index);
        let mut values: Vec<String> = Vec::new();
        for r in live {
            index.for_each_label(r, |n, v| {
                if n == name
                    && let Err(i) = values.binary_search_by(|x| x.as_str().cmp(v))
                {
                    values.insert(i, v.to_owned());
                }
            });
        }
        Ok(values)
    }

    /// Drops data older than `before_t` (whole chunks; the open chunk is
    /// kept while any of it is newer) and series left without data, and
    /// refuses samples older than `before_t` from now on. Returns the refs
    /// of dropped series.
    pub fn truncate(&self, before_t: i64) -> Vec<SeriesRef> {
        self.min_valid_t.fetch_max(before_t, Ordering::Relaxed);
        let mut refs: Vec<SeriesRef> = Vec::new();
        for st in self.series.iter() {
            let mut g = lock(st);
            g.retain(|r, s| {
                if s.chunks.first().is_some_and(|c| c.min_t() < before_t) {
                    let mut v = std::mem::take(&mut s.chunks).into_vec();
                    cut_chunks(&mut v, before_t);
                    s.chunks = v.into_boxed_slice();
                }
                if let Some(o) = &mut s.ooo {
                    cut_chunks(&mut o.chunks, before_t);
                    o.buf.retain(|x| x.t >= before_t);
                    if o.chunks.is_empty() && o.buf.is_empty() {
                        s.ooo = None;
                    }
                }
                if !s.open.is_empty() && s.open.min_t() < before_t {
                    let mut a = ChunkAppender::with_encoding(s.open.encoding());
                    for x in s.open.iter().filter(|x| x.t >= before_t) {
                        a.append(x.t, x.v);
                    }
                    s.open = a;
                }
                let keep = !s.chunks.is_empty() || !s.open.is_empty() || s.ooo.is_some();
                if !keep {
                    refs.push(r);
                }
                keep
            });
        }
        if refs.is_empty() {
            return Vec::new();
        }
        let mut index = write(&self.index);
        // the hashes are recomputed from the labels rather than kept in
        // every series: truncation is rare, series are many
        let dropped: Vec<(SeriesRef, u64)> = refs
            .iter()
            .filter_map(|&r| Some((r, index.labels_hash(r)?)))
            .collect();
        for &(r, hash) in &dropped {
            let mut lk = lock(&self.lookup[stripe(hash)]);
            if lk.get(&hash) == Some(&r) {
                lk.remove(&hash);
                // promote a colliding series into the main table
                let mut col = lock(&self.collisions);
                if let Some(i) = col.iter().position(|&(h, _)| h == hash) {
                    let (_, other) = col.swap_remove(i);
                    lk.insert(hash, other);
                }
            } else {
                lock(&self.collisions).retain(|&(h, x)| !(h == hash && x == r));
            }
        }
        index.remove(&refs);
        refs
    }

    pub fn stats(&self) -> HeadStats {
        let mut st = HeadStats::default();
        let mut lo = i64::MAX;
        let mut hi = i64::MIN;
        let mut series_heap = 0usize;
        for stripe in self.series.iter() {
            let g = lock(stripe);
            series_heap += g.heap_bytes();
            for (_, s) in g.iter() {
                st.series += 1;
                st.samples += s.sample_count();
                st.chunk_bytes += s.chunk_bytes();
                series_heap += s.heap_bytes();
                if let Some((a, b)) = s.bounds() {
                    lo = lo.min(a);
                    hi = hi.max(b);
                }
            }
        }
        let lookup: usize = self
            .lookup
            .iter()
            .map(|m| {
                crate::hash::table_bytes(
                    lock(m).capacity(),
                    std::mem::size_of::<(u64, SeriesRef)>(),
                )
            })
            .sum();
        st.memory_bytes = series_heap + lookup + read(&self.index).heap_bytes();
        if lo <= hi {
            st.min_t = Some(lo);
            st.max_t = Some(hi);
        }
        st
    }

    /// Records a metric family's metadata; returns whether it changed (so
    /// callers log only changes).
    pub fn set_metadata(&self, metric: &str, md: MetricMetadata) -> bool {
        let mut m = write(&self.metadata);
        if m.get(metric) == Some(&md) {
            return false;
        }
        m.insert(metric.to_owned(), md);
        true
    }

    /// Metadata of one metric family, or of all when `metric` is `None`,
    /// sorted by metric name.
    pub fn metadata(&self, metric: Option<&str>) -> Vec<(String, MetricMetadata)> {
        let m = read(&self.metadata);
        let mut out: Vec<(String, MetricMetadata)> = match metric {
            Some(name) => m
                .get(name)
                .map(|md| (name.to_owned(), md.clone()))
                .into_iter()
                .collect(),
            None => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        };
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Refs of all series, sorted (for checkpoints).
    pub(crate) fn all_refs(&self) -> Vec<SeriesRef> {
        let mut v: Vec<SeriesRef> = Vec::new();
        for st in self.series.iter() {
            v.extend(lock(st).iter().map(|&(r, _)| r));
        }
        v.sort_unstable();
        v
    }
}

/// Drops samples before `before_t`: whole chunks where possible, and
/// re-encodes the one chunk straddling the cut, so what stays matches
/// exactly what a WAL checkpoint at `before_t` keeps.
fn cut_chunks(chunks: &mut Vec<Chunk>, before_t: i64) {
    chunks.retain(|c| c.max_t() >= before_t);
    for c in chunks.iter_mut() {
        if c.min_t() < before_t {
            let mut a = ChunkAppender::new();
            for x in c.iter().filter(|x| x.t >= before_t) {
                a.append(x.t, x.v);
            }
            *c = a.finish_best().0;
        }
    }
}

fn validate_labels(l: &Labels) -> Result<(), TsdbError> {
    let bad = |reason: &str| {
        Err(TsdbError::InvalidLabels {
            series: l.to_string(),
            reason: reason.to_owned(),
        })
    };
    if l.is_empty() {
        return bad("a series needs at least one label");
    }
    if l.iter().any(|x| x.name.is_empty()) {
        return bad("empty label name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;
    use pharos_model::{MatchOp, STALE_NAN};

    fn lbl(name: &str, job: &str) -> Labels {
        Labels::from_pairs([("__name__", name), ("job", job)])
    }

    fn add(h: &Head, l: &Labels, samples: &[(i64, f64)]) -> Result<usize, TsdbError> {
        let r = h.get_or_create(&[l], |_| Ok(()))?[0].unwrap_or(0);
        let s: Vec<Sample> = samples.iter().map(|&(t, v)| Sample::new(t, v)).collect();
        h.append_series(r, &s, false, |_, _| {})
            .map_err(|e| e.unwrap_or(TsdbError::InvalidSelector("gone".into())))
    }

    fn all(h: &Head, name: &str) -> Vec<(Labels, Vec<Sample>)> {
        h.select(&[Matcher::equal("__name__", name)], i64::MIN, i64::MAX)
            .unwrap()
    }

    #[test]
    fn append_and_read_back_across_chunks() {
        let h = Head::new(HeadOptions::default());
        let l = lbl("up", "a");
        let samples: Vec<(i64, f64)> = (0..1000).map(|i| (i * 15_000, (i % 7) as f64)).collect();
        assert_eq!(add(&h, &l, &samples).unwrap(), 1000);
        let got = all(&h, "up");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, l);
        let want: Vec<Sample> = samples.iter().map(|&(t, v)| Sample::new(t, v)).collect();
        assert_eq!(got[0].1, want);
        // range filter
        let part = h
            .select(&[Matcher::equal("job", "a")], 15_000, 45_000)
            .unwrap();
        assert_eq!(part[0].1.len(), 3);
        let st = h.stats();
        assert_eq!((st.series, st.samples), (1, 1000));
        assert!(st.chunk_bytes < 1000 * 3, "{st:?}");
        assert_eq!((st.min_t, st.max_t), (Some(0), Some(999 * 15_000)));
        // chunks are cut at 120 samples and at 2h boundaries
        let g = lock(&h.series[stripe(1)]);
        let s = g.get(&1).unwrap();
        assert!(s.chunks.iter().all(|c| c.len() <= 120));
        assert!(
            s.chunks
                .iter()
                .all(|c| c.min_t() / 7_200_000 == c.max_t() / 7_200_000)
        );
    }

    #[test]
    fn duplicates_and_conflicts() {
        let h = Head::new(HeadOptions::default());
        let l = lbl("x", "a");
        add(&h, &l, &[(1000, 1.0), (2000, f64::from_bits(STALE_NAN))]).unwrap();
        // same value again: accepted silently, nothing added
        assert_eq!(
            add(&h, &l, &[(2000, f64::from_bits(STALE_NAN)), (1000, 1.0)]).unwrap(),
            0
        );
        let e = add(&h, &l, &[(2000, f64::NAN)]).unwrap_err();
        assert!(
            matches!(e, TsdbError::DuplicateSample { t: 2000, .. }),
            "{e}"
        );
        assert!(e.to_string().contains(r#"job="a""#));
        let e = add(&h, &l, &[(1000, 2.0)]).unwrap_err();
        assert!(matches!(e, TsdbError::DuplicateSample { t: 1000, .. }));
        assert_eq!(all(&h, "x")[0].1.len(), 2);
    }

    #[test]
    fn out_of_order_within_window_is_merged_beyond_is_rejected() {
        let h = Head::new(HeadOptions::default());
        let l = lbl("x", "a");
        let base = 10_000_000;
        add(&h, &l, &[(base, 1.0)]).unwrap();
        // 100 out-of-order samples, more than the raw buffer holds
        let mut rng = Rng::new(1);
        let mut ts: Vec<i64> = (1..=100).map(|i| base - i * 5000).collect();
        for i in (1..ts.len()).rev() {
            ts.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for &t in &ts {
            add(&h, &l, &[(t, t as f64)]).unwrap();
        }
        add(&h, &l, &[(base + 1000, 2.0)]).unwrap();
        let got = &all(&h, "x")[0].1;
        assert_eq!(got.len(), 102);
        assert!(got.windows(2).all(|w| w[0].t < w[1].t));
        assert_eq!(got[0], Sample::new(base - 500_000, (base - 500_000) as f64));
        // duplicate of an out-of-order sample
        assert_eq!(
            add(&h, &l, &[(base - 5000, (base - 5000) as f64)]).unwrap(),
            0
        );
        assert!(matches!(
            add(&h, &l, &[(base - 5000, 0.5)]),
            Err(TsdbError::DuplicateSample { .. })
        ));
        // beyond the 10m window
        let e = add(&h, &l, &[(base + 1000 - 600_001, 1.0)]).unwrap_err();
        assert!(matches!(e, TsdbError::OutOfBounds { .. }), "{e}");
        assert!(e.to_string().contains("x") && e.to_string().contains("600000ms"));
        // a bad sample does not take the good ones in its batch down
        let e = add(&h, &l, &[(1, 1.0), (base + 2000, 3.0)]);
        assert!(e.is_err());
        assert_eq!(
            all(&h, "x")[0].1.last(),
            Some(&Sample::new(base + 2000, 3.0))
        );
    }

    #[test]
    fn zero_window_rejects_out_of_order() {
        let h = Head::new(HeadOptions {
            out_of_order_window: Duration::ZERO,
            ..HeadOptions::default()
        });
        let l = lbl("x", "a");
        add(&h, &l, &[(5000, 1.0)]).unwrap();
        assert!(matches!(
            add(&h, &l, &[(4999, 1.0)]),
            Err(TsdbError::OutOfBounds { .. })
        ));
    }

    #[test]
    fn queries_label_names_values_series() {
        let h = Head::new(HeadOptions::default());
        add(&h, &lbl("up", "a"), &[(1000, 1.0)]).unwrap();
        add(&h, &lbl("up", "b"), &[(5000, 1.0)]).unwrap();
        add(
            &h,
            &Labels::from_pairs([("__name__", "other"), ("env", "prod")]),
            &[(1000, 1.0)],
        )
        .unwrap();
        let up = [Matcher::equal("__name__", "up")];
        assert_eq!(
            h.label_names(&[], 0, 10).unwrap(),
            vec!["__name__", "env", "job"]
        );
        assert_eq!(
            h.label_names(&up, 0, 10_000).unwrap(),
            vec!["__name__", "job"]
        );
        assert_eq!(h.label_values("job", &[], 0, 0).unwrap(), vec!["a", "b"]);
        assert_eq!(h.label_values("job", &up, 2000, 9000).unwrap(), vec!["b"]);
        assert_eq!(h.series(&up, 0, 2000).unwrap(), vec![lbl("up", "a")]);
        let re = [Matcher::new(MatchOp::Regex, "__name__", "up|other").unwrap()];
        assert_eq!(h.series(&re, 0, 10_000).unwrap().len(), 3);
        assert!(h.select(&[Matcher::equal("job", "")], 0, 1).is_err());
    }

    #[test]
    fn hash_collisions_are_told_apart() {
        let h = Head::new(HeadOptions::default());
        let a = lbl("a", "1");
        let b = lbl("b", "2");
        add(&h, &a, &[(1, 1.0)]).unwrap();
        // force b into the same lookup slot as a
        let rb = h.next_ref.fetch_add(1, Ordering::Relaxed);
        {
            let mut index = write(&h.index);
            index.add(rb, &b);
        }
        lock(&h.collisions).push((crate::hash::labels_hash(&a), rb));
        lock(&h.series[stripe(rb)]).insert(rb, MemSeries::new());
        let idx = read(&h.index);
        assert_eq!(h.find_ref(&idx, crate::hash::labels_hash(&a), &b), Some(rb));
        assert_eq!(h.find_ref(&idx, crate::hash::labels_hash(&a), &a), Some(1));
        assert_eq!(
            h.find_ref(&idx, crate::hash::labels_hash(&a), &lbl("c", "3")),
            None
        );
    }

    #[test]
    fn series_stripe_reuses_slots_and_takes_any_ref() {
        let mut st = SeriesStripe::default();
        let refs: Vec<SeriesRef> = (0..200u64)
            .map(|i| i * STRIPES as u64)
            .chain([1 << 40, u64::MAX - 63])
            .collect();
        for &r in &refs {
            st.insert(r, MemSeries::new());
            st.get_mut(&r).unwrap().open.append(r as i64 & 0xffff, 1.0);
        }
        for &r in &refs {
            assert_eq!(st.get(&r).unwrap().open.min_t(), r as i64 & 0xffff);
        }
        st.retain(|r, _| r % 3 == 0);
        let pages = st.pages.len();
        for i in 0..100u64 {
            st.insert((1000 + i) * STRIPES as u64, MemSeries::new());
        }
        // freed slots were taken before new pages
        assert_eq!(st.pages.len(), pages);
        let mut live: Vec<SeriesRef> = st.iter().map(|&(r, _)| r).collect();
        live.sort_unstable();
        let mut want: Vec<SeriesRef> = refs
            .iter()
            .copied()
            .filter(|r| r % 3 == 0)
            .chain((0..100u64).map(|i| (1000 + i) * STRIPES as u64))
            .collect();
        want.sort_unstable();
        assert_eq!(live, want);
        assert!(st.get(&(1 << 40)).is_none() && st.get(&(3 * STRIPES as u64)).is_some());
    }

    #[test]
    fn truncate_drops_old_chunks_and_empty_series() {
        let h = Head::new(HeadOptions::default());
        let old = lbl("old", "a");
        let cur = lbl("cur", "a");
        add(&h, &old, &[(1000, 1.0)]).unwrap();
        let s: Vec<(i64, f64)> = (0..500).map(|i| (i * 15_000, 1.0)).collect();
        add(&h, &cur, &s).unwrap();
        let dropped = h.truncate(3_600_000);
        assert_eq!(dropped, vec![1]);
        assert!(all(&h, "old").is_empty());
        let kept = &all(&h, "cur")[0].1;
        // exactly the samples at or after the cut
        assert_eq!(kept.len(), 500 - 240);
        assert_eq!(kept[0].t, 3_600_000);
        assert!(matches!(
            add(&h, &cur, &[(3_599_999, 1.0)]),
            Err(TsdbError::OutOfBounds { .. })
        ));
        // the dropped series can come back as a new one
        add(&h, &old, &[(7_000_000, 1.0)]).unwrap();
        assert_eq!(all(&h, "old")[0].1.len(), 1);
        assert_eq!(h.stats().series, 2);
    }

    #[test]
    fn metadata_store() {
        let h = Head::new(HeadOptions::default());
        let md = MetricMetadata {
            metric_type: MetricType::Counter,
            help: "Requests.".into(),
            unit: String::new(),
        };
        assert!(h.set_metadata("reqs", md.clone()));
        assert!(!h.set_metadata("reqs", md.clone()));
        h.set_metadata(
            "temp",
            MetricMetadata {
                metric_type: MetricType::parse("gauge"),
                help: String::new(),
                unit: "celsius".into(),
            },
        );
        assert_eq!(h.metadata(Some("reqs")), vec![("reqs".into(), md)]);
        let names: Vec<String> = h.metadata(None).into_iter().map(|x| x.0).collect();
        assert_eq!(names, vec!["reqs", "temp"]);
        assert_eq!(
            MetricType::from_code(MetricType::Gauge.code()),
            MetricType::Gauge
        );
    }

    #[test]
    fn invalid_labels_are_rejected() {
        let h = Head::new(HeadOptions::default());
        let e = add(&h, &Labels::new(), &[(1, 1.0)]).unwrap_err();
        assert!(matches!(e, TsdbError::InvalidLabels { .. }));
    }
}
