//! A deterministic remote_write load generator.
//!
//! Every sample is a pure function of (series index, scrape index), so a
//! run's log only needs the ids of acknowledged batches to know exactly
//! which (series, timestamp, value) triples a server promised to keep.

pub mod corpus;
pub mod error;
pub mod plan;
pub mod run;
pub mod series;
pub mod verify;
mod wire;

pub use error::LoadgenError;
pub use plan::{BatchId, Plan};
pub use run::{Outcome, RunOptions, RunReport, run};
pub use series::{Kind, SeriesSet, SeriesSpec};
pub use verify::{VerifyReport, verify};
