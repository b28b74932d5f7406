//! Prometheus-compatible scraping, without an HTTP server: the exposition
//! parsers, the `prometheus.yml` subset, relabeling, static, file and EC2
//! service discovery, and the scrape loops with their manager. Samples go to a
//! [`ScrapeSink`] the caller bridges to its storage.

pub mod config;
pub mod ec2_sd;
pub mod error;
pub mod exposition;
pub mod file_sd;
pub mod oauth2;
pub mod relabel;
pub mod scrape;
pub mod sigv4;
pub mod target;
pub mod xml;

pub use config::{PrometheusConfig, ScrapeConfig};
pub use error::ScrapeError;
pub use exposition::{Exposition, Format, MetricType, ParseError};
pub use relabel::{Action, RelabelConfig};
pub use scrape::{ScrapeManager, ScrapeSink, TargetHealth, TargetStatus};
pub use target::{DroppedTarget, Target, TargetGroup};
