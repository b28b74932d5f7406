//! Object storage for every Pharos signal: a thin layer over `object_store`
//! with one error type, scoped prefixes, deadlines, retries and counters,
//! plus a conformance suite that every backend must pass.

pub mod config;
pub mod conformance;
pub mod error;
pub mod metrics;
pub mod store;
pub mod testing;

pub use config::{Backend, FilesystemConfig, RetryConfig, S3Config, Secret, StorageConfig};
pub use error::StorageError;
pub use metrics::{Op, OpStats, StorageMetrics};
pub use store::{DEFAULT_PART_SIZE, MIN_PART_SIZE, ObjectMeta, ObjectStorage, Upload};
