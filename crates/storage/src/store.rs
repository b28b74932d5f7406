//! [`ObjectStorage`]: the one handle every Pharos component uses to reach
//! object storage.
//!
//! It adds to object_store what each caller would otherwise repeat: a scope
//! prefix (`metrics/<tenant>`) so tenants cannot see each other's keys, one
//! error type, a hard deadline per operation, retries for transient
//! failures, and counters.

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientConfigKey, GetOptions, GetRange, MultipartUpload, ObjectStore,
    ObjectStoreExt, PutMode, PutOptions, PutPayload,
};
use tracing::{debug, warn};

use crate::config::{Backend, RetryConfig, S3Config, StorageConfig};
use crate::error::StorageError;
use crate::metrics::{Op, StorageMetrics};

/// S3's minimum size for every part but the last.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// Large enough to keep request overhead low, small enough that a writer per
/// tenant does not hold much memory.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// What [`ObjectStorage::head`] and [`ObjectStorage::list`] report about an
/// object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Key relative to the scope of the storage that returned it, so it can
    /// be passed straight back to `get`.
    pub path: String,
    pub size: u64,
    pub last_modified: SystemTime,
}

/// A cloneable handle on one object store, seen through a key prefix.
///
/// Clones and [`ObjectStorage::scoped`] views share the connection pool and
/// the counters.
#[derive(Clone)]
pub struct ObjectStorage {
    inner: Arc<dyn ObjectStore>,
    prefix: Path,
    backend: &'static str,
    part_size: usize,
    shared: Arc<Shared>,
}

struct Shared {
    metrics: StorageMetrics,
    policy: Policy,
    /// Credential values to scrub from error messages.
    secrets: Vec<String>,
}

#[derive(Debug, Clone)]
struct Policy {
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    total_timeout: Duration,
    /// Whether our loop retries transient errors. Off for S3, whose HTTP
    /// client already retried them: retrying again would multiply attempts
    /// against a server that is struggling.
    local_retries: bool,
}

impl Policy {
    fn new(retry: &RetryConfig, local_retries: bool) -> Self {
        Self {
            max_retries: retry.max_retries,
            initial_backoff: retry.initial_backoff(),
            max_backoff: retry.max_backoff().max(retry.initial_backoff()),
            total_timeout: retry.total_timeout(),
            local_retries,
        }
    }

    /// Exponential backoff with "equal jitter": half fixed, half random, so
    /// replicas that failed together do not retry together.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.max_backoff);
        let half = exp / 2;
        let random = RandomState::new().hash_one(attempt) % 1_000_000;
        half + half.mul_f64(random as f64 / 1_000_000.0)
    }
}

impl fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStorage")
            .field("backend", &self.backend)
            .field("prefix", &self.prefix.as_ref())
            .finish_non_exhaustive()
    }
}

impl ObjectStorage {
    /// Opens the configured backend. Nothing is sent to S3 here, so a
    /// server that is down shows up on the first operation, not at start.
    pub async fn from_config(config: &StorageConfig) -> Result<Self, StorageError> {
        config.validate().map_err(StorageError::InvalidConfig)?;
        match config.backend {
            Backend::Memory => Ok(Self::from_object_store(
                Arc::new(InMemory::new()),
                Backend::Memory.as_str(),
                &config.retry,
            )),
            Backend::Filesystem => {
                let root = config.filesystem.path.clone();
                let fs = tokio::task::spawn_blocking(move || {
                    std::fs::create_dir_all(&root).map_err(|e| {
                        StorageError::InvalidConfig(format!(
                            "storage.filesystem.path: cannot create {}: {e}",
                            root.display()
                        ))
                    })?;
                    LocalFileSystem::new_with_prefix(&root).map_err(|e| {
                        StorageError::InvalidConfig(format!("storage.filesystem.path: {e}"))
                    })
                })
                .await
                .map_err(|e| {
                    StorageError::InvalidConfig(format!("storage.filesystem.path: {e}"))
                })??;
                // Without cleanup, deleted blocks would leave empty
                // directories behind that `list_dirs` keeps reporting.
                let fs = fs.with_automatic_cleanup(true);
                Ok(Self::from_object_store(
                    Arc::new(fs),
                    Backend::Filesystem.as_str(),
                    &config.retry,
                ))
            }
            Backend::S3 => {
                let (store, secrets) = build_s3(&config.s3, &config.retry)?;
                Ok(Self {
                    inner: store,
                    prefix: Path::default(),
                    backend: Backend::S3.as_str(),
                    part_size: DEFAULT_PART_SIZE,
                    shared: Arc::new(Shared {
                        metrics: StorageMetrics::default(),
                        policy: Policy::new(&config.retry, false),
                        secrets,
                    }),
                })
            }
        }
    }

