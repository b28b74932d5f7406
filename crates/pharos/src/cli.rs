//! Flags. Besides our own, every binary accepts the upstream flags users'
//! compose files and systemd units already pass (Prometheus and
//! Alertmanager `--web.listen-address`, Loki/Tempo `-config.file`,
//! `-target`, `-server.http-listen-port`, ...), in Go's single-dash
//! spelling too.

use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use pharos_config::{ByteSize, Duration};
use pharos_storage::Backend;

use crate::config::PharosConfig;
use crate::roles::{Family, Role};

#[derive(Debug, Clone, Default, Parser)]
#[command(args_conflicts_with_subcommands = false)]
#[command(
    version,
    about = "Pharos: metrics, logs, traces and alert routing, upstream-compatible"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The Pharos YAML configuration file.
    #[arg(long = "config.file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// A dotenv file whose variables `${VAR}` may use; the process
    /// environment wins over it. Default: `.env` in the working directory.
    #[arg(long = "config.env-file", value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Accepted for Loki/Tempo compatibility; Pharos always expands
    /// `${VAR}` in its own config.
    #[arg(long = "config.expand-env", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub expand_env: Option<bool>,
    /// Check the configuration and exit.
    #[arg(long = "config.check")]
    pub check_config: bool,
    /// Roles to run: all, read, write, or a comma list of role names
    /// (all-in-one binary only; a role binary accepts only its own name).
    #[arg(long = "target", value_name = "ROLES")]
    pub target: Option<String>,

    /// The HTTP address of this binary's role (Prometheus, Alertmanager).
    #[arg(long = "web.listen-address", value_name = "ADDR")]
    pub web_listen_address: Option<String>,
    /// The HTTP port of this binary's role (Loki, Tempo).
    #[arg(long = "server.http-listen-port", value_name = "PORT")]
    pub http_listen_port: Option<u16>,
    /// The HTTP host of this binary's role (Loki, Tempo).
    #[arg(long = "server.http-listen-address", value_name = "HOST")]
    pub http_listen_host: Option<String>,
    /// Internal gRPC port (Loki, Tempo).
    #[arg(long = "server.grpc-listen-port", value_name = "PORT")]
    pub grpc_listen_port: Option<u16>,
    /// Internal gRPC host (Loki, Tempo).
    #[arg(long = "server.grpc-listen-address", value_name = "HOST")]
    pub grpc_listen_host: Option<String>,
    #[arg(long = "metrics.listen-address", value_name = "ADDR")]
    pub metrics_listen_address: Option<String>,
    #[arg(long = "logs.listen-address", value_name = "ADDR")]
    pub logs_listen_address: Option<String>,
    #[arg(long = "traces.listen-address", value_name = "ADDR")]
    pub traces_listen_address: Option<String>,
    #[arg(long = "alerts.listen-address", value_name = "ADDR")]
    pub alerts_listen_address: Option<String>,

    /// Object store backend: filesystem, s3 or memory.
    #[arg(long = "storage.backend", value_name = "NAME")]
    pub storage_backend: Option<Backend>,
    /// Directory of the filesystem object store.
    #[arg(long = "storage.filesystem.path", value_name = "DIR")]
    pub storage_path_fs: Option<PathBuf>,
    /// Local disk of metrics-server (Prometheus' TSDB path).
    #[arg(long = "storage.tsdb.path", value_name = "DIR")]
    pub tsdb_path: Option<PathBuf>,
    #[arg(long = "storage.tsdb.retention.time", value_name = "DURATION")]
    pub retention_time: Option<Duration>,
    #[arg(long = "storage.tsdb.retention.size", value_name = "BYTES")]
    pub retention_size: Option<ByteSize>,
    #[arg(long = "web.enable-remote-write-receiver")]
    pub remote_write_receiver: bool,
    /// Accepted; `/-/reload` is always on.
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,
    #[arg(long = "web.external-url", value_name = "URL")]
    pub external_url: Option<String>,
    /// Local disk of alert-router (Alertmanager's `--storage.path`).
    #[arg(long = "storage.path", value_name = "DIR")]
    pub alerts_storage_path: Option<PathBuf>,
    #[arg(long = "cluster.listen-address", value_name = "ADDR")]
    pub cluster_listen_address: Option<String>,
    #[arg(long = "cluster.peer", value_name = "ADDR")]
    pub cluster_peers: Vec<String>,
    /// How long each alert-router replica waits per position among its
    /// peers before sending (Alertmanager's `--cluster.peer-timeout`).
    #[arg(long = "cluster.peer-timeout", value_name = "DURATION")]
    pub cluster_peer_timeout: Option<Duration>,
    /// Require `X-Scope-OrgID` (Loki's `-auth.enabled`).
    #[arg(long = "auth.enabled", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub auth_enabled: Option<bool>,
    #[arg(long = "log.level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    #[arg(long = "log.format", value_name = "FORMAT")]
    pub log_format: Option<String>,
}

