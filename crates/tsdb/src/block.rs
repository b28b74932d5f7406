//! Immutable blocks: the samples of a time range written to a directory
//! (`meta.json`, `index`, `chunks`) that a reader can query without the
//! head. Layout in `FORMAT.md`. [`crate::Tsdb`] cuts them from the head and
//! keeps track of them (local, uploaded, cached) in its catalogue.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use pharos_model::{Label, Labels, Matcher, Sample};
use serde::{Deserialize, Serialize};

use crate::chunk::{Chunk, ChunkAppender};
use crate::crc32c;
use crate::error::TsdbError;
use crate::index::{Index, SeriesRef};
use crate::wal::{Dec, put_uvarint, put_varint};

pub const INDEX_MAGIC: &[u8; 4] = b"PHXI";
pub const CHUNKS_MAGIC: &[u8; 4] = b"PHXC";
/// The version written. Version 2 (see `FORMAT.md`) stores chunk times
/// relative to the block and to each other, chunk lengths instead of file
/// offsets, each series' labels after those it shares with the previous
/// series, and block chunks without their first timestamp (the index
/// holds it): about 20 bytes less per series and block than version 1,
/// which is still read. Version 3 is version 2 with the index body
/// DEFLATE-compressed: label sets repeat from host to host, and the index
/// shrinks ~15x (from ~7 % of a block of node-exporter series to under
/// 1 %); versions 1 and 2 are still read.
pub const FORMAT_VERSION: u8 = 3;
/// The first version, still read.
const FORMAT_V1: u8 = 1;
/// Version 2 (uncompressed index), still read.
const FORMAT_V2: u8 = 2;
/// A version 3 index body inflates to at most this many bytes (a guard
/// against corrupt or hostile data; 10 M series take ~300 MB).
const MAX_INDEX_BODY: u64 = 4 << 30;
/// Bytes 4..12 of a chunk: its first timestamp, which a version 2 chunks
/// file leaves out.
const CHUNK_T0: std::ops::Range<usize> = 4..12;
/// Samples per chunk in blocks: a 2 h block of 15 s scrapes is one chunk
/// per series. Four times the head's 120, because a block's chunks are
/// written once and read many times: fewer chunk headers, index entries
/// and encoder restarts (~0.15 B/sample less on the benchmark's data), at
/// the cost of decoding a whole chunk for a query that needs part of it.
const BLOCK_CHUNK_SAMPLES: usize = 480;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    pub num_series: u64,
    pub num_chunks: u64,
    pub num_samples: u64,
}

/// `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub ulid: String,
    /// Inclusive lower bound of the samples' timestamps (ms).
    pub min_time: i64,
    /// Exclusive upper bound (ms), as in Prometheus.
    pub max_time: i64,
    pub stats: BlockStats,
    pub version: u32,
    /// How many merges produced this block (1 for a block cut from the
    /// head).
    pub compaction_level: u32,
    /// ULIDs of every block merged into this one, directly or through
    /// earlier merges. A catalogue that sees a block listed here ignores
    /// (and eventually deletes) it: this is what makes "upload the merged
    /// block, then delete its sources" safe to interrupt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

/// The files of a block, in upload order: `meta.json` is last, so a block
/// whose meta is in object storage is complete there.
pub const BLOCK_FILES: [&str; 3] = ["index", "chunks", "meta.json"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChunkMeta {
    min_t: i64,
    max_t: i64,
    offset: u64,
    /// Length of the record in the chunks file (version 2; 0 if unknown).
    len: u64,
}

/// A Crockford base32 ULID: 48 bits of milliseconds, then 80 random bits,
/// so block directories sort by creation time.
fn new_ulid() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    // std's RandomState is seeded from the OS per instance
    let r1 = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let r2 = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let hi = u128::from(ms & 0xffff_ffff_ffff) << 80;
    let lo = (u128::from(r1) << 16 | u128::from(r2 & 0xffff)) & ((1u128 << 80) - 1);
    let v = hi | lo;
    (0..26)
        .map(|i| ALPHABET[((v >> (125 - 5 * i)) & 0x1f) as usize] as char)
        .collect()
}

fn sync_dir(dir: &Path) -> Result<(), TsdbError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| TsdbError::io("fsync dir", dir, e))
}

/// Writes a block of `series` (sorted by labels, samples sorted by time,
/// all within `[min_time, max_time)`) into a new directory under `parent`
/// and returns its meta. The directory appears atomically (written as
/// `<ulid>.tmp`, then renamed).
pub fn write_block(
    parent: &Path,
    min_time: i64,
    max_time: i64,
    compaction_level: u32,
    series: impl IntoIterator<Item = (Labels, Vec<Sample>)>,
) -> Result<BlockMeta, TsdbError> {
    write_block_from(
        parent,
        min_time,
        max_time,
        compaction_level,
        Vec::new(),
        series,
    )
}

