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
