//! The blocks of one database: which exist, where their bytes are (local
//! disk, object storage, both), and the local cache of uploaded ones.
//!
//! Without object storage every block lives in `blocks/` for good. With
//! it, a block cut or merged here is *pending* until its files are
//! uploaded (meta last); it then becomes a cache entry that may be evicted,
//! least recently used first, once uploaded copies take more than the cache
//! size, and is downloaded again by the next query that needs it. A local
//! copy of an uploaded block carries an empty `uploaded` file, which is how
//! a restart tells cache entries (safe to evict) from pending blocks (the
//! only copy).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::block::{BLOCK_FILES, Block, BlockMeta, block_size, parse_meta, read_meta};
use crate::error::TsdbError;
use crate::remote::{RemoteBlocks, RemoteStats};

/// Marker file in a local block directory whose block is in object storage.
pub(crate) const UPLOADED_MARKER: &str = "uploaded";

pub(crate) struct Entry {
    meta: BlockMeta,
    /// Bytes of the block's files (local or remote, they are the same).
    size: u64,
    /// Catalogue clock at the last query that used the block.
    last_used: AtomicU64,
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    /// Open reader; kept while the entry lives so queries that picked the
    /// entry before a merge or eviction can finish with open files.
    block: Option<Arc<Block>>,
    /// Files present under `blocks/<ulid>/`.
    local: bool,
    /// Confirmed complete in object storage.
    uploaded: bool,
    /// Taken out of the catalogue (merged, past retention).
    removed: bool,
}

impl Entry {
    pub(crate) fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Default)]
struct Counters {
    uploads: AtomicU64,
    upload_failures: AtomicU64,
    downloads: AtomicU64,
    download_failures: AtomicU64,
    evictions: AtomicU64,
    remote_deletes: AtomicU64,
    remote_delete_failures: AtomicU64,
}

pub(crate) struct Catalog {
    dir: PathBuf,
    remote: Option<Arc<dyn RemoteBlocks>>,
    cache_limit: u64,
    /// Sorted by (min time, max time).
    entries: RwLock<Vec<Arc<Entry>>>,
    clock: AtomicU64,
    /// Blocks to delete from object storage whose deletion failed; retried
    /// every maintenance round and never listed back in meanwhile.
    doomed: Mutex<BTreeSet<String>>,
    counters: Counters,
}

fn remote_err(op: &'static str, path: &str, e: io::Error) -> TsdbError {
    TsdbError::io(op, format!("object storage: {path}"), e)
}

fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(path = %dir.display(), error = %e, "could not delete block directory");
    }
}

impl Catalog {
    /// Reads the local blocks under `dir` (deleting leftovers of
    /// interrupted writes and downloads) and, with object storage, adds
    /// (with `list`) the blocks found there. An unreachable store is
    /// logged, not fatal: the next [`Catalog::sync_remote`] tries again.
    pub(crate) fn open(
        dir: &Path,
        remote: Option<Arc<dyn RemoteBlocks>>,
        cache_limit: u64,
        list: bool,
    ) -> Result<Self, TsdbError> {
        std::fs::create_dir_all(dir).map_err(|e| TsdbError::io("create dir", dir, e))?;
        let mut entries = Vec::new();
        let rd = std::fs::read_dir(dir).map_err(|e| TsdbError::io("read dir", dir, e))?;
        for ent in rd {
            let ent = ent.map_err(|e| TsdbError::io("read dir", dir, e))?;
            let path = ent.path();
            if !path.is_dir() {
                continue;
            }
            if path.extension().is_some_and(|x| x == "tmp") {
                tracing::warn!(path = %path.display(), "removing incomplete block");
                std::fs::remove_dir_all(&path).map_err(|e| TsdbError::io("remove", &path, e))?;
                continue;
            }
            let uploaded = path.join(UPLOADED_MARKER).exists();
            let loaded =
                read_meta(&path.join("meta.json")).and_then(|meta| Ok((block_size(&path)?, meta)));
            let (size, meta) = match loaded {
                Ok(x) => x,
                // a damaged cache copy is fetched again when needed
                Err(e) if uploaded && remote.is_some() => {
                    tracing::warn!(path = %path.display(), error = %e, "dropping damaged cached block");
                    remove_dir(&path);
                    continue;
                }
                Err(e) => return Err(e),
            };
            entries.push(Arc::new(Entry {
                meta,
                size,
                last_used: AtomicU64::new(0),
                slot: Mutex::new(Slot {
                    local: true,
                    uploaded,
                    ..Slot::default()
                }),
            }));
        }
        entries.sort_by_key(|e| (e.meta.min_time, e.meta.max_time));
        let cat = Self {
            dir: dir.to_owned(),
            remote,
            cache_limit,
            entries: RwLock::new(entries),
            clock: AtomicU64::new(1),
            doomed: Mutex::new(BTreeSet::new()),
            counters: Counters::default(),
        };
        if cat.remote.is_some() {
            if list && let Err(e) = cat.sync_remote() {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot list blocks in object storage, serving local blocks until it answers");
            }
            cat.evict(&[]);
        }
        Ok(cat)
    }