/// [`write_block`] for a merge: `sources` goes into the meta.
fn write_block_from(
    parent: &Path,
    min_time: i64,
    max_time: i64,
    compaction_level: u32,
    sources: Vec<String>,
    series: impl IntoIterator<Item = (Labels, Vec<Sample>)>,
) -> Result<BlockMeta, TsdbError> {
    let ulid = new_ulid();
    let tmp = parent.join(format!("{ulid}.tmp"));
    fs::create_dir_all(&tmp).map_err(|e| TsdbError::io("create dir", &tmp, e))?;
    let chunks_path = tmp.join("chunks");
    let f = File::create(&chunks_path).map_err(|e| TsdbError::io("create", &chunks_path, e))?;
    let mut chunks_out = BufWriter::new(f);
    let mut offset = 0u64;
    let werr = |e| TsdbError::io("write", &chunks_path, e);
    chunks_out.write_all(CHUNKS_MAGIC).map_err(werr)?;
    chunks_out.write_all(&[FORMAT_VERSION]).map_err(werr)?;
    offset += 5;

    let mut entries: Vec<(Labels, Vec<ChunkMeta>)> = Vec::new();
    let mut stats = BlockStats {
        num_series: 0,
        num_chunks: 0,
        num_samples: 0,
    };
    let mut prev: Option<Labels> = None;
    let mut rec = Vec::new();
    for (labels, samples) in series {
        if let Some(p) = &prev
            && *p >= labels
        {
            return Err(TsdbError::InvalidLabels {
                series: labels.to_string(),
                reason: "block series must be sorted and unique".into(),
            });
        }
        prev = Some(labels.clone());
        let samples: Vec<Sample> = samples
            .into_iter()
            .filter(|s| s.t >= min_time && s.t < max_time)
            .collect();
        if samples.is_empty() {
            continue;
        }
        let mut metas = Vec::new();
        for part in samples.chunks(BLOCK_CHUNK_SAMPLES) {
            let mut a = ChunkAppender::new();
            for s in part {
                a.append(s.t, s.v);
            }
            let (chunk, _) = a.finish_best();
            // the index holds the first timestamp (the chunk's minimum, as
            // its samples are sorted): the record leaves it out
            let bytes = chunk.bytes();
            if bytes.get(CHUNK_T0) != Some(&chunk.min_t().to_be_bytes()[..]) {
                return Err(TsdbError::InvalidLabels {
                    series: labels.to_string(),
                    reason: "block chunk does not start at its minimum time".into(),
                });
            }
            let stored = [&bytes[..CHUNK_T0.start], &bytes[CHUNK_T0.end..]];
            let stored_len = bytes.len() - CHUNK_T0.len();
            rec.clear();
            put_uvarint(&mut rec, stored_len as u64);
            let mut crc = 0;
            for part in stored {
                rec.extend_from_slice(part);
                crc = crc32c::update(crc, part);
            }
            rec.extend_from_slice(&crc.to_le_bytes());
            chunks_out.write_all(&rec).map_err(werr)?;
            metas.push(ChunkMeta {
                min_t: chunk.min_t(),
                max_t: chunk.max_t(),
                offset,
                len: rec.len() as u64,
            });
            offset += rec.len() as u64;
            stats.num_chunks += 1;
            stats.num_samples += part.len() as u64;
        }
        stats.num_series += 1;
        entries.push((labels, metas));
    }
    let f = chunks_out
        .into_inner()
        .map_err(|e| TsdbError::io("write", &chunks_path, e.into_error()))?;
    f.sync_all().map_err(werr)?;

    // index: symbol table, then series referring to symbols
    let mut symbols: BTreeMap<&str, u32> = BTreeMap::new();
    for (l, _) in &entries {
        for x in l {
            symbols.insert(&x.name, 0);
            symbols.insert(&x.value, 0);
        }
    }
    for (i, v) in symbols.values_mut().enumerate() {
        *v = i as u32;
    }
    // the body as version 2 lays it out, compressed below
    let mut idx = Vec::new();
    put_varint(&mut idx, min_time);
    put_uvarint(&mut idx, symbols.len() as u64);
    for s in symbols.keys() {
        put_uvarint(&mut idx, s.len() as u64);
        idx.extend_from_slice(s.as_bytes());
    }
    put_uvarint(&mut idx, entries.len() as u64);
    let mut prev: Option<&Labels> = None;
    for (l, metas) in &entries {
        // sorted series share leading labels with their predecessor
        let shared = prev.map_or(0, |p| {
            p.iter().zip(l.iter()).take_while(|(a, b)| a == b).count()
        });
        prev = Some(l);
        put_uvarint(&mut idx, shared as u64);
        put_uvarint(&mut idx, (l.len() - shared) as u64);
        for x in l.iter().skip(shared) {
            put_uvarint(&mut idx, u64::from(symbols[x.name.as_str()]));
            put_uvarint(&mut idx, u64::from(symbols[x.value.as_str()]));
        }
        put_uvarint(&mut idx, metas.len() as u64);
        // times after the block's start or the previous chunk's end, which
        // the samples' order keeps non-negative; lengths instead of
        // offsets, since records follow each other in index order
        let mut after = min_time;
        for m in metas {
            put_uvarint(&mut idx, m.min_t.wrapping_sub(after) as u64);
            put_uvarint(&mut idx, m.max_t.wrapping_sub(m.min_t) as u64);
            put_uvarint(&mut idx, m.len);
            after = m.max_t;
        }
    }
    let index_path = tmp.join("index");
    let mut file = Vec::with_capacity(idx.len() / 8 + 9);
    file.extend_from_slice(INDEX_MAGIC);
    file.push(FORMAT_VERSION);
    let mut z = flate2::write::DeflateEncoder::new(file, flate2::Compression::default());
    z.write_all(&idx)
        .map_err(|e| TsdbError::io("compress", &index_path, e))?;
    let mut file = z
        .finish()
        .map_err(|e| TsdbError::io("compress", &index_path, e))?;
    let crc = crc32c::checksum(&file);
    file.extend_from_slice(&crc.to_le_bytes());
    write_synced(&index_path, &file)?;

    let meta = BlockMeta {
        ulid: ulid.clone(),
        min_time,
        max_time,
        stats,
        version: u32::from(FORMAT_VERSION),
        compaction_level,
        sources,
    };
    let json = serde_json::to_vec_pretty(&meta).map_err(|e| TsdbError::Corrupt {
        file: tmp.join("meta.json"),
        offset: 0,
        reason: e.to_string(),
    })?;
    write_synced(&tmp.join("meta.json"), &json)?;
    sync_dir(&tmp)?;
    let dst = parent.join(&ulid);
    fs::rename(&tmp, &dst).map_err(|e| TsdbError::io("rename", &dst, e))?;
    sync_dir(parent)?;
    Ok(meta)
}