    /// An empty in-memory store with default retry settings, for tests.
    pub fn memory() -> Self {
        Self::from_object_store(
            Arc::new(InMemory::new()),
            Backend::Memory.as_str(),
            &RetryConfig::default(),
        )
    }

    /// Wraps any object_store implementation (a test double, a throttled
    /// store...). Transient errors from it are retried by our own loop.
    pub fn from_object_store(
        store: Arc<dyn ObjectStore>,
        backend: &'static str,
        retry: &RetryConfig,
    ) -> Self {
        Self {
            inner: store,
            prefix: Path::default(),
            backend,
            part_size: DEFAULT_PART_SIZE,
            shared: Arc::new(Shared {
                metrics: StorageMetrics::default(),
                policy: Policy::new(retry, true),
                secrets: Vec::new(),
            }),
        }
    }

    /// A view of the keys under `prefix` (e.g. `metrics/<tenant>`), nested
    /// in this view's own prefix.
    ///
    /// Segments that could escape the scope (`..`, `.`) or contain
    /// reserved characters are percent-encoded rather than rejected, so a
    /// hostile tenant id can only ever name a directory inside the scope.
    pub fn scoped(&self, prefix: &str) -> Self {
        let sub = Path::from(prefix);
        let mut scoped = self.clone();
        scoped.prefix.extend(sub.parts());
        scoped
    }

