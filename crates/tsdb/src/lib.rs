//! The metrics storage engine: a write-ahead log, an in-memory head of
//! compressed chunks with an inverted index, and immutable blocks, kept in
//! object storage through [`RemoteBlocks`] with a local cache. No HTTP
//! lives here so the engine can be benchmarked and fuzzed alone. The
//! on-disk and chunk formats are specified in `FORMAT.md` next to this
//! crate's `Cargo.toml`.
//!
//! ```
//! use pharos_model::{Labels, Matcher, Sample};
//! use pharos_tsdb::{Tsdb, TsdbOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let db = Tsdb::open(dir.path(), TsdbOptions::default()).unwrap();
//! let up = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
//! let report = db.append(&[(up.clone(), vec![Sample::new(1_000, 1.0)])]).unwrap();
//! assert!(report.errors.is_empty());
//! let got = db.select(&[Matcher::equal("job", "node")], 0, 2_000).unwrap();
//! assert_eq!(got, vec![(up, vec![Sample::new(1_000, 1.0)])]);
//! // call periodically: cuts blocks, compacts, applies retention
//! db.maintain().unwrap();
//! ```

pub mod block;
mod catalog;
pub mod chunk;
pub mod crc32c;
pub mod db;
pub mod error;
mod hash;
pub mod head;
pub mod index;
pub mod remote;
pub mod wal;

#[cfg(test)]
pub(crate) mod testutil;

pub use chunk::{Chunk, ChunkAppender, ChunkIter, Encoding, TimeEncoding, ValueEncoding};

pub use block::{Block, BlockMeta, BlockStats, compact, write_block};
pub use db::{
    AppendReport, DEFAULT_CACHE_SIZE, MaintainReport, SelectError, SeriesError, Tsdb, TsdbOptions,
};
pub use error::TsdbError;
pub use head::{Head, HeadOptions, HeadStats, MetricMetadata, MetricType};
pub use index::{Index, SeriesRef};
pub use remote::{MemoryRemote, RemoteBlocks, RemoteObject, RemoteStats};
pub use wal::{FsyncPolicy, ReplayStats, Wal, WalOptions, WalRecord};