fn write_synced(path: &Path, data: &[u8]) -> Result<(), TsdbError> {
    let mut f = File::create(path).map_err(|e| TsdbError::io("create", path, e))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| TsdbError::io("write", path, e))
}

/// An open block. The index is held in memory (postings are rebuilt at
/// open); chunks are read from disk per query.
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: Index,
    chunks: Vec<Vec<ChunkMeta>>,
    /// Index of each series' first chunk in `verified`.
    first_chunk: Vec<u32>,
    /// One bit per chunk: its checksum was checked once already. Blocks
    /// are immutable, so later reads of the same chunk skip the CRC (the
    /// decoder still validates the structure on every read).
    verified: Box<[AtomicU64]>,
    chunks_file: File,
    version: u8,
}

impl Block {
    pub fn open(dir: &Path) -> Result<Self, TsdbError> {
        let meta = read_meta(&dir.join("meta.json"))?;
        let index_path = dir.join("index");
        let data = fs::read(&index_path).map_err(|e| TsdbError::io("read", &index_path, e))?;
        let corrupt = |reason: String| TsdbError::Corrupt {
            file: index_path.clone(),
            offset: 0,
            reason,
        };
        let version = data.get(4).copied().unwrap_or(0);
        if data.len() < 9
            || &data[..4] != INDEX_MAGIC
            || !(FORMAT_V1..=FORMAT_VERSION).contains(&version)
        {
            return Err(corrupt("bad magic or version".into()));
        }
        let (body, crc) = data.split_at(data.len() - 4);
        if crc32c::checksum(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(corrupt("checksum mismatch".into()));
        }
        let inflated;
        let body = if version > FORMAT_V2 {
            let mut out = Vec::new();
            let z = flate2::read::DeflateDecoder::new(&body[5..]);
            std::io::Read::take(z, MAX_INDEX_BODY)
                .read_to_end(&mut out)
                .map_err(|e| corrupt(format!("index does not inflate: {e}")))?;
            inflated = out;
            &inflated[..]
        } else {
            &body[5..]
        };
        let (index, chunks) = parse_index(body, version).map_err(corrupt)?;
        let chunks_path = dir.join("chunks");
        let chunks_file =
            File::open(&chunks_path).map_err(|e| TsdbError::io("open", &chunks_path, e))?;
        let mut head = [0u8; 5];
        chunks_file
            .read_exact_at(&mut head, 0)
            .map_err(|e| TsdbError::io("read", &chunks_path, e))?;
        if &head[..4] != CHUNKS_MAGIC || head[4] != version {
            return Err(TsdbError::Corrupt {
                file: chunks_path,
                offset: 0,
                reason: "bad magic or version".into(),
            });
        }
        let mut first_chunk = Vec::with_capacity(chunks.len());
        let mut total = 0u32;
        for c in &chunks {
            first_chunk.push(total);
            total = total.saturating_add(c.len() as u32);
        }
        let verified = (0..total.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        Ok(Self {
            dir: dir.to_owned(),
            meta,
            index,
            chunks,
            first_chunk,
            verified,
            chunks_file,
            version,
        })
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads one chunk (number `id` of the block), appending its samples
    /// in `[mint, maxt]` to `out`.
    fn read_chunk(
        &self,
        m: &ChunkMeta,
        id: u32,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
    ) -> Result<(), TsdbError> {
        let path = || self.dir.join("chunks");
        let corrupt = |reason: &str| TsdbError::Corrupt {
            file: path(),
            offset: m.offset,
            reason: reason.to_owned(),
        };
        if m.len > 1 << 24 {
            return Err(corrupt("chunk length too large"));
        }
        let v2 = self.version != FORMAT_V1 && m.len > 0;
        // version 2 knows the record's length: read exactly it, behind
        // room for the first timestamp the record leaves out; version 1
        // reads the length prefix and, usually, the whole chunk at once
        let lead = if v2 { CHUNK_T0.len() } else { 0 };
        let want = if v2 { m.len as usize } else { 4096 };
        let mut buf = vec![0u8; lead + want];
        let n = read_some_at(&self.chunks_file, &mut buf[lead..], m.offset)
            .map_err(|e| TsdbError::io("read", path(), e))?;
        buf.truncate(lead + n);
        let mut d = Dec::new(&buf[lead..]);
        let len = d.uvarint().map_err(|e| corrupt(&e))?;
        if len > 1 << 24 {
            return Err(corrupt("chunk length too large"));
        }
        let len = len as usize;
        let start = buf.len() - d.remaining();
        let need = start + len + 4;
        if buf.len() < need {
            if v2 {
                return Err(corrupt("chunk record shorter than its length"));
            }
            buf.resize(need, 0);
            self.chunks_file
                .read_exact_at(&mut buf[lead + n..], m.offset + n as u64)
                .map_err(|e| TsdbError::io("read", path(), e))?;
        }
        let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
        let checked = self
            .verified
            .get(word)
            .is_some_and(|w| w.load(Ordering::Relaxed) & bit != 0);
        if !checked {
            let crc = &buf[start + len..need];
            if crc32c::checksum(&buf[start..start + len])
                != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]])
            {
                return Err(corrupt("chunk checksum mismatch"));
            }
        }
        let mut begin = start;
        let mut end = start + len;
        if self.version != FORMAT_V1 {
            // put the first timestamp back from the index
            if len < CHUNK_T0.start {
                return Err(corrupt("chunk too short"));
            }
            let at = start + CHUNK_T0.start;
            if v2 {
                // the header moves into the room in front; the rest stays
                begin = start - CHUNK_T0.len();
                buf.copy_within(start..at, begin);
                buf[begin + CHUNK_T0.start..at].copy_from_slice(&m.min_t.to_be_bytes());
            } else {
                buf.splice(at..at, m.min_t.to_be_bytes());
                end += CHUNK_T0.len();
            }
        }
        let bytes = &buf[begin..end];
        // decoding validates the chunk as Chunk::from_bytes would, in the
        // one pass that also reads the samples
        if Chunk::decode_checked(bytes, mint, maxt, out) {
            if !checked && let Some(w) = self.verified.get(word) {
                w.fetch_or(bit, Ordering::Relaxed);
            }
            Ok(())
        } else {
            Err(corrupt("chunk does not decode"))
        }
    }

    fn samples(&self, r: SeriesRef, mint: i64, maxt: i64) -> Result<Vec<Sample>, TsdbError> {
        let mut out = Vec::new();
        self.samples_into(r, mint, maxt, &mut out)?;
        Ok(out)
    }

    /// Appends series `r`'s samples in `[mint, maxt]` to `out`.
    pub(crate) fn samples_into(
        &self,
        r: SeriesRef,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
    ) -> Result<(), TsdbError> {
        let first = self.first_chunk.get(r as usize).copied().unwrap_or(0);
        for (j, m) in self
            .chunks
            .get(r as usize)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if m.max_t < mint || m.min_t > maxt {
                continue;
            }
            self.read_chunk(m, first + j as u32, mint, maxt, out)?;
        }
        Ok(())
    }

    /// Refs of the matching series in label order, their labels left in
    /// the index ([`Block::label_strs`], [`Block::labels_of`]).
    pub(crate) fn select_refs(&self, matchers: &[Matcher]) -> Result<Vec<SeriesRef>, TsdbError> {
        let mut out = self.index.select(matchers)?;
        // refs are numbered in label order when a block is written
        let cmp =
            |a: &SeriesRef, b: &SeriesRef| self.index.label_strs(*a).cmp(self.index.label_strs(*b));
        if !out.is_sorted_by(|a, b| cmp(a, b).is_le()) {
            out.sort_unstable_by(cmp);
        }
        Ok(out)
    }

    /// Series `r`'s (name, value) pairs, in label order.
    pub(crate) fn label_strs(&self, r: SeriesRef) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.index.label_strs(r)
    }

    /// Series `r`'s labels.
    pub(crate) fn labels_of(&self, r: SeriesRef) -> Option<Labels> {
        self.index.labels(r)
    }

    /// Matching series with their samples in `[mint, maxt]`, sorted by
    /// labels; series without samples there are left out.
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<(Labels, Vec<Sample>)>, TsdbError> {
        let mut out = Vec::new();
        for r in self.index.select(matchers)? {
            let s = self.samples(r, mint, maxt)?;
            if !s.is_empty()
                && let Some(l) = self.index.labels(r)
            {
                out.push((l, s));
            }
        }
        Ok(out)
    }

    /// Labels of matching series with chunks overlapping `[mint, maxt]`,
    /// sorted. Reads no chunks.
    pub fn series(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Labels>, TsdbError> {
        Ok(self
            .index
            .select(matchers)?
            .into_iter()
            .filter(|&r| {
                self.chunks
                    .get(r as usize)
                    .is_some_and(|cs| cs.iter().any(|m| m.max_t >= mint && m.min_t <= maxt))
            })
            .filter_map(|r| self.index.labels(r))
            .collect())
    }

    /// Every series with all its samples, sorted by labels.
    pub fn all_series(&self) -> Result<Vec<(Labels, Vec<Sample>)>, TsdbError> {
        let mut out = Vec::with_capacity(self.chunks.len());
        for r in 0..self.chunks.len() as SeriesRef {
            if let Some(l) = self.index.labels(r) {
                out.push((l, self.samples(r, i64::MIN, i64::MAX)?));
            }
        }
        Ok(out)
    }

    pub fn label_names(&self) -> Vec<String> {
        self.index.label_names()
    }

    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.index.label_values(name)
    }

    /// Deletes the block's directory (retention).
    pub fn delete(self) -> Result<(), TsdbError> {
        fs::remove_dir_all(&self.dir).map_err(|e| TsdbError::io("remove", &self.dir, e))
    }
}

