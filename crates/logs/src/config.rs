//! The `logs` section.

use std::path::PathBuf;

use pharos_config::{Validate, Validator};
use pharos_server::config::check_listen_address;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogsConfig {
    /// Loki's HTTP port (`-server.http-listen-port`), shared by the
    /// ingester and querier.
    pub http_listen_address: String,
    /// Local disk for the WAL and caches.
    pub local_path: PathBuf,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            http_listen_address: "0.0.0.0:3100".into(),
            local_path: PathBuf::from("./data/local/logs"),
        }
    }
}

impl Validate for LogsConfig {
    fn validate(&self, v: &mut Validator) {
        check_listen_address(v, "http_listen_address", &self.http_listen_address);
    }
}