    fn snapshot(&self) -> Vec<Arc<Entry>> {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Entries in time order.
    pub(crate) fn entries(&self) -> Vec<Arc<Entry>> {
        self.snapshot()
    }

    pub(crate) fn metas(&self) -> Vec<BlockMeta> {
        self.snapshot().iter().map(|e| e.meta.clone()).collect()
    }

    /// Open readers of the blocks overlapping `[mint, maxt]`, downloading
    /// those not on local disk.
    pub(crate) fn overlapping(&self, mint: i64, maxt: i64) -> Result<Vec<Arc<Block>>, TsdbError> {
        let picked: Vec<Arc<Entry>> = self
            .snapshot()
            .into_iter()
            .filter(|e| e.meta.max_time > mint && e.meta.min_time <= maxt)
            .collect();
        let downloads = self.counters.downloads.load(Ordering::Relaxed);
        let mut out = Vec::with_capacity(picked.len());
        for e in &picked {
            out.extend(self.load(e)?);
        }
        if self.counters.downloads.load(Ordering::Relaxed) != downloads {
            self.evict(&picked);
        }
        Ok(out)
    }

    /// The open reader of one block, downloading it first if needed;
    /// `None` for a block deleted since the caller picked it.
    pub(crate) fn load(&self, e: &Arc<Entry>) -> Result<Option<Arc<Block>>, TsdbError> {
        let mut slot = e.slot();
        e.last_used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        if let Some(b) = &slot.block {
            return Ok(Some(b.clone()));
        }
        if slot.removed {
            return Ok(None);
        }
        let path = self.dir.join(&e.meta.ulid);
        if slot.local {
            match Block::open(&path) {
                Ok(b) => {
                    let b = Arc::new(b);
                    slot.block = Some(b.clone());
                    return Ok(Some(b));
                }
                Err(err) if slot.uploaded && self.remote.is_some() => {
                    tracing::warn!(path = %path.display(), error = %err, "cached block unreadable, downloading it again");
                    remove_dir(&path);
                    slot.local = false;
                }
                Err(err) => return Err(err),
            }
        }
        let Some(remote) = &self.remote else {
            return Err(TsdbError::io(
                "open",
                &path,
                io::Error::new(io::ErrorKind::NotFound, "block is neither local nor remote"),
            ));
        };
        if let Err(err) = self.download(remote.as_ref(), &e.meta.ulid, &path) {
            self.counters
                .download_failures
                .fetch_add(1, Ordering::Relaxed);
            return Err(err);
        }
        self.counters.downloads.fetch_add(1, Ordering::Relaxed);
        slot.local = true;
        let b = Arc::new(Block::open(&path)?);
        slot.block = Some(b.clone());
        tracing::debug!(ulid = %e.meta.ulid, bytes = e.size, "block downloaded into the cache");
        Ok(Some(b))
    }

    /// Fetches a block into `<ulid>.tmp/` and renames it into place. No
    /// fsync: a cache copy torn by a crash fails to open and is fetched
    /// again.
    fn download(&self, remote: &dyn RemoteBlocks, ulid: &str, dst: &Path) -> Result<(), TsdbError> {
        let tmp = self.dir.join(format!("{ulid}.tmp"));
        remove_dir(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| TsdbError::io("create dir", &tmp, e))?;
        let res = (|| {
            for f in BLOCK_FILES {
                let key = format!("{ulid}/{f}");
                remote
                    .download(&key, &tmp.join(f))
                    .map_err(|e| remote_err("download", &key, e))?;
            }
            let marker = tmp.join(UPLOADED_MARKER);
            std::fs::write(&marker, b"").map_err(|e| TsdbError::io("write", &marker, e))?;
            std::fs::rename(&tmp, dst).map_err(|e| TsdbError::io("rename", dst, e))
        })();
        if res.is_err() {
            remove_dir(&tmp);
        }
        res
    }

    /// Adds a block just written under `blocks/` (cut or merged): pending
    /// upload when there is object storage.
    pub(crate) fn add_local(
        &self,
        meta: BlockMeta,
        block: Option<Arc<Block>>,
    ) -> Result<(), TsdbError> {
        let size = block_size(&self.dir.join(&meta.ulid))?;
        let e = Arc::new(Entry {
            meta,
            size,
            last_used: AtomicU64::new(self.clock.fetch_add(1, Ordering::Relaxed)),
            slot: Mutex::new(Slot {
                block,
                local: true,
                ..Slot::default()
            }),
        });
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.push(e);
        entries.sort_by_key(|e| (e.meta.min_time, e.meta.max_time));
        Ok(())
    }

    /// Takes blocks out of the catalogue and deletes their local files.
    /// With `remote`, their objects are deleted too (retention); merged
    /// sources keep theirs until the merged block is uploaded (see
    /// [`Catalog::upload_pending`]).
    pub(crate) fn remove(&self, gone: &[Arc<Entry>], remote: bool) {
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|e| !gone.iter().any(|g| Arc::ptr_eq(e, g)));
        for e in gone {
            {
                let mut slot = e.slot();
                slot.removed = true;
                if slot.local {
                    remove_dir(&self.dir.join(&e.meta.ulid));
                    slot.local = false;
                }
            }
            if remote {
                self.delete_remote(&e.meta.ulid);
            }
        }
    }