fn read_some_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], offset + n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

type ParsedIndex = (Index, Vec<Vec<ChunkMeta>>);

fn parse_index(body: &[u8], version: u8) -> Result<ParsedIndex, String> {
    let mut d = Dec::new(body);
    let v1 = version == FORMAT_V1;
    let block_min = if v1 { 0 } else { d.varint()? };
    let nsym = d.count(1)?;
    let mut symbols = Vec::with_capacity(nsym);
    for _ in 0..nsym {
        symbols.push(d.str()?);
    }
    let sym = |i: u64| {
        symbols
            .get(i as usize)
            .cloned()
            .ok_or_else(|| format!("symbol {i} out of range"))
    };
    let nseries = d.count(2)?;
    let mut index = Index::new();
    let mut chunks = Vec::with_capacity(nseries);
    let mut prev: Vec<Label> = Vec::new();
    // version 2: records follow each other from just after the file header
    let mut offset = 5u64;
    for r in 0..nseries {
        let shared = if v1 { 0 } else { d.uvarint()? as usize };
        if shared > prev.len() {
            return Err(format!(
                "series {r}: shares {shared} labels with a shorter series"
            ));
        }
        let nl = d.count(2)?;
        let mut labels = Vec::with_capacity(shared + nl);
        labels.extend_from_slice(&prev[..shared]);
        for _ in 0..nl {
            let name = sym(d.uvarint()?)?;
            let value = sym(d.uvarint()?)?;
            labels.push(Label { name, value });
        }
        prev.clone_from(&labels);
        let labels = Labels::from_sorted(labels)
            .map_err(|n| format!("series {r}: labels not sorted at {n:?}"))?;
        let nc = d.count(3)?;
        let mut metas = Vec::with_capacity(nc);
        let mut after = block_min;
        for _ in 0..nc {
            let m = if v1 {
                let min_t = d.varint()?;
                let max_t = min_t.wrapping_add(d.uvarint()? as i64);
                ChunkMeta {
                    min_t,
                    max_t,
                    offset: d.uvarint()?,
                    len: 0,
                }
            } else {
                let min_t = after.wrapping_add(d.uvarint()? as i64);
                let max_t = min_t.wrapping_add(d.uvarint()? as i64);
                let len = d.uvarint()?;
                let m = ChunkMeta {
                    min_t,
                    max_t,
                    offset,
                    len,
                };
                offset = offset.saturating_add(len);
                after = max_t;
                m
            };
            metas.push(m);
        }
        let r = SeriesRef::try_from(r).map_err(|_| "too many series".to_string())?;
        index.add(r, &labels);
        chunks.push(metas);
    }
    d.done()?;
    Ok((index, chunks))
}

