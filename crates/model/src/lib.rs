//! The data model the metrics engines share: label sets, samples and label
//! matchers with Prometheus semantics. The TSDB, the PromQL engine, scraping
//! and remote_write all speak these types.

pub mod labels;
pub mod matcher;
pub mod sample;

pub use labels::{Label, LabelSet, Labels, METRIC_NAME};
pub use matcher::{MatchOp, Matcher, MatcherError};
pub use sample::{STALE_NAN, Sample};
