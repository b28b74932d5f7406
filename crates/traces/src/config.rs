//! The `traces` section.

use std::path::PathBuf;

use pharos_config::{Validate, Validator};
use pharos_server::config::check_listen_address;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TracesConfig {
    /// Tempo's HTTP port (`-server.http-listen-port`), shared by the trace
    /// roles.
    pub http_listen_address: String,
    /// OTLP/gRPC receiver of the distributor.
    pub otlp_grpc_listen_address: String,
    /// OTLP/HTTP receiver of the distributor.
    pub otlp_http_listen_address: String,
    /// Local disk for the WAL and caches.
    pub local_path: PathBuf,
}

impl Default for TracesConfig {
    fn default() -> Self {
        Self {
            http_listen_address: "0.0.0.0:3200".into(),
            otlp_grpc_listen_address: "0.0.0.0:4317".into(),
            otlp_http_listen_address: "0.0.0.0:4318".into(),
            local_path: PathBuf::from("./data/local/traces"),
        }
    }
}

impl Validate for TracesConfig {
    fn validate(&self, v: &mut Validator) {
        check_listen_address(v, "http_listen_address", &self.http_listen_address);
        check_listen_address(
            v,
            "otlp_grpc_listen_address",
            &self.otlp_grpc_listen_address,
        );
        check_listen_address(
            v,
            "otlp_http_listen_address",
            &self.otlp_http_listen_address,
        );
    }
}