/// Merges blocks into one new block under `parent` covering all their
/// time ranges (samples of the same series are merged; a timestamp present
/// in several blocks keeps the value of the last block given). The inputs
/// are left in place for the caller to delete once the new block is
/// visible.
pub fn compact(parent: &Path, blocks: &[&Block]) -> Result<BlockMeta, TsdbError> {
    let min_time = blocks.iter().map(|b| b.meta.min_time).min().unwrap_or(0);
    let max_time = blocks.iter().map(|b| b.meta.max_time).max().unwrap_or(0);
    let level = blocks
        .iter()
        .map(|b| b.meta.compaction_level)
        .max()
        .unwrap_or(0)
        + 1;
    let mut merged: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    for b in blocks {
        for (l, s) in b.all_series()? {
            merged.entry(l).or_default().extend(s);
        }
    }
    let series = merged.into_iter().map(|(l, mut s)| {
        // stable sort keeps block order among equal timestamps, so keeping
        // the last of each run keeps the last block's value
        s.sort_by_key(|x| x.t);
        let mut out: Vec<Sample> = Vec::with_capacity(s.len());
        for x in s {
            match out.last_mut() {
                Some(last) if last.t == x.t => *last = x,
                _ => out.push(x),
            }
        }
        (l, out)
    });
    let mut sources: Vec<String> = blocks
        .iter()
        .flat_map(|b| b.meta.sources.iter().chain([&b.meta.ulid]).cloned())
        .collect();
    sources.sort();
    sources.dedup();
    write_block_from(parent, min_time, max_time, level, sources, series)
}

/// Bytes of a block's files on disk (what retention by size counts).
pub fn block_size(dir: &Path) -> Result<u64, TsdbError> {
    let mut total = 0;
    for f in BLOCK_FILES {
        let p = dir.join(f);
        total += fs::metadata(&p)
            .map_err(|e| TsdbError::io("stat", &p, e))?
            .len();
    }
    Ok(total)
}

/// Reads and checks a block's `meta.json`.
pub fn read_meta(path: &Path) -> Result<BlockMeta, TsdbError> {
    let raw = fs::read(path).map_err(|e| TsdbError::io("read", path, e))?;
    parse_meta(&raw, path)
}