    fn delete_remote(&self, ulid: &str) {
        let Some(r) = &self.remote else {
            return;
        };
        match r.delete_prefix(ulid) {
            Ok(n) => {
                // merged sources that never got uploaded have nothing there
                if n > 0 {
                    self.counters.remote_deletes.fetch_add(1, Ordering::Relaxed);
                }
                self.doomed_set().remove(ulid);
            }
            Err(e) => {
                self.counters
                    .remote_delete_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(ulid, error = %e, "cannot delete block from object storage, retrying later");
                self.doomed_set().insert(ulid.to_owned());
            }
        }
    }

    fn doomed_set(&self) -> MutexGuard<'_, BTreeSet<String>> {
        self.doomed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Uploads pending blocks, oldest first, each file then `meta.json`
    /// last; on success the local copy becomes a cache entry and the
    /// sources of a merged block are deleted from object storage. Stops at
    /// the first failure (the store is probably down): the blocks stay
    /// local and the next round tries again. Returns the uploaded ULIDs and
    /// whether a failure stopped the round.
    pub(crate) fn upload_pending(&self) -> (Vec<String>, bool) {
        let Some(remote) = &self.remote else {
            return (Vec::new(), false);
        };
        let pending: Vec<Arc<Entry>> = self
            .snapshot()
            .into_iter()
            .filter(|e| {
                let s = e.slot();
                s.local && !s.uploaded && !s.removed
            })
            .collect();
        let mut done = Vec::new();
        for e in pending {
            let ulid = &e.meta.ulid;
            // a block left from before a restart is checked (index CRC,
            // chunk file header) before it becomes the system of record
            if let Err(err) = self.load(&e) {
                tracing::error!(ulid = %ulid, error = %err, "not uploading an unreadable block");
                continue;
            }
            let dir = self.dir.join(ulid);
            let res = BLOCK_FILES.iter().try_for_each(|f| {
                let key = format!("{ulid}/{f}");
                remote
                    .upload(&key, &dir.join(f))
                    .map_err(|err| remote_err("upload", &key, err))
            });
            if let Err(err) = res {
                self.counters
                    .upload_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(ulid = %ulid, error = %err, "block upload failed, keeping it local and retrying next round");
                return (done, true);
            }
            self.counters.uploads.fetch_add(1, Ordering::Relaxed);
            self.mark_uploaded(&e);
            tracing::info!(ulid = %ulid, bytes = e.size, "block uploaded");
            for s in &e.meta.sources {
                self.delete_remote(s);
            }
            done.push(ulid.clone());
        }
        (done, false)
    }