/// Tools that run instead of the server.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Run PromQL test scripts (Prometheus' promqltest format) in-process
    /// and print `N passed, M failed`.
    #[command(name = "promql-test")]
    PromqlTest {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Check files, as `promtool check rules FILE...` does.
    #[command(subcommand)]
    Check(Checkable),
    /// Run unit tests, as `promtool test rules FILE...` does.
    #[command(subcommand)]
    Test(Checkable),
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Checkable {
    /// Prometheus rule files (check) or promtool rule unit-test files (test).
    Rules {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

impl Args {
    /// Parses argv after turning Go-style `-flag` into `--flag` for the
    /// flags we know, so `-config.file=x` and `--config.file x` both work.
    pub fn parse_go_style<I: IntoIterator<Item = String>>(argv: I) -> Result<Self, clap::Error> {
        let cmd = Self::command();
        let longs: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_owned))
            .chain(["help".to_owned(), "version".to_owned()])
            .collect();
        let argv = argv.into_iter().map(|a| {
            let is_single = a.starts_with('-') && !a.starts_with("--") && a.len() > 2;
            let name = a.trim_start_matches('-').split('=').next().unwrap_or("");
            if is_single && longs.iter().any(|l| l == name) {
                format!("-{a}")
            } else {
                a
            }
        });
        Self::try_parse_from(argv)
    }

    /// Applies the flags over the file's values; `primary` is the role
    /// whose port `--web.listen-address`/`-server.http-listen-port` mean.
    pub fn apply(&self, cfg: &mut PharosConfig, primary: Option<Role>) -> Result<(), String> {
        if self.web_listen_address.is_some()
            || self.http_listen_port.is_some()
            || self.http_listen_host.is_some()
        {
            let Some(role) = primary else {
                return Err("--web.listen-address and -server.http-listen-port name one role's port: in the all-in-one binary use --metrics.listen-address, --logs.listen-address, --traces.listen-address or --alerts.listen-address".into());
            };
            let slot = family_address(cfg, role.family());
            if let Some(a) = &self.web_listen_address {
                *slot = a.clone();
            }
            if self.http_listen_port.is_some() || self.http_listen_host.is_some() {
                *slot = with_host_port(
                    slot,
                    self.http_listen_host.as_deref(),
                    self.http_listen_port,
                );
            }
        }
        if self.grpc_listen_port.is_some() || self.grpc_listen_host.is_some() {
            cfg.server.grpc_listen_address = with_host_port(
                &cfg.server.grpc_listen_address,
                self.grpc_listen_host.as_deref(),
                self.grpc_listen_port,
            );
        }
        for (flag, family) in [
            (&self.metrics_listen_address, Family::Metrics),
            (&self.logs_listen_address, Family::Logs),
            (&self.traces_listen_address, Family::Traces),
            (&self.alerts_listen_address, Family::Alerts),
        ] {
            if let Some(a) = flag {
                *family_address(cfg, family) = a.clone();
            }
        }
        if let Some(b) = self.storage_backend {
            cfg.storage.backend = b;
        }
        if let Some(p) = &self.storage_path_fs {
            cfg.storage.filesystem.path = p.clone();
        }
        if let Some(p) = &self.tsdb_path {
            cfg.metrics.local_path = p.clone();
        }
        if let Some(d) = self.retention_time {
            cfg.metrics.retention_time = d;
        }
        if let Some(s) = self.retention_size {
            cfg.metrics.retention_size = Some(s);
        }
        if self.remote_write_receiver {
            cfg.metrics.remote_write_receiver = true;
        }
        if let Some(u) = &self.external_url {
            cfg.metrics.external_url = Some(u.clone());
            cfg.alerts.external_url = Some(u.clone());
        }
        if let Some(p) = &self.alerts_storage_path {
            cfg.alerts.local_path = p.clone();
        }
        if let Some(a) = &self.cluster_listen_address {
            cfg.alerts.cluster_listen_address = a.clone();
        }
        if !self.cluster_peers.is_empty() {
            cfg.alerts.peers = self.cluster_peers.clone();
        }
        if let Some(t) = self.cluster_peer_timeout {
            cfg.alerts.peer_timeout = t;
        }
        if let Some(e) = self.auth_enabled {
            cfg.auth.enabled = e;
        }
        if let Some(l) = &self.log_level {
            cfg.server.log_level = l.clone();
        }
        if let Some(f) = &self.log_format {
            cfg.server.log_format = f.clone();
        }
        Ok(())
    }
}

fn family_address(cfg: &mut PharosConfig, family: Family) -> &mut String {
    match family {
        Family::Metrics => &mut cfg.metrics.http_listen_address,
        Family::Logs => &mut cfg.logs.http_listen_address,
        Family::Traces => &mut cfg.traces.http_listen_address,
        Family::Alerts => &mut cfg.alerts.http_listen_address,
    }
}

/// Replaces the host and/or port of `host:port`.
fn with_host_port(addr: &str, host: Option<&str>, port: Option<u16>) -> String {
    let (h, p) = addr.rsplit_once(':').unwrap_or((addr, ""));
    let h = host.unwrap_or(h);
    match port {
        Some(port) => format!("{h}:{port}"),
        None => format!("{h}:{p}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        Args::parse_go_style(args.iter().map(|s| s.to_string())).unwrap()
    }

    #[test]
    fn go_style_and_upstream_flags() {
        let a = parse(&[
            "loki",
            "-config.file=/etc/loki.yaml",
            "-target",
            "log-querier",
            "-server.http-listen-port=3101",
        ]);
        assert_eq!(
            a.config_file.as_deref(),
            Some(std::path::Path::new("/etc/loki.yaml"))
        );
        assert_eq!(a.target.as_deref(), Some("log-querier"));
        let mut cfg = PharosConfig::default();
        a.apply(&mut cfg, Some(Role::LogQuerier)).unwrap();
        assert_eq!(cfg.logs.http_listen_address, "0.0.0.0:3101");

        let a = parse(&[
            "prometheus",
            "--config.file",
            "p.yml",
            "--storage.tsdb.path=/prometheus",
            "--storage.tsdb.retention.time=30d",
            "--web.listen-address=:9091",
            "--web.enable-remote-write-receiver",
            "--web.enable-lifecycle",
        ]);
        let mut cfg = PharosConfig::default();
        a.apply(&mut cfg, Some(Role::MetricsServer)).unwrap();
        assert_eq!(cfg.metrics.http_listen_address, ":9091");
        assert_eq!(
            cfg.metrics.local_path,
            std::path::PathBuf::from("/prometheus")
        );
        assert_eq!(cfg.metrics.retention_time.as_std().as_secs(), 30 * 86_400);

        let a = parse(&[
            "am",
            "--cluster.peer=a:9094",
            "--cluster.peer=b:9094",
            "--storage.path=/am",
            "-auth.enabled",
        ]);
        let mut cfg = PharosConfig::default();
        a.apply(&mut cfg, Some(Role::AlertRouter)).unwrap();
        assert_eq!(cfg.alerts.peers, vec!["a:9094", "b:9094"]);
        assert!(cfg.auth.enabled);
    }

    #[test]
    fn all_in_one_refuses_ambiguous_port() {
        let a = parse(&["pharos", "--web.listen-address=:1"]);
        assert!(a.apply(&mut PharosConfig::default(), None).is_err());
    }

    #[test]
    fn unknown_single_dash_flag_is_an_error() {
        assert!(Args::parse_go_style(["x".to_string(), "-nope=1".to_string()]).is_err());
    }
}
