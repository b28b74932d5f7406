//! TSDB blocks in object storage: the engine's blocking [`RemoteBlocks`]
//! over `pharos-storage`, one prefix per tenant
//! (`metrics/<tenant>/blocks/<ulid>/{index,chunks,meta.json}`), and the
//! catalogue's counters on `/metrics`.
//!
//! The engine calls from maintenance and query threads (tokio's blocking
//! pool), so each call runs its future on the runtime through a handle and
//! waits for it; the storage layer's deadline bounds the wait.

use std::fmt;
use std::fmt::Write as _;
use std::future::Future;
use std::io::{self, Read as _, Write as _};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use pharos_core::TenantId;
use pharos_server::metrics::Collect;
use pharos_storage::{DEFAULT_PART_SIZE, ObjectStorage, StorageError};
use pharos_tsdb::{RemoteBlocks, RemoteObject, RemoteStats};
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::store::TenantStore;

/// Files up to this size move in one request; larger ones in parts (upload)
/// or ranges (download), so memory stays bounded for big blocks.
const WHOLE_OBJECT_MAX: u64 = DEFAULT_PART_SIZE as u64;

/// Object storage for every tenant's blocks, under `metrics/`.
#[derive(Clone)]
pub struct BlockStorage {
    root: ObjectStorage,
    handle: Handle,
}

impl fmt::Debug for BlockStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockStorage")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl BlockStorage {
    /// `handle` runs the storage futures; calls made through this type
    /// must come from outside async tasks (e.g. `spawn_blocking`).
    pub fn new(storage: &ObjectStorage, handle: Handle) -> Self {
        Self {
            root: storage.scoped("metrics"),
            handle,
        }
    }

    /// Tenants with anything under `metrics/` in the store.
    pub fn tenants(&self) -> Result<Vec<TenantId>, StorageError> {
        let names = wait(&self.handle, self.root.list_dirs(""))?;
        Ok(names
            .into_iter()
            .filter_map(|n| match TenantId::parse(&n) {
                Ok(t) => Some(t),
                Err(_) => {
                    tracing::warn!(prefix = %n, "ignoring object storage prefix that is not a tenant id");
                    None
                }
            })
            .collect())
    }

    /// One tenant's blocks, for its TSDB.
    pub fn for_tenant(&self, tenant: &TenantId) -> Arc<dyn RemoteBlocks> {
        Arc::new(TenantBlocks {
            storage: self.root.scoped(&format!("{}/blocks", tenant.as_str())),
            handle: self.handle.clone(),
        })
    }
}

/// Runs `fut` to completion from a thread that may block. On a worker of
/// a multi-threaded runtime the worker's other tasks are handed off first.
fn wait<F: Future>(handle: &Handle, fut: F) -> F::Output {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(|| handle.block_on(fut)),
        _ => handle.block_on(fut),
    }
}

fn io_err(e: StorageError) -> io::Error {
    let kind = match &e {
        StorageError::NotFound { .. } => io::ErrorKind::NotFound,
        StorageError::Unavailable { .. } => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

/// `metrics/<tenant>/blocks/` as the TSDB sees it.
struct TenantBlocks {
    storage: ObjectStorage,
    handle: Handle,
}

impl fmt::Debug for TenantBlocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantBlocks")
            .field("prefix", &self.storage.prefix())
            .finish_non_exhaustive()
    }
}

impl TenantBlocks {
    async fn upload_async(&self, path: &str, src: &Path) -> io::Result<()> {
        let mut file = std::fs::File::open(src)?;
        let len = file.metadata()?.len();
        if len <= WHOLE_OBJECT_MAX {
            let mut data = Vec::with_capacity(len as usize);
            file.read_to_end(&mut data)?;
            return self
                .storage
                .put(path, Bytes::from(data))
                .await
                .map_err(io_err);
        }
        let mut up = self.storage.upload(path).await.map_err(io_err)?;
        let mut buf = vec![0u8; DEFAULT_PART_SIZE];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            // a failed part poisons the upload; dropping it aborts
            up.write(Bytes::copy_from_slice(&buf[..n]))
                .await
                .map_err(io_err)?;
        }
        up.complete().await.map(drop).map_err(io_err)
    }

    async fn download_async(&self, path: &str, dst: &Path) -> io::Result<u64> {
        let size = self.storage.head(path).await.map_err(io_err)?.size;
        let mut out = io::BufWriter::new(std::fs::File::create(dst)?);
        if size <= WHOLE_OBJECT_MAX {
            let data = self.storage.get(path).await.map_err(io_err)?;
            out.write_all(&data)?;
        } else {
            let mut at = 0u64;
            while at < size {
                let end = (at + WHOLE_OBJECT_MAX).min(size);
                let data = self
                    .storage
                    .get_range(path, at..end)
                    .await
                    .map_err(io_err)?;
                out.write_all(&data)?;
                at = end;
            }
        }
        out.flush()?;
        Ok(size)
    }
}

