//! Write-ahead log: numbered segment files of CRC-framed records, and
//! checkpoints that let old segments go. The framing is specified in
//! `FORMAT.md`.
//!
//! A write is durable as far as the fsync policy says once
//! [`Wal::commit`] returns. Replay tolerates a torn record at the very end
//! of the newest segment (a crash mid-write) by truncating it; damage
//! anywhere else is an error naming the file and offset, because silently
//! skipping it would drop acknowledged data.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pharos_model::{Label, Labels};

use crate::crc32c;
use crate::error::TsdbError;
use crate::head::{MetricMetadata, MetricType};
use crate::index::SeriesRef;

pub const REC_SERIES: u8 = 1;
pub const REC_SAMPLES: u8 = 2;
pub const REC_METADATA: u8 = 3;
/// type (1) + payload length (4) + CRC (4).
pub const FRAME_HEADER: usize = 9;
/// Records larger than this are refused on read as corruption; writers
/// split their batches well below it.
pub const MAX_RECORD: usize = 256 << 20;
/// Entries per record when writing checkpoints.
const CHECKPOINT_BATCH: usize = 10_000;

/// When the log is flushed to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fsync before every append returns: nothing acknowledged is lost even
    /// on power failure. Costs one fsync (0.1–10 ms depending on the disk)
    /// per append call, so callers batch samples per call (a remote_write
    /// request is one call).
    Always,
    /// fsync at most this often, checked at each append; a crash of the
    /// machine (not the process, whose writes are already in the page
    /// cache) loses at most this much.
    Interval(Duration),
    /// Leave flushing to the OS.
    Never,
}

#[derive(Debug, Clone)]
pub struct WalOptions {
    /// A new segment is started before a record would grow the current one
    /// past this size.
    pub segment_size: u64,
    pub fsync: FsyncPolicy,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            segment_size: 128 << 20,
            fsync: FsyncPolicy::Always,
        }
    }
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq)]
pub enum WalRecord {
    Series(Vec<(SeriesRef, Labels)>),
    Samples(Vec<(SeriesRef, i64, f64)>),
    Metadata(Vec<(String, MetricMetadata)>),
}

pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    /// Shared so group commit can fsync without holding the log's lock.
    file: Arc<File>,
    /// Records written since open; group commit compares positions.
    written: u64,
    seg: u32,
    seg_size: u64,
    last_sync: Instant,
    dirty: bool,
    buf: Vec<u8>,
    /// Set when the log may no longer match what was acknowledged (a
    /// failed fsync loses pages silently on Linux; a failed write that
    /// could not be rolled back leaves a torn record mid-segment). Writes
    /// are refused from then on until the log is reopened.
    broken: Option<String>,
}

fn segment_name(n: u32) -> String {
    format!("{n:08}")
}

fn checkpoint_name(n: u32) -> String {
    format!("checkpoint.{n:08}")
}

/// Segment numbers and checkpoint numbers present in `dir`, sorted.
fn list_dir(dir: &Path) -> Result<(Vec<u32>, Vec<u32>), TsdbError> {
    let mut segs = Vec::new();
    let mut cps = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok((segs, cps)),
        Err(e) => return Err(TsdbError::io("read dir", dir, e)),
    };
    for ent in rd {
        let ent = ent.map_err(|e| TsdbError::io("read dir", dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 8
            && let Ok(n) = name.parse::<u32>()
        {
            segs.push(n);
        } else if let Some(rest) = name.strip_prefix("checkpoint.")
            && rest.len() == 8
            && let Ok(n) = rest.parse::<u32>()
        {
            cps.push(n);
        }
    }
    segs.sort_unstable();
    cps.sort_unstable();
    Ok((segs, cps))
}

fn sync_dir(dir: &Path) -> Result<(), TsdbError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| TsdbError::io("fsync dir", dir, e))
}

