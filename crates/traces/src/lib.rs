//! The Tempo-compatible roles: `trace-distributor` (OTLP receivers),
//! `trace-ingester`, `trace-querier` and `trace-compactor`. In the
//! all-in-one binary the four share port 3200.

pub mod api;
pub mod config;

pub use api::{
    TracesApi, compactor_router, distributor_router, ingester_router, otlp_http_router,
    querier_router,
};
pub use config::TracesConfig;

pub const DISTRIBUTOR: &str = "trace-distributor";
pub const INGESTER: &str = "trace-ingester";
pub const QUERIER: &str = "trace-querier";
pub const COMPACTOR: &str = "trace-compactor";
