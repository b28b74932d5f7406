//! The PromQL evaluation engine: parses with `promql-parser` and evaluates
//! with Prometheus 2.42 semantics over any [`Queryable`] storage. No HTTP
//! lives here, so the engine can be benchmarked and fuzzed alone.

mod aggregate;
mod binary;
pub mod engine;
pub mod error;
mod functions;
mod gomath;
mod parse;
pub mod promqltest;
pub mod storage;
mod time;
pub mod value;

pub use engine::{CancelToken, Engine, EngineOptions, parse, selector_matchers};
pub use error::QueryError;
pub use storage::{MemStorage, Queryable, Series, SeriesMap};
pub use value::Value;