impl Wal {
    /// Opens the log for writing in `dir` (created if missing), starting a
    /// fresh segment after the newest existing one. Replay first with
    /// [`Wal::replay`].
    pub fn open(dir: &Path, opts: WalOptions) -> Result<Self, TsdbError> {
        fs::create_dir_all(dir).map_err(|e| TsdbError::io("create dir", dir, e))?;
        let (segs, cps) = list_dir(dir)?;
        let next = segs
            .last()
            .copied()
            .max(cps.last().copied())
            .map_or(1, |n| n + 1);
        let file = Arc::new(Self::create_segment(dir, next)?);
        Ok(Self {
            dir: dir.to_owned(),
            opts,
            file,
            written: 0,
            seg: next,
            seg_size: 0,
            last_sync: Instant::now(),
            dirty: false,
            buf: Vec::with_capacity(64 << 10),
            broken: None,
        })
    }

    fn create_segment(dir: &Path, n: u32) -> Result<File, TsdbError> {
        let path = dir.join(segment_name(n));
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| TsdbError::io("create segment", &path, e))?;
        sync_dir(dir)?;
        Ok(f)
    }

    fn check(&self) -> Result<(), TsdbError> {
        match &self.broken {
            Some(why) => Err(TsdbError::WalFailed(why.clone())),
            None => Ok(()),
        }
    }

    /// The segment being written.
    pub fn current_segment(&self) -> u32 {
        self.seg
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_series(&mut self, series: &[(SeriesRef, &Labels)]) -> Result<(), TsdbError> {
        for part in series.chunks(CHECKPOINT_BATCH) {
            self.buf.clear();
            encode_series(&mut self.buf, part.iter().map(|(r, l)| (*r, *l)));
            self.write_record(REC_SERIES)?;
        }
        Ok(())
    }

    pub fn log_samples(&mut self, samples: &[(SeriesRef, i64, f64)]) -> Result<(), TsdbError> {
        for part in samples.chunks(1 << 20) {
            self.buf.clear();
            encode_samples(&mut self.buf, part);
            self.write_record(REC_SAMPLES)?;
        }
        Ok(())
    }

    pub fn log_metadata(&mut self, md: &[(&str, &MetricMetadata)]) -> Result<(), TsdbError> {
        for part in md.chunks(CHECKPOINT_BATCH) {
            self.buf.clear();
            encode_metadata(&mut self.buf, part.iter().copied());
            self.write_record(REC_METADATA)?;
        }
        Ok(())
    }

    /// Frames `self.buf` as one record and writes it with a single write
    /// call, so a crash leaves at most one torn record at the tail.
    fn write_record(&mut self, kind: u8) -> Result<(), TsdbError> {
        self.check()?;
        let frame_len = (FRAME_HEADER + self.buf.len()) as u64;
        if self.seg_size > 0 && self.seg_size + frame_len > self.opts.segment_size {
            self.roll()?;
        }
        let mut frame = Vec::with_capacity(FRAME_HEADER + self.buf.len());
        frame.push(kind);
        frame.extend_from_slice(&(self.buf.len() as u32).to_le_bytes());
        let crc = crc32c::update(crc32c::checksum(&[kind]), &self.buf);
        frame.extend_from_slice(&crc.to_le_bytes());
        frame.extend_from_slice(&self.buf);
        let path = self.dir.join(segment_name(self.seg));
        if let Err(e) = (&*self.file).write_all(&frame) {
            // cut the partial record off so later records stay readable
            if let Err(e2) = self.file.set_len(self.seg_size) {
                self.broken = Some(format!("write failed ({e}) and rollback failed ({e2})"));
            }
            return Err(TsdbError::io("write wal", &path, e));
        }
        self.seg_size += frame_len;
        self.dirty = true;
        self.written += 1;
        Ok(())
    }

    /// Makes everything written so far durable as the fsync policy says.
    pub fn commit(&mut self) -> Result<(), TsdbError> {
        let due = match self.opts.fsync {
            FsyncPolicy::Always => true,
            FsyncPolicy::Interval(d) => self.last_sync.elapsed() >= d,
            FsyncPolicy::Never => false,
        };
        if due && self.dirty {
            self.sync()?;
        }
        Ok(())
    }

    /// Like [`Wal::commit`], except that under [`FsyncPolicy::Always`] it
    /// does not fsync but returns the position the caller must see synced
    /// (through [`Wal::sync_target`] and [`Wal::synced`]) before
    /// acknowledging, so that one fsync can cover many writers.
    pub(crate) fn commit_deferred(&mut self) -> Result<Option<u64>, TsdbError> {
        if self.opts.fsync == FsyncPolicy::Always {
            self.check()?;
            return Ok(self.dirty.then_some(self.written));
        }
        self.commit().map(|()| None)
    }

    /// The file to fsync and the position an fsync of it covers: records
    /// of earlier segments were synced when their segment was closed.
    pub(crate) fn sync_target(&self) -> Result<(Arc<File>, u64), TsdbError> {
        self.check()?;
        Ok((Arc::clone(&self.file), self.written))
    }

    /// Records the outcome of an fsync done through [`Wal::sync_target`].
    pub(crate) fn synced(&mut self, upto: u64, res: std::io::Result<()>) -> Result<(), TsdbError> {
        match res {
            Ok(()) => {
                if upto == self.written {
                    self.dirty = false;
                }
                self.last_sync = Instant::now();
                Ok(())
            }
            Err(e) => {
                self.broken = Some(format!("fsync failed: {e}"));
                Err(TsdbError::io(
                    "fsync wal",
                    self.dir.join(segment_name(self.seg)),
                    e,
                ))
            }
        }
    }

    /// fsyncs the current segment regardless of policy.
    pub fn sync(&mut self) -> Result<(), TsdbError> {
        self.check()?;
        if let Err(e) = self.file.sync_data() {
            self.broken = Some(format!("fsync failed: {e}"));
            return Err(TsdbError::io(
                "fsync wal",
                self.dir.join(segment_name(self.seg)),
                e,
            ));
        }
        self.last_sync = Instant::now();
        self.dirty = false;
        Ok(())
    }

    /// Closes the current segment (synced) and starts the next.
    pub fn roll(&mut self) -> Result<(), TsdbError> {
        self.sync()?;
        let next = self.seg + 1;
        self.file = Arc::new(Self::create_segment(&self.dir, next)?);
        self.seg = next;
        self.seg_size = 0;
        Ok(())
    }

    /// Reads the newest checkpoint and then every later segment in order,
    /// calling `visit` per record. A torn record at the end of the last
    /// segment is cut off (logged); other damage is an error.
    pub fn replay(dir: &Path, mut visit: impl FnMut(WalRecord)) -> Result<ReplayStats, TsdbError> {
        let (segs, cps) = list_dir(dir)?;
        let mut stats = ReplayStats::default();
        let from = match cps.last() {
            Some(&cp) => {
                let cdir = dir.join(checkpoint_name(cp));
                let (csegs, _) = list_dir(&cdir)?;
                for s in csegs {
                    let path = cdir.join(segment_name(s));
                    stats.records += read_segment(&path, false, &mut visit)?.0;
                }
                stats.checkpoint = Some(cp);
                cp + 1
            }
            None => 0,
        };
        let todo: Vec<u32> = segs.into_iter().filter(|&s| s >= from).collect();
        for w in todo.windows(2) {
            if w[1] != w[0] + 1 {
                return Err(TsdbError::Corrupt {
                    file: dir.join(segment_name(w[0] + 1)),
                    offset: 0,
                    reason: "segment missing from the sequence".into(),
                });
            }
        }
        for (i, &s) in todo.iter().enumerate() {
            let path = dir.join(segment_name(s));
            let (n, truncated) = read_segment(&path, i + 1 == todo.len(), &mut visit)?;
            stats.records += n;
            stats.segments += 1;
            stats.truncated_bytes += truncated;
        }
        Ok(stats)
    }

    /// Writes a checkpoint of segments up to the current one (which is
    /// closed first) and deletes them: series for which `keep_series` is
    /// true, their samples at or after `min_t`, and the latest metadata per
    /// metric. Afterwards replay starts from the checkpoint.
    pub fn checkpoint(
        &mut self,
        keep_series: impl Fn(SeriesRef) -> bool,
        min_t: i64,
    ) -> Result<u32, TsdbError> {
        let last = self.close_segment()?;
        Self::write_checkpoint(&self.dir, last, keep_series, min_t)
    }

    /// Closes the current segment and returns its number, so a checkpoint
    /// up to it can be written with [`Wal::write_checkpoint`] while
    /// appends continue in the next segment.
    pub fn close_segment(&mut self) -> Result<u32, TsdbError> {
        self.roll()?;
        Ok(self.seg - 1)
    }

    /// Writes a checkpoint of the closed segments up to `last` in `dir`
    /// (see [`Wal::checkpoint`]) and deletes what it replaces. Needs no
    /// access to the writer; callers serialize checkpoints.
    pub fn write_checkpoint(
        dir: &Path,
        last: u32,
        keep_series: impl Fn(SeriesRef) -> bool,
        min_t: i64,
    ) -> Result<u32, TsdbError> {
        let mut series: Vec<(SeriesRef, Labels)> = Vec::new();
        let mut samples: Vec<(SeriesRef, i64, f64)> = Vec::new();
        let mut md: Vec<(String, MetricMetadata)> = Vec::new();
        let (segs, cps) = list_dir(dir)?;
        let mut visit = |rec: WalRecord| match rec {
            WalRecord::Series(s) => series.extend(s.into_iter().filter(|(r, _)| keep_series(*r))),
            WalRecord::Samples(s) => samples.extend(
                s.into_iter()
                    .filter(|&(r, t, _)| t >= min_t && keep_series(r)),
            ),
            WalRecord::Metadata(m) => md.extend(m),
        };
        let from = match cps.last() {
            Some(&cp) => {
                let cdir = dir.join(checkpoint_name(cp));
                let (csegs, _) = list_dir(&cdir)?;
                for s in csegs {
                    read_segment(&cdir.join(segment_name(s)), false, &mut visit)?;
                }
                cp + 1
            }
            None => 0,
        };
        for s in segs.iter().copied().filter(|&s| s >= from && s <= last) {
            read_segment(&dir.join(segment_name(s)), false, &mut visit)?;
        }
        // keep only the newest metadata per metric
        let mut latest: std::collections::HashMap<String, MetricMetadata> = Default::default();
        for (k, v) in md {
            latest.insert(k, v);
        }
        let tmp = dir.join(format!("{}.tmp", checkpoint_name(last)));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| TsdbError::io("remove", &tmp, e))?;
        }
        fs::create_dir_all(&tmp).map_err(|e| TsdbError::io("create dir", &tmp, e))?;
        let seg_path = tmp.join(segment_name(0));
        let mut out = Vec::new();
        let mut buf = Vec::new();
        let mut frame = |kind: u8, payload: &[u8]| {
            out.push(kind);
            out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            let crc = crc32c::update(crc32c::checksum(&[kind]), payload);
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(payload);
        };
        for part in series.chunks(CHECKPOINT_BATCH) {
            buf.clear();
            encode_series(&mut buf, part.iter().map(|(r, l)| (*r, l)));
            frame(REC_SERIES, &buf);
        }
        for part in samples.chunks(CHECKPOINT_BATCH * 10) {
            buf.clear();
            encode_samples(&mut buf, part);
            frame(REC_SAMPLES, &buf);
        }
        let mds: Vec<(&str, &MetricMetadata)> =
            latest.iter().map(|(k, v)| (k.as_str(), v)).collect();
        for part in mds.chunks(CHECKPOINT_BATCH) {
            buf.clear();
            encode_metadata(&mut buf, part.iter().copied());
            frame(REC_METADATA, &buf);
        }
        let mut f = File::create(&seg_path).map_err(|e| TsdbError::io("create", &seg_path, e))?;
        f.write_all(&out)
            .and_then(|()| f.sync_all())
            .map_err(|e| TsdbError::io("write checkpoint", &seg_path, e))?;
        sync_dir(&tmp)?;
        let final_dir = dir.join(checkpoint_name(last));
        fs::rename(&tmp, &final_dir).map_err(|e| TsdbError::io("rename", &final_dir, e))?;
        sync_dir(dir)?;
        // from here on the checkpoint replaces what it covers; failures
        // below leave garbage that the next checkpoint removes
        for s in segs.into_iter().filter(|&s| s <= last) {
            let p = dir.join(segment_name(s));
            if let Err(e) = fs::remove_file(&p) {
                tracing::warn!(path = %p.display(), error = %e, "could not remove wal segment");
            }
        }
        for cp in cps.into_iter().filter(|&c| c < last) {
            let p = dir.join(checkpoint_name(cp));
            if let Err(e) = fs::remove_dir_all(&p) {
                tracing::warn!(path = %p.display(), error = %e, "could not remove old checkpoint");
            }
        }
        Ok(last)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub records: usize,
    pub segments: usize,
    pub checkpoint: Option<u32>,
    /// Bytes cut off a torn tail.
    pub truncated_bytes: u64,
}

