//! `alert-router`: the Alertmanager-compatible role.

pub mod api;
pub mod config;

pub use api::{AlertsApi, router};
pub use config::AlertsConfig;

pub const ROLE: &str = "alert-router";
