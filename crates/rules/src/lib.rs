//! Prometheus recording and alerting rules with 2.42 semantics: rule files,
//! group evaluation, the Alertmanager notifier, the `/api/v1/rules` and
//! `/api/v1/alerts` shapes and promtool's rule unit tests. No HTTP server
//! lives here; the metrics server mounts the API types and implements the
//! storage traits.

pub mod api;
pub mod error;
pub mod file;
pub mod group;
pub mod manager;
pub mod notifier;
pub mod rule;
pub mod unittest;

pub use error::RulesError;
pub use group::{AlertSender, Group, GroupOptions, GroupStats, NoopSender, RuleSink};
pub use manager::{Manager, ManagerOptions};
pub use rule::{Alert, AlertState, EvalEnv, Health, Rule};
