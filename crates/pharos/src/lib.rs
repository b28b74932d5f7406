//! The Pharos binaries' shared start-up: flags, configuration, logging,
//! and the roles each binary runs.

pub mod cli;
pub mod config;
pub mod logging;
pub mod roles;
pub mod run;
pub mod storage_metrics;

pub use cli::Args;
pub use config::PharosConfig;
pub use roles::Role;
pub use run::{main_for, run};

/// Every binary allocates through jemalloc unless built without the
/// `jemalloc` feature (see docs/benchmarks.md for why).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