    /// Sets the size of multipart upload parts for uploads started from the
    /// returned handle; clamped to S3's 5 MiB minimum so the same code works
    /// on every backend.
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(MIN_PART_SIZE);
        self
    }

    /// `filesystem`, `s3`, `memory`, or the name given to
    /// [`ObjectStorage::from_object_store`].
    pub fn backend_name(&self) -> &'static str {
        self.backend
    }

    /// The scope prefix, `""` at the root of the bucket.
    pub fn prefix(&self) -> &str {
        self.prefix.as_ref()
    }

    pub fn metrics(&self) -> &StorageMetrics {
        &self.shared.metrics
    }

    /// Writes `data` to `path`, replacing any object there.
    pub async fn put(&self, path: &str, data: Bytes) -> Result<(), StorageError> {
        let key = self.object_key(path)?;
        let fail = error_mapper(Op::Put, &key);
        self.run(Op::Put, &key, || {
            let payload = PutPayload::from_bytes(data.clone());
            async {
                self.inner
                    .put_opts(&key, payload, PutOptions::default())
                    .await
                    .map(drop)
                    .map_err(&fail)
            }
        })
        .await
    }

    /// Writes `data` only if nothing is at `path` yet; `AlreadyExists`
    /// otherwise. This is how two replicas racing to upload the same block
    /// settle who wins.
    ///
    /// S3 servers must support `If-None-Match: *` on PUT (AWS since 2024,
    /// MinIO, R2, s3s-fs do); others fail with `Unsupported` or silently
    /// overwrite. If a first attempt times out after the server stored the
    /// object, the retry reports `AlreadyExists` for our own write.
    pub async fn put_if_absent(&self, path: &str, data: Bytes) -> Result<(), StorageError> {
        let key = self.object_key(path)?;
        let fail = error_mapper(Op::PutIfAbsent, &key);
        self.run(Op::PutIfAbsent, &key, || {
            let payload = PutPayload::from_bytes(data.clone());
            let opts = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            async {
                self.inner
                    .put_opts(&key, payload, opts)
                    .await
                    .map(drop)
                    .map_err(&fail)
            }
        })
        .await
    }

    /// Reads a whole object.
    pub async fn get(&self, path: &str) -> Result<Bytes, StorageError> {
        let key = self.object_key(path)?;
        let fail = error_mapper(Op::Get, &key);
        self.run(Op::Get, &key, || async {
            let result = self
                .inner
                .get_opts(&key, GetOptions::default())
                .await
                .map_err(&fail)?;
            result.bytes().await.map_err(&fail)
        })
        .await
    }

    /// Reads `range` of an object. Unlike HTTP, a range that is empty or
    /// reaches past the end of the object is an error (`InvalidRange`):
    /// block readers compute ranges from an index, and a short read there
    /// means corruption, which must not pass silently.
    pub async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        let key = self.object_key(path)?;
        let invalid = |reason: String| StorageError::InvalidRange {
            path: key.to_string(),
            range: range.clone(),
            reason,
        };
        if range.start >= range.end {
            return Err(invalid("range is empty".to_owned()));
        }
        let fail = |e: object_store::Error| {
            let mapped = StorageError::from_object_store(Op::GetRange.as_str(), key.as_ref(), e);
            match mapped {
                // object_store has no variant for "range not satisfiable";
                // every backend says "range" in the message.
                StorageError::Internal { reason, .. }
                    if reason.to_ascii_lowercase().contains("range") =>
                {
                    invalid(reason)
                }
                other => other,
            }
        };
        self.run(Op::GetRange, &key, || async {
            let opts = GetOptions::default().with_range(Some(GetRange::Bounded(range.clone())));
            let result = self.inner.get_opts(&key, opts).await.map_err(&fail)?;
            let size = result.meta.size;
            if range.end > size {
                return Err(invalid(format!("object is {size} bytes")));
            }
            let bytes = result.bytes().await.map_err(&fail)?;
            let want = range.end - range.start;
            if bytes.len() as u64 != want {
                return Err(StorageError::Internal {
                    op: Op::GetRange.as_str(),
                    path: key.to_string(),
                    reason: format!("backend returned {} bytes, wanted {want}", bytes.len()),
                });
            }
            Ok(bytes)
        })
        .await
    }

    /// Size and modification time of an object, without its content.
    pub async fn head(&self, path: &str) -> Result<ObjectMeta, StorageError> {
        let key = self.object_key(path)?;
        let fail = error_mapper(Op::Head, &key);
        self.run(Op::Head, &key, || async {
            let meta = self.inner.head(&key).await.map_err(&fail)?;
            Ok(self.relative_meta(meta))
        })
        .await
    }

    /// Every object under `prefix` at any depth, sorted by path. `""` lists
    /// the whole scope. Matching is by whole segments: `a` matches `a/x` but
    /// not `ab/x`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let key = self.prefix_key(prefix)?;
        let fail = error_mapper(Op::List, &key);
        self.run(Op::List, &key, || async {
            let metas: Vec<_> = self
                .inner
                .list(non_root(&key))
                .map_err(&fail)
                .map_ok(|meta| self.relative_meta(meta))
                .try_collect()
                .await?;
            let mut metas = metas;
            metas.sort_by(|a, b| a.path.cmp(&b.path));
            Ok(metas)
        })
        .await
    }

    /// The names (last segment only, sorted) of the "directories" directly
    /// under `prefix`: `list_dirs("metrics")` gives the tenant ids, ready
    /// for `scoped(&format!("metrics/{id}"))`.
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let key = self.prefix_key(prefix)?;
        let fail = error_mapper(Op::ListDirs, &key);
        self.run(Op::ListDirs, &key, || async {
            let listing = self
                .inner
                .list_with_delimiter(non_root(&key))
                .await
                .map_err(&fail)?;
            let mut dirs: Vec<String> = listing
                .common_prefixes
                .iter()
                .filter_map(|p| p.filename().map(str::to_owned))
                .collect();
            dirs.sort();
            dirs.dedup();
            Ok(dirs)
        })
        .await
    }

    /// Removes an object; removing one that is not there is fine, so a
    /// retried or repeated cleanup never fails.
    pub async fn delete(&self, path: &str) -> Result<(), StorageError> {
        let key = self.object_key(path)?;
        let fail = error_mapper(Op::Delete, &key);
        self.run(Op::Delete, &key, || async {
            match self.inner.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(fail(e)),
            }
        })
        .await
    }

    /// Removes every object under `prefix` and returns how many were
    /// removed. Refuses to empty the whole bucket (root scope and `""`),
    /// which is never what a caller means.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize, StorageError> {
        let key = self.prefix_key(prefix)?;
        if key.is_root() {
            return Err(StorageError::InvalidPath {
                path: prefix.to_owned(),
                reason: "refusing to delete every object in the bucket".to_owned(),
            });
        }
        let fail = error_mapper(Op::DeletePrefix, &key);
        self.run(Op::DeletePrefix, &key, || async {
            let locations: Vec<Path> = self
                .inner
                .list(Some(&key))
                .map_ok(|meta| meta.location)
                .try_collect()
                .await
                .map_err(&fail)?;
            let count = locations.len();
            // delete_stream lets S3 batch up to 1000 keys per request.
            let results: Vec<_> = self
                .inner
                .delete_stream(futures::stream::iter(locations.into_iter().map(Ok)).boxed())
                .collect()
                .await;
            for result in results {
                match result {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(fail(e)),
                }
            }
            Ok(count)
        })
        .await
    }

    /// Starts a multipart upload for objects too large to hold in memory.
    /// Nothing is visible at `path` until [`Upload::complete`].
    pub async fn upload(&self, path: &str) -> Result<Upload, StorageError> {
        let key = self.object_key(path)?;
        let fail = error_mapper(Op::UploadStart, &key);
        let inner = self
            .run(Op::UploadStart, &key, || async {
                self.inner
                    .put_multipart_opts(&key, Default::default())
                    .await
                    .map_err(&fail)
            })
            .await?;
        Ok(Upload {
            storage: self.clone(),
            key,
            inner: Some(inner),
            pending: Vec::new(),
            pending_len: 0,
            parts: 0,
            size: 0,
            poisoned: false,
        })
    }

    /// Runs one operation under the deadline, retrying transient failures
    /// when the backend does not retry by itself.
    async fn run<T, F, Fut>(&self, op: Op, key: &Path, mut attempt: F) -> Result<T, StorageError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StorageError>>,
    {
        let policy = &self.shared.policy;
        let started = Instant::now();
        let deadline = started + policy.total_timeout;
        self.shared.metrics.started(op);
        let mut attempts: u32 = 0;
        let result = loop {
            attempts += 1;
            match self.attempt(op, key, deadline, attempts, attempt()).await {
                Err(e)
                    if e.is_transient()
                        && policy.local_retries
                        && attempts <= policy.max_retries =>
                {
                    let delay = policy.backoff(attempts - 1);
                    if Instant::now() + delay >= deadline {
                        break Err(e);
                    }
                    warn!(
                        op = op.as_str(),
                        path = %key,
                        attempt = attempts,
                        delay_ms = delay.as_millis() as u64,
                        error = %e,
                        "storage operation failed, retrying"
                    );
                    self.shared.metrics.retried(op);
                    tokio::time::sleep(delay).await;
                }
                other => break other,
            }
        };
        self.finish(op, key, started, attempts, result)
    }

    /// [`Self::run`] for steps that cannot be repeated (a multipart part
    /// whose number is used up), still bounded by the deadline.
    async fn run_once<T>(
        &self,
        op: Op,
        key: &Path,
        fut: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        let started = Instant::now();
        let deadline = started + self.shared.policy.total_timeout;
        self.shared.metrics.started(op);
        let result = self.attempt(op, key, deadline, 1, fut).await;
        self.finish(op, key, started, 1, result)
    }

    async fn attempt<T>(
        &self,
        op: Op,
        key: &Path,
        deadline: Instant,
        attempts: u32,
        fut: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, fut).await {
            Ok(outcome) => outcome.map_err(|e| e.redact(&self.shared.secrets)),
            Err(_) => Err(StorageError::Unavailable {
                op: op.as_str(),
                path: key.to_string(),
                reason: if attempts > 1 {
                    format!(
                        "no answer within {:?} ({attempts} attempts)",
                        self.shared.policy.total_timeout
                    )
                } else {
                    format!("no answer within {:?}", self.shared.policy.total_timeout)
                },
            }),
        }
    }

    fn finish<T>(
        &self,
        op: Op,
        key: &Path,
        started: Instant,
        attempts: u32,
        result: Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(_) => {
                debug!(op = op.as_str(), path = %key, elapsed_ms, attempts, "storage operation done");
            }
            Err(e) => {
                self.shared.metrics.failed(op);
                if matches!(
                    e,
                    StorageError::Unavailable { .. } | StorageError::Internal { .. }
                ) {
                    warn!(op = op.as_str(), path = %key, elapsed_ms, attempts, error = %e, "storage operation failed");
                } else {
                    debug!(op = op.as_str(), path = %key, elapsed_ms, attempts, error = %e, "storage operation failed");
                }
            }
        }
        result
    }

    /// The full key of an object: must name an object, not the scope itself.
    fn object_key(&self, path: &str) -> Result<Path, StorageError> {
        let key = self.prefix_key(path)?;
        if key == self.prefix {
            return Err(StorageError::InvalidPath {
                path: path.to_owned(),
                reason: "empty object path".to_owned(),
            });
        }
        Ok(key)
    }

    /// Caller keys are parsed strictly: an empty segment or `..` in a key is
    /// a bug upstream that should surface, not be encoded away.
    fn prefix_key(&self, path: &str) -> Result<Path, StorageError> {
        let relative = Path::parse(path).map_err(|e| StorageError::InvalidPath {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let mut key = self.prefix.clone();
        key.extend(relative.parts());
        Ok(key)
    }

    fn relative_meta(&self, meta: object_store::ObjectMeta) -> ObjectMeta {
        let path = match meta.location.prefix_match(&self.prefix) {
            Some(parts) => Path::from_iter(parts).to_string(),
            None => meta.location.to_string(),
        };
        ObjectMeta {
            path,
            size: meta.size,
            last_modified: SystemTime::from(meta.last_modified),
        }
    }
}

/// object_store lists "everything" with `None`; S3 would turn
/// `Some(root)` into the prefix `/` and find nothing.
fn non_root(key: &Path) -> Option<&Path> {
    (!key.is_root()).then_some(key)
}

fn error_mapper(op: Op, key: &Path) -> impl Fn(object_store::Error) -> StorageError + use<> {
    let key = key.to_string();
    move |e| StorageError::from_object_store(op.as_str(), &key, e)
}

fn build_s3(
    s3: &S3Config,
    retry: &RetryConfig,
) -> Result<(Arc<dyn ObjectStore>, Vec<String>), StorageError> {
    let mut secrets = Vec::new();
    let explicit_keys = s3.access_key_id.as_deref().is_some_and(|id| !id.is_empty());
    let mut builder = if explicit_keys {
        // Not from_env: a stray AWS_SESSION_TOKEN in the environment would
        // be sent with keys it does not belong to.
        let mut builder =
            AmazonS3Builder::new().with_access_key_id(s3.access_key_id.clone().unwrap_or_default());
        if let Some(secret) = &s3.secret_access_key {
            secrets.push(secret.expose().to_owned());
            builder = builder.with_secret_access_key(secret.expose());
        }
        if let Some(token) = s3.session_token.as_ref().filter(|t| !t.is_empty()) {
            secrets.push(token.expose().to_owned());
            builder = builder.with_token(token.expose());
        }
        builder
    } else {
        for var in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
            if let Ok(value) = std::env::var(var) {
                secrets.push(value);
            }
        }
        AmazonS3Builder::from_env()
    };
    // Short values would turn every "a" in a message into <secret>.
    secrets.retain(|s| s.len() >= 4);

    if let Some(endpoint) = &s3.endpoint {
        // AWS_ENDPOINT_URL_S3 from the environment would otherwise win.
        builder = builder
            .with_endpoint(endpoint)
            .with_config(AmazonS3ConfigKey::S3Endpoint, endpoint);
    }
    let builder = builder
        .with_bucket_name(&s3.bucket)
        .with_region(&s3.region)
        .with_virtual_hosted_style_request(!s3.force_path_style)
        .with_allow_http(s3.allow_http)
        .with_retry(object_store::RetryConfig {
            backoff: BackoffConfig {
                init_backoff: retry.initial_backoff(),
                max_backoff: retry.max_backoff().max(retry.initial_backoff()),
                base: 2.0,
            },
            max_retries: retry.max_retries as usize,
            retry_timeout: retry.total_timeout(),
        })
        // Set through with_config so that client settings from the
        // environment (proxy, AWS_ALLOW_HTTP) are kept.
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
            format!("{}ms", retry.request_timeout().as_millis()),
        )
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
            format!("{}ms", retry.connect_timeout().as_millis()),
        );
    let store = builder
        .build()
        .map_err(|e| StorageError::InvalidConfig(format!("storage.s3: {e}")).redact(&secrets))?;
    Ok((Arc::new(store), secrets))
}

