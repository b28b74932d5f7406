//! `metrics-server`: the Prometheus-compatible role. Today it serves the
//! upstream routes' shape (501 where the engine is not built yet) and the
//! status endpoints; scraping, remote_write, the TSDB and PromQL land here.

pub mod api;
pub mod blocks;
pub mod config;
pub mod error;
pub mod ingest;
pub mod otlp;
pub mod query_api;
pub mod reader;
pub mod remote_write;
pub mod rules;
pub mod scraping;
pub mod store;

pub use api::{MetricsApi, router};
pub use blocks::BlockStorage;
pub use config::MetricsConfig;
pub use error::WriteError;
pub use ingest::{AppendOutcome, Ingest, SampleSink, SinkError};
pub use scraping::Scraping;
pub use store::{TenantStore, TsdbQueryable};

/// Readiness component and listener name.
pub const ROLE: &str = "metrics-server";