impl RemoteBlocks for TenantBlocks {
    fn list(&self) -> io::Result<Vec<RemoteObject>> {
        let objects = wait(&self.handle, self.storage.list("")).map_err(io_err)?;
        Ok(objects
            .into_iter()
            .map(|o| RemoteObject {
                path: o.path,
                size: o.size,
            })
            .collect())
    }

    fn upload(&self, path: &str, src: &Path) -> io::Result<()> {
        wait(&self.handle, self.upload_async(path, src))
    }

    fn download(&self, path: &str, dst: &Path) -> io::Result<u64> {
        wait(&self.handle, self.download_async(path, dst))
    }

    fn get(&self, path: &str) -> io::Result<Vec<u8>> {
        wait(&self.handle, self.storage.get(path))
            .map(|b| b.to_vec())
            .map_err(io_err)
    }

    fn delete_prefix(&self, prefix: &str) -> io::Result<u64> {
        wait(&self.handle, self.storage.delete_prefix(prefix))
            .map(|n| n as u64)
            .map_err(io_err)
    }
}

/// The block catalogue's counters and sizes, summed over tenants.
impl Collect for TenantStore {
    fn collect(&self, out: &mut String) {
        let mut t = RemoteStats::default();
        for (_, db) in self.tenants() {
            let s = db.remote_stats();
            t.blocks += s.blocks;
            t.block_bytes += s.block_bytes;
            t.pending_uploads += s.pending_uploads;
            t.cached_blocks += s.cached_blocks;
            t.cached_bytes += s.cached_bytes;
            t.uploads += s.uploads;
            t.upload_failures += s.upload_failures;
            t.downloads += s.downloads;
            t.download_failures += s.download_failures;
            t.evictions += s.evictions;
            t.remote_deletes += s.remote_deletes;
            t.remote_delete_failures += s.remote_delete_failures;
        }
        let rows: [(&str, &str, &str, u64); 12] = [
            (
                "pharos_tsdb_blocks",
                "gauge",
                "TSDB blocks, local or in object storage.",
                t.blocks,
            ),
            (
                "pharos_tsdb_block_bytes",
                "gauge",
                "Total size of the TSDB blocks in bytes (what retention_size counts).",
                t.block_bytes,
            ),
            (
                "pharos_tsdb_blocks_pending_upload",
                "gauge",
                "Blocks on local disk not yet confirmed in object storage.",
                t.pending_uploads,
            ),
            (
                "pharos_tsdb_block_cache_blocks",
                "gauge",
                "Uploaded blocks with a copy in the local cache.",
                t.cached_blocks,
            ),
            (
                "pharos_tsdb_block_cache_bytes",
                "gauge",
                "Bytes of uploaded blocks in the local cache.",
                t.cached_bytes,
            ),
            (
                "pharos_tsdb_block_uploads_total",
                "counter",
                "Blocks uploaded to object storage.",
                t.uploads,
            ),
            (
                "pharos_tsdb_block_upload_failures_total",
                "counter",
                "Block uploads that failed; the block stays local and is retried.",
                t.upload_failures,
            ),
            (
                "pharos_tsdb_block_downloads_total",
                "counter",
                "Blocks downloaded into the local cache for queries or compaction.",
                t.downloads,
            ),
            (
                "pharos_tsdb_block_download_failures_total",
                "counter",
                "Block downloads that failed.",
                t.download_failures,
            ),
            (
                "pharos_tsdb_block_cache_evictions_total",
                "counter",
                "Blocks dropped from the local cache to stay within block_cache_size.",
                t.evictions,
            ),
            (
                "pharos_tsdb_block_remote_deletions_total",
                "counter",
                "Blocks deleted from object storage (retention, merged sources).",
                t.remote_deletes,
            ),
            (
                "pharos_tsdb_block_remote_deletion_failures_total",
                "counter",
                "Block deletions from object storage that failed and are retried.",
                t.remote_delete_failures,
            ),
        ];
        for (name, kind, help, v) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
    }
}
