//! The `alerts` section.

use std::path::PathBuf;

use pharos_config::{Duration, Validate, Validator};
use pharos_server::config::check_listen_address;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// API and UI port (`--web.listen-address`).
    pub http_listen_address: String,
    /// The user's own `alertmanager.yml` (`--config.file`).
    pub config_file: Option<PathBuf>,
    /// Local disk for silences and the notification log (`--storage.path`).
    pub local_path: PathBuf,
    /// HA gossip address (`--cluster.listen-address`, UDP); empty
    /// disables HA. Gossip starts only when `peers` is not empty either.
    pub cluster_listen_address: String,
    /// Initial peers (`--cluster.peer`), `host:port`; names are resolved
    /// and joining is retried until one answers.
    pub peers: Vec<String>,
    /// How long each replica waits per position before it checks whether
    /// a peer already notified (`--cluster.peer-timeout`).
    pub peer_timeout: Duration,
    /// The URL users reach this router under (`--web.external-url`).
    pub external_url: Option<String>,
    /// How long expired silences and resolved alerts' history are kept
    /// (`--data.retention`, upstream default 120h).
    pub retention: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            http_listen_address: "0.0.0.0:9093".into(),
            config_file: None,
            local_path: PathBuf::from("./data/local/alerts"),
            cluster_listen_address: "0.0.0.0:9094".into(),
            peers: Vec::new(),
            peer_timeout: Duration::from_secs(15),
            external_url: None,
            retention: Duration::from_secs(120 * 3600),
        }
    }
}

impl Validate for AlertsConfig {
    fn validate(&self, v: &mut Validator) {
        check_listen_address(v, "http_listen_address", &self.http_listen_address);
        if !self.cluster_listen_address.is_empty() {
            check_listen_address(v, "cluster_listen_address", &self.cluster_listen_address);
        }
        if let Some(f) = &self.config_file {
            v.check(
                f.is_file(),
                "config_file",
                format!("file {} does not exist", f.display()),
            );
        }
    }
}
