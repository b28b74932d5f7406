//! `log-ingester` and `log-querier`: the Loki-compatible roles. Both answer
//! on one port; each owns its half of the upstream routes so the all-in-one
//! binary can merge them.

pub mod api;
pub mod config;

pub use api::{LogsApi, ingester_router, querier_router};
pub use config::LogsConfig;

pub const INGESTER: &str = "log-ingester";
pub const QUERIER: &str = "log-querier";
