//! `alert-router`: the Alertmanager-compatible role.
//!
//! Data flow: `api` receives alerts and silences; `store` keeps alerts by
//! fingerprint; `routing` maps labels to receivers and group keys from the
//! `config` route tree; `silences` and `inhibit` decide what is muted;
//! `dispatch` aggregates alerts into groups and keeps the notification
//! log, driven by a task (`driver`) that sends through `notify`'s
//! integrations; `persist` snapshots silences and the log to disk;
//! `cluster` shares silences and the log between HA replicas.

pub mod api;
pub mod cluster;
pub mod config;
pub mod dispatch;
mod driver;
pub mod error;
pub mod inhibit;
pub mod matchers;
pub mod metrics;
pub mod notify;
pub mod persist;
pub mod routing;
pub mod silences;
pub mod store;
pub mod time;
mod uuid;

pub use api::{AlertsApi, router};
pub use config::AlertsConfig;
pub use error::AlertsError;

pub const ROLE: &str = "alert-router";

/// An alert's labels, sorted by name as upstream's `model.LabelSet` prints.
pub type LabelSet = std::collections::BTreeMap<String, String>;