/// A multipart upload in progress, from [`ObjectStorage::upload`].
///
/// Data is buffered and sent in parts of exactly the part size (some S3
/// implementations reject unequal parts), one part in flight at a time so
/// memory stays bounded. Dropping an upload that was neither completed nor
/// aborted aborts it in the background, so failed writers do not leave
/// orphaned parts that S3 bills for.
pub struct Upload {
    storage: ObjectStorage,
    key: Path,
    /// `None` once completed or aborted.
    inner: Option<Box<dyn MultipartUpload>>,
    pending: Vec<Bytes>,
    pending_len: usize,
    parts: usize,
    size: u64,
    /// Set when a part failed: the object would have a hole, so the upload
    /// can only be dropped (which aborts it).
    poisoned: bool,
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upload")
            .field("key", &self.key.as_ref())
            .field("parts", &self.parts)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Upload {
    /// Appends `data`, sending a part whenever a full one is buffered.
    pub async fn write(&mut self, mut data: Bytes) -> Result<(), StorageError> {
        self.check_usable(Op::UploadPart)?;
        self.size += data.len() as u64;
        while !data.is_empty() {
            let room = self.storage.part_size - self.pending_len;
            if data.len() < room {
                self.pending_len += data.len();
                self.pending.push(data);
                break;
            }
            self.pending.push(data.split_to(room));
            self.pending_len += room;
            self.flush_part().await?;
        }
        Ok(())
    }

    /// Sends what is buffered and makes the object visible; returns its
    /// size in bytes.
    pub async fn complete(mut self) -> Result<u64, StorageError> {
        self.check_usable(Op::UploadComplete)?;
        // S3 refuses to complete an upload with no parts, so an empty
        // object still gets one (empty) part.
        if self.pending_len > 0 || self.parts == 0 {
            self.flush_part().await?;
        }
        let Some(mut inner) = self.inner.take() else {
            return Err(self.finished_error(Op::UploadComplete));
        };
        let fail = error_mapper(Op::UploadComplete, &self.key);
        let result = self
            .storage
            .run_once(Op::UploadComplete, &self.key, async {
                inner.complete().await.map(drop).map_err(&fail)
            })
            .await;
        match result {
            Ok(()) => Ok(self.size),
            Err(e) => {
                // Give the parts back to Drop so they are cleaned up.
                self.inner = Some(inner);
                Err(e)
            }
        }
    }

    /// Discards the parts sent so far; nothing appears at the path.
    pub async fn abort(mut self) -> Result<(), StorageError> {
        let Some(mut inner) = self.inner.take() else {
            return Ok(());
        };
        let fail = error_mapper(Op::UploadAbort, &self.key);
        self.storage
            .run_once(Op::UploadAbort, &self.key, async {
                inner.abort().await.map_err(&fail)
            })
            .await
    }

    async fn flush_part(&mut self) -> Result<(), StorageError> {
        let payload: PutPayload = std::mem::take(&mut self.pending).into_iter().collect();
        self.pending_len = 0;
        let Some(inner) = self.inner.as_mut() else {
            return Err(self.finished_error(Op::UploadPart));
        };
        let fail = error_mapper(Op::UploadPart, &self.key);
        // Not retried here: a part that failed half-way has used up its
        // part number, and object_store already retried it over HTTP.
        let result = self
            .storage
            .run_once(Op::UploadPart, &self.key, async {
                inner.put_part(payload).await.map_err(&fail)
            })
            .await;
        match result {
            Ok(()) => {
                self.parts += 1;
                Ok(())
            }
            Err(e) => {
                self.poisoned = true;
                Err(e)
            }
        }
    }

    fn check_usable(&self, op: Op) -> Result<(), StorageError> {
        if self.poisoned {
            return Err(StorageError::Internal {
                op: op.as_str(),
                path: self.key.to_string(),
                reason: "an earlier part failed; drop this upload and start a new one".to_owned(),
            });
        }
        if self.inner.is_none() {
            return Err(self.finished_error(op));
        }
        Ok(())
    }

    fn finished_error(&self, op: Op) -> StorageError {
        StorageError::Internal {
            op: op.as_str(),
            path: self.key.to_string(),
            reason: "upload already completed or aborted".to_owned(),
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        let Some(mut inner) = self.inner.take() else {
            return;
        };
        let key = self.key.to_string();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                debug!(path = %key, "aborting abandoned upload");
                handle.spawn(async move {
                    if let Err(e) = inner.abort().await {
                        debug!(path = %key, error = %e, "abort of abandoned upload failed");
                    }
                });
            }
            Err(_) => warn!(path = %key, "upload dropped outside a runtime, parts left behind"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use futures::stream::BoxStream;
    use object_store::{
        CopyOptions, GetResult, ListResult, PutMultipartOptions, PutResult, Result as OsResult,
    };
    use pharos_core::error::{Classify, ErrorClass};

    use super::*;
    use crate::conformance;

    type BoxFut<'a, T> = Pin<Box<dyn Future<Output = OsResult<T>> + Send + 'a>>;

    /// A store that fails (or hangs) the next `failures` reads and writes
    /// the way a flaky network does, then behaves.
    #[derive(Debug, Default)]
    struct Flaky {
        inner: InMemory,
        failures: AtomicU32,
        calls: AtomicU32,
        hang: bool,
        part_failures: Arc<AtomicU32>,
        aborted: Arc<AtomicBool>,
    }

    #[derive(Debug)]
    struct FlakyUpload {
        inner: Box<dyn MultipartUpload>,
        part_failures: Arc<AtomicU32>,
        aborted: Arc<AtomicBool>,
    }

    impl MultipartUpload for FlakyUpload {
        fn put_part(&mut self, data: PutPayload) -> object_store::UploadPart {
            let left = self.part_failures.load(Ordering::SeqCst);
            if left > 0 {
                self.part_failures.store(left - 1, Ordering::SeqCst);
                return Box::pin(async {
                    Err(object_store::Error::Generic {
                        store: "Flaky",
                        source: Box::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
                    })
                });
            }
            self.inner.put_part(data)
        }

        fn complete<'life0, 'async_trait>(&'life0 mut self) -> BoxFut<'async_trait, PutResult>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            self.inner.complete()
        }

        fn abort<'life0, 'async_trait>(&'life0 mut self) -> BoxFut<'async_trait, ()>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            self.aborted.store(true, Ordering::SeqCst);
            self.inner.abort()
        }
    }

    impl fmt::Display for Flaky {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Flaky")
        }
    }

    impl Flaky {
        fn failing(failures: u32) -> Arc<Self> {
            Arc::new(Self {
                failures: AtomicU32::new(failures),
                ..Self::default()
            })
        }

        async fn fault(&self) -> OsResult<()> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let left = self.failures.load(Ordering::SeqCst);
            if left == 0 {
                return Ok(());
            }
            self.failures.store(left - 1, Ordering::SeqCst);
            if self.hang {
                std::future::pending::<()>().await;
            }
            Err(object_store::Error::Generic {
                store: "Flaky",
                source: Box::new(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "connection reset by peer",
                )),
            })
        }
    }