    fn mark_uploaded(&self, e: &Entry) {
        let mut slot = e.slot();
        slot.uploaded = true;
        if slot.local {
            let marker = self.dir.join(&e.meta.ulid).join(UPLOADED_MARKER);
            // without the marker a restart uploads the block again, which
            // is harmless
            if let Err(err) = std::fs::write(&marker, b"") {
                tracing::warn!(path = %marker.display(), error = %err, "cannot mark block as uploaded");
            }
        }
    }

    /// Brings the catalogue in line with object storage: adds complete
    /// blocks found there, retries failed deletions, drops blocks that a
    /// merged block lists as its sources (deleting them remotely once the
    /// merged block is uploaded), deletes remote leftovers of interrupted
    /// uploads, and re-uploads cached blocks that vanished from the store.
    pub(crate) fn sync_remote(&self) -> Result<(), TsdbError> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let doomed: Vec<String> = self.doomed_set().iter().cloned().collect();
        for ulid in doomed {
            self.delete_remote(&ulid);
        }
        let objects = remote.list().map_err(|e| remote_err("list", "blocks", e))?;
        // ulid -> (bytes, has meta.json)
        let mut listed: HashMap<&str, (u64, bool)> = HashMap::new();
        for o in &objects {
            let Some((ulid, file)) = o.path.split_once('/') else {
                continue;
            };
            let x = listed.entry(ulid).or_default();
            x.0 += o.size;
            x.1 |= file == "meta.json";
        }
        let known: HashMap<String, Arc<Entry>> = self
            .snapshot()
            .into_iter()
            .map(|e| (e.meta.ulid.clone(), e))
            .collect();
        let doomed = self.doomed_set().clone();
        let mut added = Vec::new();
        for (&ulid, &(size, complete)) in &listed {
            if doomed.contains(ulid) {
                continue;
            }
            if let Some(e) = known.get(ulid) {
                // uploaded, but the marker was lost to a crash
                if complete && !e.slot().uploaded {
                    self.mark_uploaded(e);
                }
                continue;
            }
            if !complete {
                // an upload that never finished and whose block is gone
                tracing::info!(ulid, "deleting incomplete block upload");
                self.delete_remote(ulid);
                continue;
            }
            let key = format!("{ulid}/meta.json");
            let meta = match remote.get(&key) {
                Ok(raw) => parse_meta(&raw, Path::new(&key)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(remote_err("get", &key, e)),
            };
            match meta {
                Ok(m) if m.ulid == ulid => added.push(Arc::new(Entry {
                    meta: m,
                    size,
                    last_used: AtomicU64::new(0),
                    slot: Mutex::new(Slot {
                        uploaded: true,
                        ..Slot::default()
                    }),
                })),
                Ok(m) => {
                    tracing::warn!(ulid, meta_ulid = %m.ulid, "ignoring remote block whose meta names another block")
                }
                Err(e) => tracing::warn!(ulid, error = %e, "ignoring remote block with a bad meta"),
            }
        }
        // uploaded blocks the store no longer has: a local copy is
        // uploaded again, one without is gone
        let mut vanished = Vec::new();
        for e in known.values() {
            let complete = listed.get(e.meta.ulid.as_str()).is_some_and(|x| x.1);
            let mut slot = e.slot();
            if complete || !slot.uploaded || slot.removed {
                continue;
            }
            if slot.local {
                tracing::warn!(ulid = %e.meta.ulid, "cached block missing from object storage, uploading it again");
                slot.uploaded = false;
                let _ = std::fs::remove_file(self.dir.join(&e.meta.ulid).join(UPLOADED_MARKER));
            } else {
                tracing::warn!(ulid = %e.meta.ulid, "block missing from object storage, forgetting it");
                vanished.push(e.clone());
            }
        }
        if !added.is_empty() {
            tracing::info!(
                dir = %self.dir.display(),
                blocks = added.len(),
                "found blocks in object storage"
            );
            let mut entries = self
                .entries
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            entries.extend(added);
            entries.sort_by_key(|e| (e.meta.min_time, e.meta.max_time));
        }
        self.remove(&vanished, false);
        self.drop_merged_sources();
        Ok(())
    }