/// Parses `meta.json` bytes; `path` names them in errors.
pub fn parse_meta(raw: &[u8], path: &Path) -> Result<BlockMeta, TsdbError> {
    let meta: BlockMeta = serde_json::from_slice(raw).map_err(|e| TsdbError::Corrupt {
        file: path.to_owned(),
        offset: 0,
        reason: e.to_string(),
    })?;
    if !(u32::from(FORMAT_V1)..=u32::from(FORMAT_VERSION)).contains(&meta.version) {
        return Err(TsdbError::Corrupt {
            file: path.to_owned(),
            offset: 0,
            reason: format!("unsupported block version {}", meta.version),
        });
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_model::{MatchOp, STALE_NAN};

    fn data() -> Vec<(Labels, Vec<Sample>)> {
        let mut v: Vec<(Labels, Vec<Sample>)> = (0..30)
            .map(|i| {
                let l = Labels::from_pairs([
                    (
                        "__name__",
                        if i % 2 == 0 { "up" } else { "load" }.to_string(),
                    ),
                    ("instance", format!("h{i:02}")),
                ]);
                let s = (0..300)
                    .map(|k| {
                        let v = match k % 50 {
                            7 => f64::from_bits(STALE_NAN),
                            8 => -0.0,
                            _ => (k * i) as f64 / 100.0,
                        };
                        Sample::new(k * 15_000, v)
                    })
                    .collect();
                (l, s)
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn bits(v: &[(Labels, Vec<Sample>)]) -> Vec<(String, Vec<(i64, u64)>)> {
        v.iter()
            .map(|(l, s)| {
                (
                    l.to_string(),
                    s.iter().map(|x| (x.t, x.v.to_bits())).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn write_open_query_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let input = data();
        let meta = write_block(dir.path(), 0, 7_200_000, 1, input.clone()).unwrap();
        assert_eq!(meta.stats.num_series, 30);
        assert_eq!(meta.stats.num_samples, 30 * 300);
        assert_eq!(meta.ulid.len(), 26);
        let b = Block::open(&dir.path().join(&meta.ulid)).unwrap();
        assert_eq!(b.meta(), &meta);
        assert_eq!(bits(&b.all_series().unwrap()), bits(&input));
        let up = b
            .select(&[Matcher::equal("__name__", "up")], 15_000, 30_000)
            .unwrap();
        assert_eq!(up.len(), 15);
        assert!(up.iter().all(|(_, s)| s.len() == 2));
        let re = b
            .select(
                &[Matcher::new(MatchOp::Regex, "instance", "h0.*").unwrap()],
                i64::MIN,
                i64::MAX,
            )
            .unwrap();
        assert_eq!(re.len(), 10);
        assert_eq!(b.label_names(), vec!["__name__", "instance"]);
        assert_eq!(b.label_values("__name__"), vec!["load", "up"]);
        // nothing but the block is left behind
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![meta.ulid.clone()]);
        let json = fs::read_to_string(dir.path().join(&meta.ulid).join("meta.json")).unwrap();
        assert!(json.contains("\"minTime\": 0") && json.contains("\"numSamples\": 9000"));
    }

    #[test]
    fn samples_outside_the_range_are_left_out_and_order_is_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let meta = write_block(dir.path(), 15_000, 45_000, 1, data()).unwrap();
        assert_eq!(meta.stats.num_samples, 30 * 2);
        let mut bad = data();
        bad.swap(0, 1);
        assert!(write_block(dir.path(), 0, 1, 1, bad).is_err());
    }

    #[test]
    fn corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let meta = write_block(dir.path(), 0, 7_200_000, 1, data()).unwrap();
        let bdir = dir.path().join(&meta.ulid);
        let chunks = bdir.join("chunks");
        let mut c = fs::read(&chunks).unwrap();
        c[40] ^= 1;
        fs::write(&chunks, &c).unwrap();
        let b = Block::open(&bdir).unwrap();
        assert!(matches!(b.all_series(), Err(TsdbError::Corrupt { .. })));
        let index = bdir.join("index");
        let mut i = fs::read(&index).unwrap();
        i[10] ^= 1;
        fs::write(&index, &i).unwrap();
        assert!(matches!(Block::open(&bdir), Err(TsdbError::Corrupt { .. })));
    }

    #[test]
    fn a_chunk_checksum_is_checked_on_its_first_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let meta = write_block(dir.path(), 0, 7_200_000, 1, data()).unwrap();
        let bdir = dir.path().join(&meta.ulid);
        let b = Block::open(&bdir).unwrap();
        let verified = |b: &Block| -> u32 {
            b.verified
                .iter()
                .map(|w| w.load(Ordering::Relaxed).count_ones())
                .sum()
        };
        // NaN samples compare by their bits
        let read = |b: &Block| -> Vec<(Labels, Vec<(i64, u64)>)> {
            let all = b.all_series().unwrap();
            all.into_iter()
                .map(|(l, s)| (l, s.iter().map(|p| (p.t, p.v.to_bits())).collect()))
                .collect()
        };
        assert_eq!(verified(&b), 0);
        let first = read(&b);
        assert_eq!(verified(&b) as u64, meta.stats.num_chunks);
        // the second read skips the checksums and reads the same samples
        assert_eq!(read(&b), first);
        // a flipped bit is still found by a block opened afresh
        let chunks = bdir.join("chunks");
        let mut c = fs::read(&chunks).unwrap();
        c[40] ^= 1;
        fs::write(&chunks, &c).unwrap();
        let fresh = Block::open(&bdir).unwrap();
        assert!(matches!(fresh.all_series(), Err(TsdbError::Corrupt { .. })));
    }

    /// A block in format version 1, laid out as FORMAT.md's version 1
    /// describes it: absolute chunk times and file offsets, whole labels,
    /// whole chunks.
    fn write_v1_block(
        parent: &Path,
        min_time: i64,
        max_time: i64,
        series: &[(Labels, Vec<Sample>)],
    ) -> String {
        let ulid = new_ulid();
        let dir = parent.join(&ulid);
        fs::create_dir_all(&dir).unwrap();
        let mut chunks = b"PHXC\x01".to_vec();
        let mut symbols: BTreeMap<&str, u32> = BTreeMap::new();
        for (l, _) in series {
            for x in l {
                symbols.insert(&x.name, 0);
                symbols.insert(&x.value, 0);
            }
        }
        for (i, v) in symbols.values_mut().enumerate() {
            *v = i as u32;
        }
        let mut idx = b"PHXI\x01".to_vec();
        put_uvarint(&mut idx, symbols.len() as u64);
        for s in symbols.keys() {
            put_uvarint(&mut idx, s.len() as u64);
            idx.extend_from_slice(s.as_bytes());
        }
        put_uvarint(&mut idx, series.len() as u64);
        let mut samples = 0;
        for (l, s) in series {
            put_uvarint(&mut idx, l.len() as u64);
            for x in l {
                put_uvarint(&mut idx, u64::from(symbols[x.name.as_str()]));
                put_uvarint(&mut idx, u64::from(symbols[x.value.as_str()]));
            }
            let parts: Vec<&[Sample]> = s.chunks(120).collect();
            put_uvarint(&mut idx, parts.len() as u64);
            for part in parts {
                let mut a = ChunkAppender::new();
                for x in part {
                    a.append(x.t, x.v);
                }
                let c = a.finish();
                put_varint(&mut idx, c.min_t());
                put_uvarint(&mut idx, (c.max_t() - c.min_t()) as u64);
                put_uvarint(&mut idx, chunks.len() as u64);
                put_uvarint(&mut chunks, c.bytes().len() as u64);
                chunks.extend_from_slice(c.bytes());
                chunks.extend_from_slice(&crc32c::checksum(c.bytes()).to_le_bytes());
                samples += part.len() as u64;
            }
        }
        let crc = crc32c::checksum(&idx);
        idx.extend_from_slice(&crc.to_le_bytes());
        fs::write(dir.join("index"), idx).unwrap();
        fs::write(dir.join("chunks"), chunks).unwrap();
        let meta = BlockMeta {
            ulid: ulid.clone(),
            min_time,
            max_time,
            stats: BlockStats {
                num_series: series.len() as u64,
                num_chunks: 0,
                num_samples: samples,
            },
            version: 1,
            compaction_level: 1,
            sources: Vec::new(),
        };
        fs::write(dir.join("meta.json"), serde_json::to_vec(&meta).unwrap()).unwrap();
        ulid
    }

    /// Rewrites a version 3 block as the same block in version 2: the
    /// index body inflated, in the clear, version bytes and meta saying 2.
    fn to_version_2(bdir: &Path, meta: &BlockMeta) {
        let stored = fs::read(bdir.join("index")).unwrap();
        assert_eq!(stored[4], 3);
        let mut body = Vec::new();
        flate2::read::DeflateDecoder::new(&stored[5..stored.len() - 4])
            .read_to_end(&mut body)
            .unwrap();
        assert!(body.len() > stored.len(), "the body compresses");
        let mut v2 = b"PHXI\x02".to_vec();
        v2.extend_from_slice(&body);
        let crc = crc32c::checksum(&v2);
        v2.extend_from_slice(&crc.to_le_bytes());
        fs::write(bdir.join("index"), &v2).unwrap();
        let mut chunks = fs::read(bdir.join("chunks")).unwrap();
        chunks[4] = 2;
        fs::write(bdir.join("chunks"), &chunks).unwrap();
        let mut m = meta.clone();
        m.version = 2;
        fs::write(bdir.join("meta.json"), serde_json::to_vec(&m).unwrap()).unwrap();
    }

    #[test]
    fn version_2_blocks_with_plain_indexes_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let all = data();
        let meta = write_block(dir.path(), 0, 7_200_000, 1, all.clone()).unwrap();
        let bdir = dir.path().join(&meta.ulid);
        let stored = fs::read(bdir.join("index")).unwrap();
        let chunks = fs::read(bdir.join("chunks")).unwrap();
        to_version_2(&bdir, &meta);
        let b = Block::open(&bdir).unwrap();
        assert_eq!(b.version, 2);
        assert_eq!(bits(&b.all_series().unwrap()), bits(&all));
        // a version 3 index that does not inflate is corrupt, not a panic
        let mut bad = stored[..stored.len() - 4].to_vec();
        bad.truncate(bad.len() / 2);
        let crc = crc32c::checksum(&bad);
        bad.extend_from_slice(&crc.to_le_bytes());
        fs::write(bdir.join("index"), &bad).unwrap();
        assert_eq!(chunks[4], 3);
        fs::write(bdir.join("chunks"), &chunks).unwrap();
        fs::write(bdir.join("meta.json"), serde_json::to_vec(&meta).unwrap()).unwrap();
        assert!(matches!(Block::open(&bdir), Err(TsdbError::Corrupt { .. })));
    }

    #[test]
    fn version_1_blocks_are_read_and_compacted_into_version_2() {
        let dir = tempfile::tempdir().unwrap();
        let all = data();
        let old = write_v1_block(dir.path(), 0, 7_200_000, &all);
        let b1 = Block::open(&dir.path().join(&old)).unwrap();
        assert_eq!(b1.version, FORMAT_V1);
        assert_eq!(bits(&b1.all_series().unwrap()), bits(&all));
        let later: Vec<_> = all
            .iter()
            .map(|(l, s)| {
                let s = s
                    .iter()
                    .map(|x| Sample::new(x.t + 7_200_000, x.v))
                    .collect();
                (l.clone(), s)
            })
            .collect();
        let m2 = write_block(dir.path(), 7_200_000, 14_400_000, 1, later.clone()).unwrap();
        let b2 = Block::open(&dir.path().join(&m2.ulid)).unwrap();
        assert_eq!((b2.version, m2.version), (FORMAT_VERSION, 3));
        let m = compact(dir.path(), &[&b1, &b2]).unwrap();
        let merged = Block::open(&dir.path().join(&m.ulid)).unwrap();
        let want: Vec<_> = all
            .iter()
            .zip(&later)
            .map(|((l, a), (_, b))| (l.clone(), a.iter().chain(b).copied().collect::<Vec<_>>()))
            .collect();
        assert_eq!(bits(&merged.all_series().unwrap()), bits(&want));
        // version 2 is smaller for the same samples: no first timestamps in
        // the chunks file, relative times and shared labels in the index
        let v1 = block_size(&dir.path().join(&old)).unwrap();
        let v2 = block_size(&dir.path().join(&m2.ulid)).unwrap();
        assert!(v2 < v1, "{v2} vs {v1}");
    }

    #[test]
    fn index_sharing_more_labels_than_the_previous_series_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let meta = write_block(dir.path(), 0, 7_200_000, 1, data()).unwrap();
        let bdir = dir.path().join(&meta.ulid);
        // in version 2, whose index body is in the clear
        to_version_2(&bdir, &meta);
        let index = bdir.join("index");
        let mut i = fs::read(&index).unwrap();
        // the first series' shared count is the byte after the symbols;
        // find it by parsing the header as a reader would
        let mut d = Dec::new(&i[5..]);
        d.varint().unwrap();
        for _ in 0..d.uvarint().unwrap() {
            d.str().unwrap();
        }
        d.uvarint().unwrap();
        let at = i.len() - d.remaining();
        assert_eq!(i[at], 0, "the first series shares nothing");
        i[at] = 1;
        let n = i.len() - 4;
        let crc = crc32c::checksum(&i[..n]);
        i[n..].copy_from_slice(&crc.to_le_bytes());
        fs::write(&index, &i).unwrap();
        let Err(TsdbError::Corrupt { reason, .. }) = Block::open(&bdir) else {
            panic!("must be refused")
        };
        assert!(reason.contains("shares 1 labels"), "{reason}");
    }

    #[test]
    fn compaction_merges_series_and_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let all = data();
        let first: Vec<_> = all.iter().take(20).cloned().collect();
        let second: Vec<_> = all.iter().skip(10).cloned().collect();
        let m1 = write_block(dir.path(), 0, 2_250_000, 1, first).unwrap();
        let m2 = write_block(dir.path(), 2_250_000, 7_200_000, 1, second).unwrap();
        let b1 = Block::open(&dir.path().join(&m1.ulid)).unwrap();
        let b2 = Block::open(&dir.path().join(&m2.ulid)).unwrap();
        let m = compact(dir.path(), &[&b1, &b2]).unwrap();
        assert_eq!(
            (m.min_time, m.max_time, m.compaction_level),
            (0, 7_200_000, 2)
        );
        let mut sources = vec![m1.ulid.clone(), m2.ulid.clone()];
        sources.sort();
        assert_eq!(m.sources, sources);
        // merging again names the first inputs too
        let b3 = Block::open(&dir.path().join(&m.ulid)).unwrap();
        let m3 = compact(dir.path(), &[&b3]).unwrap();
        assert_eq!(m3.sources.len(), 3);
        assert!(m3.sources.contains(&m.ulid) && m3.sources.contains(&m1.ulid));
        assert!(
            fs::read_to_string(dir.path().join(&m3.ulid).join("meta.json"))
                .unwrap()
                .contains("\"sources\"")
        );
        assert!(
            !fs::read_to_string(dir.path().join(&m1.ulid).join("meta.json"))
                .unwrap()
                .contains("sources")
        );
        let b = Block::open(&dir.path().join(&m.ulid)).unwrap();
        let got = b.all_series().unwrap();
        assert_eq!(got.len(), 30);
        // series 10..20 were in both blocks and are complete again
        assert_eq!(bits(&got[10..20]), bits(&all[10..20]));
        assert_eq!(got[0].1.len(), 150);
        assert_eq!(got[25].1.len(), 150);
        b.delete().unwrap();
        assert!(!dir.path().join(&m.ulid).exists());
    }
}
