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

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_config::{Env, load_str, read_dotenv};

    const EXAMPLE: &str = include_str!("../../../deploy/pharos.yaml");

    #[test]
    fn deploy_example_loads_and_matches_defaults() {
        let env = Env::from_pairs(Vec::<(String, String)>::new());
        let cfg: PharosConfig = load_str(EXAMPLE, "deploy/pharos.yaml", &|n| env.get(n)).unwrap();
        let d = PharosConfig::default();
        // everything not marked "example" in the file is the default
        assert_eq!(cfg.server, d.server);
        assert_eq!(cfg.auth, d.auth);
        assert_eq!(cfg.cluster, d.cluster);
        assert_eq!(cfg.limits, d.limits);
        assert_eq!(cfg.metrics, d.metrics);
        assert_eq!(cfg.logs, d.logs);
        assert_eq!(cfg.traces, d.traces);
        assert_eq!(cfg.alerts, d.alerts);
        assert_eq!(cfg.storage.backend, d.storage.backend);
        assert_eq!(cfg.storage.filesystem, d.storage.filesystem);
        assert_eq!(cfg.storage.retry, d.storage.retry);
    }

    #[test]
    fn deploy_example_with_example_env_selects_s3() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/.env.example");
        let mut pairs = read_dotenv(&dir).unwrap();
        pairs.push(("PHAROS_STORAGE_BACKEND".into(), "s3".into()));
        let env = Env::from_pairs(pairs);
        let cfg: PharosConfig = load_str(EXAMPLE, "deploy/pharos.yaml", &|n| env.get(n)).unwrap();
        assert_eq!(cfg.storage.backend, pharos_storage::Backend::S3);
        assert_eq!(cfg.storage.s3.bucket, "pharos");
        assert_eq!(
            cfg.storage.s3.endpoint.as_deref(),
            Some("http://minio:9000")
        );
        // the secret is loaded but never rendered
        assert_eq!(
            cfg.storage
                .s3
                .secret_access_key
                .as_ref()
                .map(|s| s.expose()),
            Some("change-me-please")
        );
        assert!(!cfg.to_masked_yaml().contains("change-me-please"));
    }

    #[test]
    fn every_default_survives_a_round_trip() {
        let text = PharosConfig::default().to_masked_yaml();
        let env = Env::from_pairs(Vec::<(String, String)>::new());
        let back: PharosConfig = load_str(&text, "defaults", &|n| env.get(n)).unwrap();
        assert_eq!(back, PharosConfig::default());
    }
}