    // Written out by hand (it is what #[async_trait] expands to) so the
    // crate needs no async-trait dependency for one test double.
    impl ObjectStore for Flaky {
        fn put_opts<'life0, 'life1, 'async_trait>(
            &'life0 self,
            location: &'life1 Path,
            payload: PutPayload,
            opts: PutOptions,
        ) -> BoxFut<'async_trait, PutResult>
        where
            'life0: 'async_trait,
            'life1: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move {
                self.fault().await?;
                self.inner.put_opts(location, payload, opts).await
            })
        }

        fn put_multipart_opts<'life0, 'life1, 'async_trait>(
            &'life0 self,
            location: &'life1 Path,
            opts: PutMultipartOptions,
        ) -> BoxFut<'async_trait, Box<dyn MultipartUpload>>
        where
            'life0: 'async_trait,
            'life1: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move {
                let inner = self.inner.put_multipart_opts(location, opts).await?;
                Ok(Box::new(FlakyUpload {
                    inner,
                    part_failures: self.part_failures.clone(),
                    aborted: self.aborted.clone(),
                }) as Box<dyn MultipartUpload>)
            })
        }

        fn get_opts<'life0, 'life1, 'async_trait>(
            &'life0 self,
            location: &'life1 Path,
            options: GetOptions,
        ) -> BoxFut<'async_trait, GetResult>
        where
            'life0: 'async_trait,
            'life1: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move {
                self.fault().await?;
                self.inner.get_opts(location, options).await
            })
        }

        fn delete_stream(
            &self,
            locations: BoxStream<'static, OsResult<Path>>,
        ) -> BoxStream<'static, OsResult<Path>> {
            self.inner.delete_stream(locations)
        }

        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> BoxStream<'static, OsResult<object_store::ObjectMeta>> {
            self.inner.list(prefix)
        }

        fn list_with_delimiter<'life0, 'life1, 'async_trait>(
            &'life0 self,
            prefix: Option<&'life1 Path>,
        ) -> BoxFut<'async_trait, ListResult>
        where
            'life0: 'async_trait,
            'life1: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move {
                self.fault().await?;
                self.inner.list_with_delimiter(prefix).await
            })
        }

        fn copy_opts<'life0, 'life1, 'life2, 'async_trait>(
            &'life0 self,
            from: &'life1 Path,
            to: &'life2 Path,
            options: CopyOptions,
        ) -> BoxFut<'async_trait, ()>
        where
            'life0: 'async_trait,
            'life1: 'async_trait,
            'life2: 'async_trait,
            Self: 'async_trait,
        {
            self.inner.copy_opts(from, to, options)
        }
    }

    fn fast_retries(max_retries: u32) -> RetryConfig {
        RetryConfig {
            max_retries,
            initial_backoff: pharos_config::Duration::from_millis(1),
            max_backoff: pharos_config::Duration::from_millis(10),
            total_timeout: pharos_config::Duration::from_secs(5),
            ..RetryConfig::default()
        }
    }

    #[tokio::test]
    async fn memory_passes_conformance() {
        conformance::run_all(&ObjectStorage::memory()).await;
    }

    #[tokio::test]
    async fn filesystem_passes_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let config = StorageConfig {
            filesystem: crate::config::FilesystemConfig {
                // A root that does not exist yet: from_config creates it.
                path: dir.path().join("nested/data"),
            },
            ..StorageConfig::default()
        };
        let store = ObjectStorage::from_config(&config).await.unwrap();
        assert_eq!(store.backend_name(), "filesystem");
        conformance::run_all(&store).await;
        conformance::run_all(&store.scoped("tenant")).await;
    }

    #[tokio::test]
    async fn transient_failures_are_retried() {
        let flaky = Flaky::failing(3);
        let store = ObjectStorage::from_object_store(flaky.clone(), "flaky", &fast_retries(5));
        flaky.failures.store(0, Ordering::SeqCst);
        store.put("k", Bytes::from_static(b"v")).await.unwrap();
        flaky.failures.store(3, Ordering::SeqCst);

        assert_eq!(store.get("k").await.unwrap(), Bytes::from_static(b"v"));
        let stats = store.metrics().op(Op::Get);
        assert_eq!((stats.ops, stats.retries, stats.errors), (1, 3, 0));

        flaky.failures.store(2, Ordering::SeqCst);
        assert_eq!(store.list_dirs("").await.unwrap(), Vec::<String>::new());
        assert_eq!(store.metrics().op(Op::ListDirs).retries, 2);
    }

    #[tokio::test]
    async fn retries_are_bounded() {
        let flaky = Flaky::failing(100);
        let store = ObjectStorage::from_object_store(flaky.clone(), "flaky", &fast_retries(2));
        let err = store
            .put("some/key", Bytes::from_static(b"v"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StorageError::Unavailable { op: "put", .. }),
            "{err:?}"
        );
        assert_eq!(err.class(), ErrorClass::Unavailable);
        let text = err.to_string();
        assert!(text.contains("put") && text.contains("some/key"), "{text}");
        assert_eq!(
            flaky.calls.load(Ordering::SeqCst),
            3,
            "one try and two retries"
        );
        let stats = store.metrics().op(Op::Put);
        assert_eq!((stats.ops, stats.retries, stats.errors), (1, 2, 1));
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let flaky = Flaky::failing(0);
        let store = ObjectStorage::from_object_store(flaky.clone(), "flaky", &fast_retries(5));
        let err = store.get("missing").await.unwrap_err();
        assert!(matches!(err, StorageError::NotFound { .. }), "{err:?}");
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 1);
        assert_eq!(store.metrics().op(Op::Get).retries, 0);
    }

    #[tokio::test]
    async fn a_hanging_backend_hits_the_deadline() {
        let flaky = Arc::new(Flaky {
            failures: AtomicU32::new(100),
            hang: true,
            ..Flaky::default()
        });
        let retry = RetryConfig {
            total_timeout: pharos_config::Duration::from_secs(1),
            ..fast_retries(5)
        };
        let store = ObjectStorage::from_object_store(flaky, "flaky", &retry);
        let started = Instant::now();
        let err = store.get("k").await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(
            matches!(err, StorageError::Unavailable { op: "get", .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("no answer within"), "{err}");
        assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = Policy::new(
            &RetryConfig {
                initial_backoff: pharos_config::Duration::from_millis(100),
                max_backoff: pharos_config::Duration::from_millis(1000),
                ..RetryConfig::default()
            },
            true,
        );
        for attempt in 0..20 {
            let d = policy.backoff(attempt);
            let cap = Duration::from_millis((100u64 << attempt.min(10)).min(1000));
            assert!(
                d >= cap / 2 && d <= cap,
                "attempt {attempt}: {d:?} vs {cap:?}"
            );
        }
    }

    #[tokio::test]
    async fn dropped_upload_is_aborted() {
        let store = ObjectStorage::memory().with_part_size(MIN_PART_SIZE);
        let mut upload = store.upload("dropped").await.unwrap();
        upload
            .write(Bytes::from(vec![1u8; MIN_PART_SIZE + 1]))
            .await
            .unwrap();
        drop(upload);
        tokio::task::yield_now().await;
        assert!(store.list("").await.unwrap().is_empty());
        assert!(matches!(
            store.get("dropped").await,
            Err(StorageError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn a_failed_part_poisons_the_upload_and_drop_aborts_it() {
        let flaky = Flaky::failing(0);
        flaky.part_failures.store(1, Ordering::SeqCst);
        let store = ObjectStorage::from_object_store(flaky.clone(), "flaky", &fast_retries(5))
            .with_part_size(MIN_PART_SIZE);
        let mut upload = store.upload("u").await.unwrap();
        let err = upload
            .write(Bytes::from(vec![0u8; MIN_PART_SIZE]))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::Unavailable {
                    op: "upload_part",
                    ..
                }
            ),
            "{err:?}"
        );
        let err = upload.write(Bytes::from_static(b"more")).await.unwrap_err();
        assert!(err.to_string().contains("earlier part failed"), "{err}");
        drop(upload);
        for _ in 0..100 {
            if flaky.aborted.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            flaky.aborted.load(Ordering::SeqCst),
            "dropped upload was not aborted"
        );
        assert!(matches!(
            store.get("u").await,
            Err(StorageError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn whole_bucket_delete_is_refused() {
        let store = ObjectStorage::memory();
        store.put("a", Bytes::new()).await.unwrap();
        let err = store.delete_prefix("").await.unwrap_err();
        assert!(matches!(err, StorageError::InvalidPath { .. }), "{err:?}");
        assert_eq!(err.class(), ErrorClass::BadRequest);
        assert_eq!(store.list("").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn invalid_config_is_reported() {
        let config = StorageConfig {
            backend: Backend::S3,
            ..StorageConfig::default()
        };
        let err = ObjectStorage::from_config(&config).await.unwrap_err();
        assert!(err.to_string().contains("storage.s3.bucket"), "{err}");
    }
}
