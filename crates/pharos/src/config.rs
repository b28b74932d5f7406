//! The one configuration file every role reads: each role family's section
//! is defined beside its code and composed here.

use pharos_alerts::AlertsConfig;
use pharos_config::{ClusterConfig, LimitsConfig, Validate, Validator};
use pharos_logs::LogsConfig;
use pharos_metrics::MetricsConfig;
use pharos_server::{AuthConfig, ServerConfig};
use pharos_storage::StorageConfig;
use pharos_traces::TracesConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PharosConfig {
    /// Listeners, TLS, credentials, logging, shutdown.
    pub server: ServerConfig,
    /// Multi-tenancy (`X-Scope-OrgID`).
    pub auth: AuthConfig,
    /// The object store every signal's blocks live in.
    pub storage: StorageConfig,
    /// Gossip membership and replication.
    pub cluster: ClusterConfig,
    /// Per-tenant limits shared by every signal.
    pub limits: LimitsConfig,
    pub metrics: MetricsConfig,
    pub logs: LogsConfig,
    pub traces: TracesConfig,
    pub alerts: AlertsConfig,
}

impl Validate for PharosConfig {
    fn validate(&self, v: &mut Validator) {
        v.nested("server", |v| self.server.validate(v));
        v.nested("auth", |v| self.auth.validate(v));
        // storage reports "storage.key.path: message"
        if let Err(e) = self.storage.validate() {
            match e.split_once(": ") {
                Some((key, msg)) => v.error(key, msg),
                None => v.error("storage", e),
            }
        }
        v.nested("cluster", |v| self.cluster.validate(v));
        v.nested("limits", |v| self.limits.validate(v));
        v.nested("metrics", |v| self.metrics.validate(v));
        v.nested("logs", |v| self.logs.validate(v));
        v.nested("traces", |v| self.traces.validate(v));
        v.nested("alerts", |v| self.alerts.validate(v));
    }
}

impl PharosConfig {
    /// YAML as served on `/config`: every secret prints as `<secret>`.
    pub fn to_masked_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}
