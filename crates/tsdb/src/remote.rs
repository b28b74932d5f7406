//! Object storage as the engine sees it: a small blocking trait, so the
//! engine stays free of HTTP and async runtimes. `pharos-metrics`
//! implements it over `pharos-storage` (S3, filesystem, memory); tests here
//! use [`MemoryRemote`].
//!
//! Calls come from maintenance and query threads, never from async tasks,
//! and may block for as long as the implementation's deadline allows.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// One object under a tenant's blocks prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteObject {
    /// Relative to the blocks prefix: `<ulid>/<file>`.
    pub path: String,
    pub size: u64,
}

/// One tenant's block objects (`<ulid>/index`, `<ulid>/chunks`,
/// `<ulid>/meta.json`). Errors are `io::Error`s: `NotFound` for a missing
/// object, anything else for a store that could not answer; the engine
/// never deletes local data because a call failed.
pub trait RemoteBlocks: Send + Sync + fmt::Debug {
    /// Every object under the prefix, at any depth.
    fn list(&self) -> io::Result<Vec<RemoteObject>>;
    /// Uploads the local file `src` to `path`, replacing any object there.
    fn upload(&self, path: &str, src: &Path) -> io::Result<()>;
    /// Downloads `path` into the local file `dst` (created or truncated);
    /// returns the bytes written.
    fn download(&self, path: &str, dst: &Path) -> io::Result<u64>;
    /// Reads a small object (a `meta.json`) whole.
    fn get(&self, path: &str) -> io::Result<Vec<u8>>;
    /// Deletes every object under `prefix` (a block's ULID) and returns
    /// how many there were; none is not an error.
    fn delete_prefix(&self, prefix: &str) -> io::Result<u64>;
}

/// What the block catalogue did and holds, summed over its life. Counters
/// only grow; the rest are current values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteStats {
    /// Blocks in the catalogue (local, uploaded or both).
    pub blocks: u64,
    /// Their total size in bytes.
    pub block_bytes: u64,
    /// Blocks written locally and not yet confirmed in object storage.
    pub pending_uploads: u64,
    /// Uploaded blocks with a copy on local disk, and their bytes.
    pub cached_blocks: u64,
    pub cached_bytes: u64,
    pub uploads: u64,
    pub upload_failures: u64,
    pub downloads: u64,
    pub download_failures: u64,
    pub evictions: u64,
    /// Blocks deleted from object storage (retention, merged sources).
    pub remote_deletes: u64,
    pub remote_delete_failures: u64,
}

/// An in-memory [`RemoteBlocks`] with a switch that makes every call fail,
/// for tests of outages.
#[derive(Debug)]
pub struct MemoryRemote {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    down: AtomicBool,
    calls: AtomicU64,
    /// Calls left before the store goes down; negative for no limit.
    budget: AtomicI64,
}

impl Default for MemoryRemote {
    fn default() -> Self {
        Self {
            objects: Mutex::default(),
            down: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            budget: AtomicI64::new(-1),
        }
    }
}

impl MemoryRemote {
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets `calls` more calls succeed, then goes down (as
    /// [`MemoryRemote::set_down`]); `set_down(false)` lifts it.
    pub fn go_down_after(&self, calls: i64) {
        self.budget.store(calls, Ordering::SeqCst);
    }

    /// While down, every call fails with `ConnectionRefused`.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if !down {
            self.budget.store(-1, Ordering::SeqCst);
        }
    }

    /// Object paths currently stored, sorted.
    pub fn paths(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Calls made so far, failed ones included.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check(&self) -> io::Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.budget.load(Ordering::SeqCst) == 0 {
            self.down.store(true, Ordering::SeqCst);
        }
        if self.budget.load(Ordering::SeqCst) > 0 {
            self.budget.fetch_sub(1, Ordering::SeqCst);
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "object storage is down (test switch)",
            ));
        }
        Ok(())
    }
}

impl RemoteBlocks for MemoryRemote {
    fn list(&self) -> io::Result<Vec<RemoteObject>> {
        self.check()?;
        Ok(self
            .lock()
            .iter()
            .map(|(p, d)| RemoteObject {
                path: p.clone(),
                size: d.len() as u64,
            })
            .collect())
    }

    fn upload(&self, path: &str, src: &Path) -> io::Result<()> {
        self.check()?;
        let data = std::fs::read(src)?;
        self.lock().insert(path.to_owned(), data);
        Ok(())
    }

    fn download(&self, path: &str, dst: &Path) -> io::Result<u64> {
        let data = self.get(path)?;
        std::fs::write(dst, &data)?;
        Ok(data.len() as u64)
    }

    fn get(&self, path: &str) -> io::Result<Vec<u8>> {
        self.check()?;
        self.lock()
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{path} not found")))
    }

    fn delete_prefix(&self, prefix: &str) -> io::Result<u64> {
        self.check()?;
        let dir = format!("{prefix}/");
        let mut objects = self.lock();
        let before = objects.len();
        objects.retain(|p, _| p != prefix && !p.starts_with(&dir));
        Ok((before - objects.len()) as u64)
    }
}
