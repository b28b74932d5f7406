//! The `metrics` section.

use std::path::PathBuf;

use pharos_config::{ByteSize, Duration, Validate, Validator};
use pharos_server::config::check_listen_address;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// HTTP API, remote_write receiver and UI port (`--web.listen-address`).
    pub http_listen_address: String,
    /// The user's own `prometheus.yml` (scrape configs, rule files,
    /// alerting), as Prometheus' `--config.file`.
    pub config_file: Option<PathBuf>,
    /// Local disk for the WAL and caches (`--storage.tsdb.path`); blocks
    /// live in object storage.
    pub local_path: PathBuf,
    /// Blocks older than this are deleted (`--storage.tsdb.retention.time`).
    pub retention_time: Duration,
    /// Oldest blocks are deleted above this total
    /// (`--storage.tsdb.retention.size`); unset or 0 turns it off.
    pub retention_size: Option<ByteSize>,
    /// Local disk for copies of blocks that are in object storage, least
    /// recently queried dropped first.
    pub block_cache_size: ByteSize,
    /// Accept Prometheus remote_write on `/api/v1/write`
    /// (`--web.enable-remote-write-receiver`, on by default here).
    pub remote_write_receiver: bool,
    /// The URL users reach this server under (`--web.external-url`).
    pub external_url: Option<String>,
    /// How often each tenant's TSDB cuts blocks, uploads them, compacts
    /// and applies retention.
    pub maintenance_interval: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            http_listen_address: "0.0.0.0:9090".into(),
            config_file: None,
            local_path: PathBuf::from("./data/local/metrics"),
            retention_time: Duration::from_secs(15 * 24 * 3600),
            retention_size: None,
            block_cache_size: ByteSize::gib(1),
            remote_write_receiver: true,
            external_url: None,
            maintenance_interval: Duration::from_secs(60),
        }
    }
}

impl Validate for MetricsConfig {
    fn validate(&self, v: &mut Validator) {
        check_listen_address(v, "http_listen_address", &self.http_listen_address);
        v.check(
            self.retention_time.as_std().as_secs() > 0,
            "retention_time",
            "must be greater than 0, e.g. 15d",
        );
        v.check(
            self.maintenance_interval.as_std().as_millis() >= 100,
            "maintenance_interval",
            "must be at least 100ms, e.g. 1m",
        );
        if let Some(f) = &self.config_file {
            v.check(
                f.is_file(),
                "config_file",
                format!("file {} does not exist", f.display()),
            );
        }
    }
}