/// Reads one segment file. Returns the record count and how many bytes of
/// torn tail were truncated (only when `is_last`).
fn read_segment(
    path: &Path,
    is_last: bool,
    visit: &mut impl FnMut(WalRecord),
) -> Result<(usize, u64), TsdbError> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(|e| TsdbError::io("read wal", path, e))?;
    let corrupt = |offset: usize, reason: String| TsdbError::Corrupt {
        file: path.to_owned(),
        offset: offset as u64,
        reason,
    };
    let mut off = 0usize;
    let mut n = 0usize;
    while off < data.len() {
        let rest = &data[off..];
        // what a crash mid-write leaves: a short frame at the very end, or
        // a frame whose bytes never all reached the disk (zero-filled or
        // failing its CRC) with nothing after it
        let torn = |reason: &str| -> Result<(usize, u64), TsdbError> {
            if !is_last {
                return Err(corrupt(off, reason.to_owned()));
            }
            let cut = (data.len() - off) as u64;
            tracing::warn!(
                segment = %path.display(),
                offset = off,
                bytes = cut,
                reason,
                "truncating torn wal tail"
            );
            OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(off as u64).and_then(|()| f.sync_all()))
                .map_err(|e| TsdbError::io("truncate wal", path, e))?;
            Ok((n, cut))
        };
        if rest.len() < FRAME_HEADER {
            return torn("short record header");
        }
        if rest.iter().all(|&b| b == 0) {
            return torn("zero-filled tail");
        }
        let kind = rest[0];
        let len = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let crc = u32::from_le_bytes([rest[5], rest[6], rest[7], rest[8]]);
        if len > MAX_RECORD {
            return Err(corrupt(off, format!("record length {len} too large")));
        }
        let end = FRAME_HEADER + len;
        if rest.len() < end {
            return torn("record runs past end of file");
        }
        let payload = &rest[FRAME_HEADER..end];
        if crc32c::update(crc32c::checksum(&[kind]), payload) != crc {
            if rest.len() == end {
                return torn("checksum mismatch in last record");
            }
            return Err(corrupt(off, "checksum mismatch".into()));
        }
        let rec = decode_record(kind, payload).map_err(|r| corrupt(off, r))?;
        visit(rec);
        n += 1;
        off += end;
    }
    Ok((n, 0))
}

pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub(crate) fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

fn encode_series<'a>(
    buf: &mut Vec<u8>,
    series: impl ExactSizeIterator<Item = (SeriesRef, &'a Labels)>,
) {
    put_uvarint(buf, series.len() as u64);
    for (r, l) in series {
        put_uvarint(buf, r);
        put_uvarint(buf, l.len() as u64);
        for x in l {
            put_str(buf, &x.name);
            put_str(buf, &x.value);
        }
    }
}

fn encode_samples(buf: &mut Vec<u8>, samples: &[(SeriesRef, i64, f64)]) {
    put_uvarint(buf, samples.len() as u64);
    let base = samples.first().map_or(0, |s| s.1);
    put_varint(buf, base);
    for &(r, t, v) in samples {
        put_uvarint(buf, r);
        put_varint(buf, t.wrapping_sub(base));
        buf.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

fn encode_metadata<'a>(
    buf: &mut Vec<u8>,
    md: impl ExactSizeIterator<Item = (&'a str, &'a MetricMetadata)>,
) {
    put_uvarint(buf, md.len() as u64);
    for (name, m) in md {
        put_str(buf, name);
        buf.push(m.metric_type.code());
        put_str(buf, &m.help);
        put_str(buf, &m.unit);
    }
}

/// A cursor over a record payload; every read checks bounds.
pub(crate) struct Dec<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.data.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    pub(crate) fn varint(&mut self) -> Result<i64, String> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self.data.get(self.pos..end).ok_or("truncated field")?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u64_le(&mut self) -> Result<u64, String> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn str(&mut self) -> Result<String, String> {
        let n = self.uvarint()? as usize;
        let b = self.bytes(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| "invalid utf-8".to_string())
    }

    /// A count of entries, each at least `min_size` bytes, checked against
    /// what is left so a corrupt count cannot trigger a huge allocation.
    pub(crate) fn count(&mut self, min_size: usize) -> Result<usize, String> {
        let n = self.uvarint()? as usize;
        if n.saturating_mul(min_size) > self.data.len() - self.pos {
            return Err(format!("count {n} exceeds record size"));
        }
        Ok(n)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn done(&self) -> Result<(), String> {
        if self.pos == self.data.len() {
            Ok(())
        } else {
            Err("trailing bytes in record".into())
        }
    }
}

fn decode_record(kind: u8, payload: &[u8]) -> Result<WalRecord, String> {
    let mut d = Dec::new(payload);
    let rec = match kind {
        REC_SERIES => {
            let n = d.count(2)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let r = d.uvarint()?;
                let nl = d.count(2)?;
                let mut labels = Vec::with_capacity(nl);
                for _ in 0..nl {
                    let name = d.str()?;
                    let value = d.str()?;
                    labels.push(Label { name, value });
                }
                let l = Labels::from_sorted(labels)
                    .map_err(|n| format!("series {r}: labels not sorted at {n:?}"))?;
                out.push((r, l));
            }
            WalRecord::Series(out)
        }
        REC_SAMPLES => {
            let n = d.count(10)?;
            let base = d.varint()?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let r = d.uvarint()?;
                let t = base.wrapping_add(d.varint()?);
                let v = f64::from_bits(d.u64_le()?);
                out.push((r, t, v));
            }
            WalRecord::Samples(out)
        }
        REC_METADATA => {
            let n = d.count(4)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let name = d.str()?;
                let metric_type = MetricType::from_code(d.u8()?);
                let help = d.str()?;
                let unit = d.str()?;
                out.push((
                    name,
                    MetricMetadata {
                        metric_type,
                        help,
                        unit,
                    },
                ));
            }
            WalRecord::Metadata(out)
        }
        other => return Err(format!("unknown record type {other}")),
    };
    d.done()?;
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_model::STALE_NAN;

    fn opts() -> WalOptions {
        WalOptions {
            segment_size: 1 << 20,
            fsync: FsyncPolicy::Never,
        }
    }

    fn replay_all(dir: &Path) -> Result<(Vec<WalRecord>, ReplayStats), TsdbError> {
        let mut recs = Vec::new();
        let st = Wal::replay(dir, |r| recs.push(r))?;
        Ok((recs, st))
    }

    fn write_some(dir: &Path) -> Vec<WalRecord> {
        let mut w = Wal::open(dir, opts()).unwrap();
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        w.log_series(&[(1, &l)]).unwrap();
        let samples = vec![
            (1, 1000, 1.0),
            (1, 2000, f64::from_bits(STALE_NAN)),
            (1, -5, -0.0),
        ];
        w.log_samples(&samples).unwrap();
        let md = MetricMetadata {
            metric_type: MetricType::Gauge,
            help: "h".into(),
            unit: "u".into(),
        };
        w.log_metadata(&[("up", &md)]).unwrap();
        w.commit().unwrap();
        vec![
            WalRecord::Series(vec![(1, l)]),
            WalRecord::Samples(samples),
            WalRecord::Metadata(vec![("up".into(), md)]),
        ]
    }

    fn bits(recs: &[WalRecord]) -> String {
        // compare floats by bits (NaN != NaN otherwise)
        format!("{recs:?}")
    }

    #[test]
    fn round_trip_and_segment_numbering() {
        let dir = tempfile::tempdir().unwrap();
        let want = write_some(dir.path());
        let (got, st) = replay_all(dir.path()).unwrap();
        assert_eq!(bits(&got), bits(&want));
        if let WalRecord::Samples(s) = &got[1] {
            assert_eq!(s[1].2.to_bits(), STALE_NAN);
            assert_eq!(s[2].2.to_bits(), (-0.0f64).to_bits());
        }
        assert_eq!(st.segments, 1);
        // reopening continues in a new segment
        let w = Wal::open(dir.path(), opts()).unwrap();
        assert_eq!(w.current_segment(), 2);
    }

    #[test]
    fn segments_roll_at_size_cap() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Wal::open(
            dir.path(),
            WalOptions {
                segment_size: 4096,
                fsync: FsyncPolicy::Always,
            },
        )
        .unwrap();
        let batch: Vec<(SeriesRef, i64, f64)> = (0..100).map(|i| (1, i, i as f64)).collect();
        for _ in 0..20 {
            w.log_samples(&batch).unwrap();
            w.commit().unwrap();
        }
        assert!(w.current_segment() > 5);
        let (got, st) = replay_all(dir.path()).unwrap();
        assert_eq!(got.len(), 20);
        assert_eq!(st.segments as u32, w.current_segment());
    }

    fn last_segment(dir: &Path) -> PathBuf {
        let (segs, _) = list_dir(dir).unwrap();
        dir.join(segment_name(*segs.last().unwrap()))
    }

    #[test]
    fn torn_tail_is_truncated() {
        for cut in [1usize, 5, 9, 17] {
            let dir = tempfile::tempdir().unwrap();
            let want = write_some(dir.path());
            let seg = last_segment(dir.path());
            let len = fs::metadata(&seg).unwrap().len();
            let f = OpenOptions::new().write(true).open(&seg).unwrap();
            f.set_len(len - cut as u64).unwrap();
            let (got, st) = replay_all(dir.path()).unwrap();
            assert_eq!(bits(&got), bits(&want[..2]), "cut {cut}");
            assert!(st.truncated_bytes > 0);
            // the file was repaired: a second replay is clean
            let (again, st2) = replay_all(dir.path()).unwrap();
            assert_eq!(again.len(), 2);
            assert_eq!(st2.truncated_bytes, 0);
        }
        // zero-filled tail (blocks allocated but never written)
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path());
        let seg = last_segment(dir.path());
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[0u8; 100]).unwrap();
        let (got, _) = replay_all(dir.path()).unwrap();
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn corruption_in_the_middle_is_an_error_naming_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path());
        let seg = last_segment(dir.path());
        let mut data = fs::read(&seg).unwrap();
        data[FRAME_HEADER + 3] ^= 0x40; // inside the first record's payload
        fs::write(&seg, &data).unwrap();
        let err = replay_all(dir.path()).unwrap_err();
        match &err {
            TsdbError::Corrupt { file, offset, .. } => {
                assert_eq!(file, &seg);
                assert_eq!(*offset, 0);
            }
            e => panic!("unexpected {e}"),
        }
        assert!(err.to_string().contains("00000001"));
    }

    #[test]
    fn damaged_older_segment_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path());
        write_some(dir.path());
        let first = dir.path().join(segment_name(1));
        let len = fs::metadata(&first).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&first)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        assert!(matches!(
            replay_all(dir.path()),
            Err(TsdbError::Corrupt { .. })
        ));
    }

    #[test]
    fn checkpoint_keeps_live_series_and_recent_samples() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Wal::open(dir.path(), opts()).unwrap();
        let a = Labels::from_pairs([("__name__", "a")]);
        let b = Labels::from_pairs([("__name__", "b")]);
        w.log_series(&[(1, &a), (2, &b)]).unwrap();
        w.log_samples(&[(1, 10, 1.0), (2, 10, 2.0), (1, 100, 3.0), (2, 100, 4.0)])
            .unwrap();
        let md = MetricMetadata {
            metric_type: MetricType::Counter,
            help: "old".into(),
            unit: String::new(),
        };
        let md2 = MetricMetadata {
            help: "new".into(),
            ..md.clone()
        };
        w.log_metadata(&[("a", &md)]).unwrap();
        w.log_metadata(&[("a", &md2)]).unwrap();
        let cp = w.checkpoint(|r| r == 1, 50).unwrap();
        assert_eq!(cp, 1);
        w.log_samples(&[(1, 200, 5.0)]).unwrap();
        w.commit().unwrap();
        // a second checkpoint folds in the first
        let cp2 = w.checkpoint(|_| true, 0).unwrap();
        assert_eq!(cp2, 2);
        w.log_samples(&[(1, 300, 6.0)]).unwrap();
        drop(w);
        let (segs, cps) = list_dir(dir.path()).unwrap();
        assert_eq!(cps, vec![2]);
        assert_eq!(segs, vec![3]);
        let (got, st) = replay_all(dir.path()).unwrap();
        assert_eq!(st.checkpoint, Some(2));
        assert_eq!(
            bits(&got),
            bits(&[
                WalRecord::Series(vec![(1, a)]),
                WalRecord::Samples(vec![(1, 100, 3.0), (1, 200, 5.0)]),
                WalRecord::Metadata(vec![("a".into(), md2)]),
                WalRecord::Samples(vec![(1, 300, 6.0)]),
            ])
        );
    }

    #[test]
    fn garbage_payloads_never_panic() {
        let mut rng = crate::testutil::Rng::new(4);
        for _ in 0..2000 {
            let len = rng.below(64) as usize;
            let b: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            for kind in [REC_SERIES, REC_SAMPLES, REC_METADATA, 9] {
                let _ = decode_record(kind, &b);
            }
        }
        assert!(decode_record(REC_SAMPLES, &[0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    #[test]
    fn a_crash_at_any_byte_replays_a_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let want = write_some(dir.path());
        let seg = last_segment(dir.path());
        let full = fs::read(&seg).unwrap();
        for cut in 0..full.len() {
            fs::write(&seg, &full[..cut]).unwrap();
            let (got, _) = replay_all(dir.path()).unwrap();
            assert!(got.len() < want.len());
            assert_eq!(bits(&got), bits(&want[..got.len()]), "cut {cut}");
        }
    }
}