    /// Removes blocks that another block lists as a source; deletes them
    /// remotely only when that block is itself uploaded.
    fn drop_merged_sources(&self) {
        let all = self.snapshot();
        let mut covered: HashSet<&str> = HashSet::new();
        let mut covered_uploaded: HashSet<&str> = HashSet::new();
        for e in &all {
            let uploaded = e.slot().uploaded;
            for s in &e.meta.sources {
                covered.insert(s);
                if uploaded {
                    covered_uploaded.insert(s);
                }
            }
        }
        let gone: Vec<Arc<Entry>> = all
            .iter()
            .filter(|e| covered.contains(e.meta.ulid.as_str()))
            .cloned()
            .collect();
        if gone.is_empty() {
            return;
        }
        tracing::info!(
            blocks = gone.len(),
            "dropping blocks already merged into others"
        );
        self.remove(&gone, false);
        for e in &gone {
            if covered_uploaded.contains(e.meta.ulid.as_str()) {
                self.delete_remote(&e.meta.ulid);
            }
        }
    }

    /// Deletes blocks entirely older than `cutoff` and, past `max_bytes`
    /// in total, the oldest blocks: counting from the newest, the block
    /// that crosses the limit and every older one go (as Prometheus'
    /// `--storage.tsdb.retention.size`). Returns the deleted ULIDs.
    pub(crate) fn apply_retention(
        &self,
        cutoff: Option<i64>,
        max_bytes: Option<u64>,
    ) -> Vec<String> {
        let all = self.snapshot();
        let mut gone: Vec<Arc<Entry>> = Vec::new();
        if let Some(cutoff) = cutoff {
            gone.extend(all.iter().filter(|e| e.meta.max_time <= cutoff).cloned());
        }
        if let Some(limit) = max_bytes {
            let mut newest_first: Vec<&Arc<Entry>> = all.iter().collect();
            newest_first.sort_by_key(|e| std::cmp::Reverse((e.meta.max_time, e.meta.min_time)));
            let mut total = 0u64;
            for e in newest_first {
                total = total.saturating_add(e.size);
                if total > limit && !gone.iter().any(|g| Arc::ptr_eq(g, e)) {
                    gone.push(e.clone());
                }
            }
        }
        if gone.is_empty() {
            return Vec::new();
        }
        self.remove(&gone, true);
        gone.iter().map(|e| e.meta.ulid.clone()).collect()
    }

    /// Drops local copies of uploaded blocks, least recently used first,
    /// until they fit the cache size; blocks in `keep` (those a running
    /// query just picked) stay.
    pub(crate) fn evict(&self, keep: &[Arc<Entry>]) {
        if self.remote.is_none() {
            return;
        }
        let mut cached: Vec<(u64, Arc<Entry>)> = Vec::new();
        let mut total = 0u64;
        for e in self.snapshot() {
            let Ok(slot) = e.slot.try_lock() else {
                continue;
            };
            if slot.local && slot.uploaded && !slot.removed {
                total += e.size;
                drop(slot);
                cached.push((e.last_used.load(Ordering::Relaxed), e));
            }
        }
        if total <= self.cache_limit {
            return;
        }
        cached.sort_by_key(|(t, _)| *t);
        for (_, e) in cached {
            if total <= self.cache_limit {
                break;
            }
            if keep.iter().any(|k| Arc::ptr_eq(k, &e)) {
                continue;
            }
            let Ok(mut slot) = e.slot.try_lock() else {
                continue;
            };
            if !(slot.local && slot.uploaded) {
                continue;
            }
            slot.block = None;
            slot.local = false;
            remove_dir(&self.dir.join(&e.meta.ulid));
            total = total.saturating_sub(e.size);
            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(ulid = %e.meta.ulid, bytes = e.size, "block evicted from the cache");
        }
    }

    pub(crate) fn stats(&self) -> RemoteStats {
        let c = &self.counters;
        let mut st = RemoteStats {
            uploads: c.uploads.load(Ordering::Relaxed),
            upload_failures: c.upload_failures.load(Ordering::Relaxed),
            downloads: c.downloads.load(Ordering::Relaxed),
            download_failures: c.download_failures.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            remote_deletes: c.remote_deletes.load(Ordering::Relaxed),
            remote_delete_failures: c.remote_delete_failures.load(Ordering::Relaxed),
            ..RemoteStats::default()
        };
        for e in self.snapshot() {
            st.blocks += 1;
            st.block_bytes += e.size;
            // a slot busy with a download is counted as not cached yet
            let Ok(slot) = e.slot.try_lock() else {
                continue;
            };
            if slot.local && !slot.uploaded && self.remote.is_some() {
                st.pending_uploads += 1;
            }
            if slot.local && slot.uploaded {
                st.cached_blocks += 1;
                st.cached_bytes += e.size;
            }
        }
        st
    }
}
