//! The `prometheus.yml` subset Pharos reads, parsed as strictly as
//! Prometheus 2.42 parses it: an unknown key is an error naming the key and
//! its line, and the cross-field rules (`scrape_timeout` ≤ `scrape_interval`,
//! unique job names, relabel action requirements) are checked at load time.
//!
//! Keys Prometheus knows but Pharos does not act on (`remote_write`,
//! `remote_read`, `query_log_file`, other service discoveries) are accepted
//! and reported by [`PrometheusConfig::warnings`] so the caller can log them
//! loudly at start.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use pharos_config::{ByteSize, ConfigError, Duration, Secret, Validate, Validator};
use serde::{Deserialize, Serialize};

use crate::relabel::{RelabelConfig, is_valid_label_name};

/// Service discoveries Prometheus 2.42 knows that Pharos does not run yet:
/// accepted (without schema checks) and warned about.
const UNIMPLEMENTED_SD: &[&str] = &[
    "azure_sd_configs",
    "consul_sd_configs",
    "digitalocean_sd_configs",
    "docker_sd_configs",
    "dockerswarm_sd_configs",
    "dns_sd_configs",
    "eureka_sd_configs",
    "gce_sd_configs",
    "hetzner_sd_configs",
    "http_sd_configs",
    "ionos_sd_configs",
    "kubernetes_sd_configs",
    "kuma_sd_configs",
    "lightsail_sd_configs",
    "linode_sd_configs",
    "marathon_sd_configs",
    "nerve_sd_configs",
    "nomad_sd_configs",
    "openstack_sd_configs",
    "puppetdb_sd_configs",
    "scaleway_sd_configs",
    "serverset_sd_configs",
    "triton_sd_configs",
    "uyuni_sd_configs",
    "vultr_sd_configs",
];

/// The keys of a scrape config, for "did you mean" on a typo.
const SCRAPE_CONFIG_KEYS: &[&str] = &[
    "job_name",
    "honor_labels",
    "honor_timestamps",
    "params",
    "scrape_interval",
    "scrape_timeout",
    "metrics_path",
    "scheme",
    "body_size_limit",
    "sample_limit",
    "target_limit",
    "label_limit",
    "label_name_length_limit",
    "label_value_length_limit",
    "basic_auth",
    "authorization",
    "bearer_token",
    "bearer_token_file",
    "tls_config",
    "proxy_url",
    "follow_redirects",
    "enable_http2",
    "oauth2",
    "static_configs",
    "file_sd_configs",
    "ec2_sd_configs",
    "relabel_configs",
    "metric_relabel_configs",
];

/// Marks the validation error that [`PrometheusConfig::parse`] turns into
/// [`ConfigError::UnknownKey`].
const UNKNOWN_SCRAPE_KEY: &str = "\u{0}unknown scrape config key";

/// The whole `prometheus.yml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrometheusConfig {
    pub global: GlobalConfig,
    pub alerting: AlertingConfig,
    pub rule_files: Vec<String>,
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Kept verbatim: Pharos does not implement these sections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<serde_yaml::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing: Option<serde_yaml::Value>,
    /// Kept verbatim and never served back: they may hold credentials that
    /// are not wrapped in [`Secret`].
    #[serde(skip_serializing)]
    pub remote_write: Vec<serde_yaml::Value>,
    #[serde(skip_serializing)]
    pub remote_read: Vec<serde_yaml::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlobalConfig {
    pub scrape_interval: Duration,
    /// `None` until [`PrometheusConfig::parse`] applies Prometheus' rule: 10s,
    /// or the interval when that is shorter.
    pub scrape_timeout: Option<Duration>,
    pub evaluation_interval: Duration,
    pub external_labels: BTreeMap<String, String>,
    /// Accepted for compatibility; Pharos has no query log and warns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_log_file: Option<String>,
    // Limits that later Prometheus versions (2.45+) allow globally; scrape
    // jobs inherit them when they set none of their own.
    pub body_size_limit: ByteSize,
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub target_limit: u64,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: Duration::from_secs(60),
            scrape_timeout: None,
            evaluation_interval: Duration::from_secs(60),
            external_labels: BTreeMap::new(),
            query_log_file: None,
            body_size_limit: ByteSize::b(0),
            sample_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            target_limit: 0,
        }
    }
}

/// Prometheus treats a zero duration as "not set".
fn set(d: Option<Duration>) -> Option<Duration> {
    d.filter(|d| !d.is_zero())
}

impl GlobalConfig {
    /// The effective global interval (`0` means the 1m default).
    pub fn effective_interval(&self) -> Duration {
        set(Some(self.scrape_interval)).unwrap_or(Duration::from_secs(60))
    }

    /// The effective global timeout: as set, else 10s capped at the interval.
    pub fn effective_timeout(&self) -> Duration {
        set(self.scrape_timeout)
            .unwrap_or_else(|| Duration::from_secs(10).min(self.effective_interval()))
    }

    /// A job's effective interval and timeout.
    fn job_timing(&self, job: &ScrapeConfig) -> (Duration, Duration) {
        let interval = set(job.scrape_interval).unwrap_or_else(|| self.effective_interval());
        let timeout =
            set(job.scrape_timeout).unwrap_or_else(|| self.effective_timeout().min(interval));
        (interval, timeout)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertingConfig {
    pub alert_relabel_configs: Vec<RelabelConfig>,
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

/// `basic_auth`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: Secret,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

/// `authorization`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Authorization {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub credentials: Secret,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
}

impl Authorization {
    /// The scheme sent in the header; Prometheus defaults it to `Bearer`.
    pub fn scheme(&self) -> &str {
        self.kind.as_deref().unwrap_or("Bearer")
    }
}

/// `tls_config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
    pub min_version: Option<String>,
}

/// `oauth2`: the client credentials grant (RFC 6749 section 4.4).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuth2 {
    pub client_id: String,
    pub client_secret: Secret,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<String>,
    pub scopes: Vec<String>,
    pub token_url: String,
    pub endpoint_params: BTreeMap<String, String>,
    /// For the token request itself.
    pub tls_config: TlsConfig,
    pub proxy_url: Option<String>,
}

/// The HTTP client options every Prometheus HTTP config shares, gathered
/// from the flat keys of a scrape or Alertmanager config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpClientConfig {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub oauth2: Option<OAuth2>,
    pub tls_config: TlsConfig,
    pub proxy_url: Option<String>,
    pub follow_redirects: bool,
}

/// `static_configs` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaticConfig {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// `file_sd_configs` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    /// Prometheus' default is 5m (`file.DefaultSDConfig`); it also watches
    /// the files with inotify, which Pharos does not, so changes show up
    /// within one refresh interval.
    pub refresh_interval: Duration,
}

impl Default for FileSdConfig {
    fn default() -> Self {
        FileSdConfig {
            files: Vec::new(),
            refresh_interval: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ec2Filter {
    pub name: String,
    pub values: Vec<String>,
}

/// `ec2_sd_configs` entry. `region`, `endpoint`, `access_key`,
/// `secret_key` and `role_arn` may name environment variables as
/// `${VAR}`/`${VAR:-default}` (expanded when discovery starts, unlike
/// Prometheus); empty ones fall back to the standard `AWS_*` variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ec2SdConfig {
    pub region: String,
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: Secret,
    pub profile: String,
    pub role_arn: String,
    pub refresh_interval: Duration,
    pub port: u16,
    pub filters: Vec<Ec2Filter>,
    // The HTTP client keys Prometheus accepts on the EC2 API client.
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub tls_config: TlsConfig,
    pub proxy_url: Option<String>,
    pub follow_redirects: bool,
    pub enable_http2: bool,
}

impl Default for Ec2SdConfig {
    fn default() -> Self {
        Ec2SdConfig {
            region: String::new(),
            endpoint: String::new(),
            access_key: String::new(),
            secret_key: Secret::default(),
            profile: String::new(),
            role_arn: String::new(),
            refresh_interval: Duration::from_secs(60),
            port: 80,
            filters: Vec::new(),
            basic_auth: None,
            authorization: None,
            tls_config: TlsConfig::default(),
            proxy_url: None,
            follow_redirects: true,
            enable_http2: true,
        }
    }
}

/// One `alerting.alertmanagers` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertmanagerConfig {
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub path_prefix: String,
    pub scheme: String,
    pub timeout: Duration,
    pub api_version: String,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    #[serde(skip_serializing)]
    pub bearer_token: Secret,
    pub bearer_token_file: Option<String>,
    pub tls_config: TlsConfig,
    pub proxy_url: Option<String>,
    pub follow_redirects: bool,
    pub enable_http2: bool,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig {
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            relabel_configs: Vec::new(),
            path_prefix: String::new(),
            scheme: "http".into(),
            timeout: Duration::from_secs(10),
            api_version: "v2".into(),
            basic_auth: None,
            authorization: None,
            bearer_token: Secret::default(),
            bearer_token_file: None,
            tls_config: TlsConfig::default(),
            proxy_url: None,
            follow_redirects: true,
            enable_http2: true,
        }
    }
}

/// One `scrape_configs` entry.
///
/// Not `deny_unknown_fields`: serde cannot combine it with the flattened
/// [`other_sd_configs`](Self::other_sd_configs), so unknown keys land there
/// and validation rejects every key that is not a known discovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScrapeConfig {
    pub job_name: String,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub params: BTreeMap<String, Vec<String>>,
    /// Filled from `global` by [`PrometheusConfig::parse`].
    pub scrape_interval: Option<Duration>,
    /// Filled from `global` (capped at the interval) by [`PrometheusConfig::parse`].
    pub scrape_timeout: Option<Duration>,
    pub metrics_path: String,
    pub scheme: String,
    pub body_size_limit: ByteSize,
    pub sample_limit: u64,
    pub target_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,

    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    #[serde(skip_serializing)]
    pub bearer_token: Secret,
    pub bearer_token_file: Option<String>,
    pub tls_config: TlsConfig,
    pub proxy_url: Option<String>,
    pub follow_redirects: bool,
    pub enable_http2: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,

    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub ec2_sd_configs: Vec<Ec2SdConfig>,
    /// Other discoveries Prometheus knows, by key, kept verbatim.
    #[serde(flatten, skip_serializing)]
    pub other_sd_configs: BTreeMap<String, serde_yaml::Value>,

    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            job_name: String::new(),
            honor_labels: false,
            honor_timestamps: true,
            params: BTreeMap::new(),
            scrape_interval: None,
            scrape_timeout: None,
            metrics_path: "/metrics".into(),
            scheme: "http".into(),
            body_size_limit: ByteSize::b(0),
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            basic_auth: None,
            authorization: None,
            bearer_token: Secret::default(),
            bearer_token_file: None,
            tls_config: TlsConfig::default(),
            proxy_url: None,
            follow_redirects: true,
            enable_http2: true,
            oauth2: None,
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            ec2_sd_configs: Vec::new(),
            other_sd_configs: BTreeMap::new(),
            relabel_configs: Vec::new(),
            metric_relabel_configs: Vec::new(),
        }
    }
}

impl ScrapeConfig {
    /// The interval after defaults were applied.
    pub fn interval(&self) -> Duration {
        self.scrape_interval.unwrap_or(Duration::from_secs(60))
    }

    /// The timeout after defaults were applied.
    pub fn timeout(&self) -> Duration {
        self.scrape_timeout
            .unwrap_or_else(|| Duration::from_secs(10).min(self.interval()))
    }

    /// The HTTP client options, with `bearer_token(_file)` turned into
    /// `authorization` as Prometheus does.
    pub fn http_client(&self) -> HttpClientConfig {
        let mut http = http_client(
            &self.basic_auth,
            &self.authorization,
            &self.bearer_token,
            &self.bearer_token_file,
            &self.tls_config,
            &self.proxy_url,
            self.follow_redirects,
        );
        http.oauth2.clone_from(&self.oauth2);
        http
    }
}

impl Ec2SdConfig {
    /// The options of the client that calls the EC2 API.
    pub fn http_client(&self) -> HttpClientConfig {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            oauth2: None,
            tls_config: self.tls_config.clone(),
            proxy_url: self.proxy_url.clone(),
            follow_redirects: self.follow_redirects,
        }
    }
}

impl AlertmanagerConfig {
    pub fn http_client(&self) -> HttpClientConfig {
        http_client(
            &self.basic_auth,
            &self.authorization,
            &self.bearer_token,
            &self.bearer_token_file,
            &self.tls_config,
            &self.proxy_url,
            self.follow_redirects,
        )
    }
}

fn http_client(
    basic_auth: &Option<BasicAuth>,
    authorization: &Option<Authorization>,
    bearer_token: &Secret,
    bearer_token_file: &Option<String>,
    tls: &TlsConfig,
    proxy_url: &Option<String>,
    follow_redirects: bool,
) -> HttpClientConfig {
    let authorization = if !bearer_token.is_empty() || bearer_token_file.is_some() {
        Some(Authorization {
            kind: Some("Bearer".into()),
            credentials: bearer_token.clone(),
            credentials_file: bearer_token_file.clone(),
        })
    } else {
        authorization.clone()
    };
    HttpClientConfig {
        basic_auth: basic_auth.clone(),
        authorization,
        oauth2: None,
        tls_config: tls.clone(),
        proxy_url: proxy_url.clone(),
        follow_redirects,
    }
}

impl PrometheusConfig {
    /// Parses `prometheus.yml` text (already `${VAR}`-expanded by the caller,
    /// if at all: Prometheus itself does not expand variables, and relabel
    /// replacements use `${1}`). `file` names the source in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        // pharos-config's loader expands variables; doubling every `$` makes
        // that a no-op so `$1`/`${1}` reach the relabel configs unchanged,
        // while keeping its strict parsing and line-numbered errors.
        let escaped = text.replace('$', "$$");
        let mut config: PrometheusConfig =
            pharos_config::load_str(&escaped, file, &|_| None).map_err(unknown_scrape_key)?;
        config.apply_defaults();
        Ok(config)
    }

    /// Reads and parses a file; relative paths in it (`rule_files`,
    /// `file_sd_configs`, `*_file` keys) are resolved against its directory,
    /// as Prometheus does.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: file.clone(),
            source,
        })?;
        let mut config = Self::parse(&text, &file)?;
        if let Some(dir) = path.parent() {
            config.resolve_paths(dir);
        }
        Ok(config)
    }

    fn apply_defaults(&mut self) {
        self.global.scrape_interval = self.global.effective_interval();
        self.global.scrape_timeout = Some(self.global.effective_timeout());
        if self.global.evaluation_interval.is_zero() {
            self.global.evaluation_interval = Duration::from_secs(60);
        }
        let g = &self.global;
        for job in &mut self.scrape_configs {
            let (interval, timeout) = g.job_timing(job);
            job.scrape_interval = Some(interval);
            job.scrape_timeout = Some(timeout);
            // Global limits apply only to jobs that set none, as in 2.45+.
            let inherit = |own: &mut u64, global: u64| {
                if *own == 0 {
                    *own = global;
                }
            };
            inherit(&mut job.sample_limit, g.sample_limit);
            inherit(&mut job.label_limit, g.label_limit);
            inherit(&mut job.label_name_length_limit, g.label_name_length_limit);
            inherit(
                &mut job.label_value_length_limit,
                g.label_value_length_limit,
            );
            inherit(&mut job.target_limit, g.target_limit);
            if job.body_size_limit.as_u64() == 0 {
                job.body_size_limit = g.body_size_limit;
            }
        }
    }

    /// Makes relative file paths relative to `dir`.
    pub fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut String| {
            if !p.is_empty() && Path::new(p.as_str()).is_relative() {
                *p = dir.join(p.as_str()).display().to_string();
            }
        };
        let fix_opt = |p: &mut Option<String>| {
            if let Some(p) = p {
                fix(p);
            }
        };
        let fix_tls = |tls: &mut TlsConfig| {
            fix_opt(&mut tls.ca_file);
            fix_opt(&mut tls.cert_file);
            fix_opt(&mut tls.key_file);
        };
        let fix_http = |basic: &mut Option<BasicAuth>,
                        auth: &mut Option<Authorization>,
                        bearer: &mut Option<String>,
                        tls: &mut TlsConfig| {
            if let Some(b) = basic {
                fix_opt(&mut b.password_file);
            }
            if let Some(a) = auth {
                fix_opt(&mut a.credentials_file);
            }
            fix_opt(bearer);
            fix_tls(tls);
        };
        self.rule_files.iter_mut().for_each(fix);
        for job in &mut self.scrape_configs {
            fix_http(
                &mut job.basic_auth,
                &mut job.authorization,
                &mut job.bearer_token_file,
                &mut job.tls_config,
            );
            if let Some(o) = &mut job.oauth2 {
                fix_opt(&mut o.client_secret_file);
                fix_tls(&mut o.tls_config);
            }
            for sd in &mut job.file_sd_configs {
                sd.files.iter_mut().for_each(fix);
            }
            for sd in &mut job.ec2_sd_configs {
                fix_tls(&mut sd.tls_config);
            }
        }
        for am in &mut self.alerting.alertmanagers {
            fix_http(
                &mut am.basic_auth,
                &mut am.authorization,
                &mut am.bearer_token_file,
                &mut am.tls_config,
            );
            for sd in &mut am.file_sd_configs {
                sd.files.iter_mut().for_each(fix);
            }
        }
    }

    /// Keys that parsed but that Pharos ignores: log each loudly at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.global.query_log_file.is_some() {
            out.push("global.query_log_file is ignored: Pharos has no query log".into());
        }
        if !self.remote_write.is_empty() {
            out.push("remote_write is ignored: Pharos does not forward samples".into());
        }
        if !self.remote_read.is_empty() {
            out.push("remote_read is ignored: Pharos queries only its own storage".into());
        }
        if self.storage.is_some() {
            out.push("storage is ignored: configure Pharos' TSDB in its own config".into());
        }
        if self.tracing.is_some() {
            out.push("tracing is ignored".into());
        }
        for job in &self.scrape_configs {
            for key in job.other_sd_configs.keys() {
                out.push(format!(
                    "job \"{}\": {key} is not implemented in Pharos yet; it discovers no targets",
                    job.job_name
                ));
            }
            for sd in &job.ec2_sd_configs {
                if !sd.profile.is_empty() {
                    out.push(format!(
                        "job \"{}\": ec2_sd_configs profile is not implemented in Pharos yet; credentials come from access_key/secret_key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
                        job.job_name
                    ));
                }
                if sd.basic_auth.is_some() || sd.authorization.is_some() {
                    out.push(format!(
                        "job \"{}\": ec2_sd_configs basic_auth/authorization are ignored; EC2 API requests are signed with AWS credentials",
                        job.job_name
                    ));
                }
            }
        }
        out
    }
}

/// Unknown keys of a scrape config reach validation (serde cannot deny them
/// next to a flattened map); report them like every other unknown key.
fn unknown_scrape_key(err: ConfigError) -> ConfigError {
    match err {
        ConfigError::Invalid {
            file,
            line,
            key: Some(key),
            message,
        } if message == UNKNOWN_SCRAPE_KEY => {
            let mut expected: Vec<String> = SCRAPE_CONFIG_KEYS
                .iter()
                .chain(UNIMPLEMENTED_SD)
                .map(|s| (*s).to_owned())
                .collect();
            expected.sort();
            ConfigError::UnknownKey {
                file,
                line,
                key,
                expected,
            }
        }
        other => other,
    }
}

impl Validate for PrometheusConfig {
    fn validate(&self, v: &mut Validator) {
        v.section("global", &self.global);
        for (i, am) in self.alerting.alertmanagers.iter().enumerate() {
            v.section(&format!("alerting.alertmanagers[{i}]"), am);
        }
        for (i, rc) in self.alerting.alert_relabel_configs.iter().enumerate() {
            v.section(&format!("alerting.alert_relabel_configs[{i}]"), rc);
        }
        for (i, pattern) in self.rule_files.iter().enumerate() {
            v.check(
                glob::Pattern::new(pattern).is_ok(),
                &format!("rule_files[{i}]"),
                format!("invalid file pattern \"{pattern}\""),
            );
        }
        let mut names = HashSet::new();
        for (i, job) in self.scrape_configs.iter().enumerate() {
            v.nested(&format!("scrape_configs[{i}]"), |v| {
                if job.job_name.is_empty() {
                    v.error("job_name", "job_name is empty");
                } else if !names.insert(job.job_name.as_str()) {
                    v.error(
                        "job_name",
                        format!("found multiple scrape configs with job name \"{}\"", job.job_name),
                    );
                }
                let (interval, timeout) = self.global.job_timing(job);
                if timeout > interval {
                    v.error(
                        "scrape_timeout",
                        format!(
                            "scrape timeout greater than scrape interval for scrape config with job name \"{}\"",
                            job.job_name
                        ),
                    );
                }
                job.validate(v);
            });
        }
    }
}

impl Validate for GlobalConfig {
    fn validate(&self, v: &mut Validator) {
        if let Some(timeout) = set(self.scrape_timeout) {
            v.check(
                timeout <= self.effective_interval(),
                "scrape_timeout",
                "global scrape timeout greater than scrape interval",
            );
        }
        for name in self.external_labels.keys() {
            v.check(
                is_valid_label_name(name),
                "external_labels",
                format!("\"{name}\" is not a valid label name"),
            );
        }
    }
}

fn validate_http(
    v: &mut Validator,
    basic_auth: &Option<BasicAuth>,
    authorization: &Option<Authorization>,
    bearer_token: &Secret,
    bearer_token_file: &Option<String>,
) {
    let bearer = !bearer_token.is_empty() || bearer_token_file.is_some();
    let set = [basic_auth.is_some(), authorization.is_some(), bearer]
        .iter()
        .filter(|b| **b)
        .count();
    if set > 1 {
        v.error(
            "",
            "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
        );
    }
    if !bearer_token.is_empty() && bearer_token_file.is_some() {
        v.error(
            "bearer_token",
            "at most one of bearer_token & bearer_token_file must be configured",
        );
    }
    if let Some(b) = basic_auth
        && !b.password.is_empty()
        && b.password_file.is_some()
    {
        v.error(
            "basic_auth",
            "at most one of basic_auth password & password_file must be configured",
        );
    }
    if let Some(a) = authorization {
        if !a.credentials.is_empty() && a.credentials_file.is_some() {
            v.error(
                "authorization",
                "at most one of authorization credentials & credentials_file must be configured",
            );
        }
        if a.scheme().eq_ignore_ascii_case("basic") {
            v.error(
                "authorization.type",
                "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
            );
        }
    }
    // The scheme is checked per target, as in Prometheus: relabeling may
    // set `__scheme__`, and a bad one only fails the targets that use it.
}

impl Validate for ScrapeConfig {
    fn validate(&self, v: &mut Validator) {
        validate_http(
            v,
            &self.basic_auth,
            &self.authorization,
            &self.bearer_token,
            &self.bearer_token_file,
        );
        let bearer = !self.bearer_token.is_empty() || self.bearer_token_file.is_some();
        if self.oauth2.is_some()
            && (self.basic_auth.is_some() || self.authorization.is_some() || bearer)
        {
            v.error(
                "oauth2",
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
            );
        }
        if let Some(o) = &self.oauth2 {
            v.section("oauth2", o);
        }
        for key in self.other_sd_configs.keys() {
            if !UNIMPLEMENTED_SD.contains(&key.as_str()) {
                v.error(key, UNKNOWN_SCRAPE_KEY);
            }
        }
        for (i, sc) in self.static_configs.iter().enumerate() {
            v.section(&format!("static_configs[{i}]"), sc);
        }
        for (i, sd) in self.file_sd_configs.iter().enumerate() {
            v.section(&format!("file_sd_configs[{i}]"), sd);
        }
        for (i, sd) in self.ec2_sd_configs.iter().enumerate() {
            v.nested(&format!("ec2_sd_configs[{i}]"), |v| {
                v.check(
                    !(sd.basic_auth.is_some() && sd.authorization.is_some()),
                    "",
                    "at most one of basic_auth, oauth2 & authorization must be configured",
                );
                for (j, f) in sd.filters.iter().enumerate() {
                    v.check(
                        !f.values.is_empty(),
                        &format!("filters[{j}]"),
                        "EC2 SD configuration filter values cannot be empty",
                    );
                }
            });
        }
        for (i, rc) in self.relabel_configs.iter().enumerate() {
            v.section(&format!("relabel_configs[{i}]"), rc);
        }
        for (i, rc) in self.metric_relabel_configs.iter().enumerate() {
            v.section(&format!("metric_relabel_configs[{i}]"), rc);
        }
    }
}

impl Validate for OAuth2 {
    fn validate(&self, v: &mut Validator) {
        v.check(
            !self.client_id.is_empty(),
            "client_id",
            "oauth2 client_id must be configured",
        );
        v.check(
            !self.client_secret.is_empty() || self.client_secret_file.is_some(),
            "client_secret",
            "either oauth2 client_secret or client_secret_file must be configured",
        );
        v.check(
            !self.token_url.is_empty(),
            "token_url",
            "oauth2 token_url must be configured",
        );
        v.check(
            self.client_secret.is_empty() || self.client_secret_file.is_none(),
            "client_secret",
            "at most one of oauth2 client_secret & client_secret_file must be configured",
        );
    }
}

impl Validate for StaticConfig {
    fn validate(&self, v: &mut Validator) {
        for name in self.labels.keys() {
            v.check(
                is_valid_label_name(name),
                "labels",
                format!("\"{name}\" is not a valid label name"),
            );
        }
    }
}

impl Validate for FileSdConfig {
    fn validate(&self, v: &mut Validator) {
        v.check(
            !self.files.is_empty(),
            "files",
            "file service discovery config must contain at least one path name",
        );
        for (i, name) in self.files.iter().enumerate() {
            let base = name.rsplit('/').next().unwrap_or(name);
            let ok = [".json", ".yml", ".yaml"]
                .iter()
                .any(|ext| base.ends_with(ext))
                && glob::Pattern::new(name).is_ok();
            v.check(
                ok,
                &format!("files[{i}]"),
                format!("path name \"{name}\" is not valid for file discovery"),
            );
        }
    }
}

impl Validate for AlertmanagerConfig {
    fn validate(&self, v: &mut Validator) {
        validate_http(
            v,
            &self.basic_auth,
            &self.authorization,
            &self.bearer_token,
            &self.bearer_token_file,
        );
        v.check(
            self.api_version == "v1" || self.api_version == "v2",
            "api_version",
            format!(
                "expected Alertmanager api version to be one of [v1 v2] but got \"{}\"",
                self.api_version
            ),
        );
        for (i, sc) in self.static_configs.iter().enumerate() {
            v.section(&format!("static_configs[{i}]"), sc);
        }
        for (i, sd) in self.file_sd_configs.iter().enumerate() {
            v.section(&format!("file_sd_configs[{i}]"), sd);
        }
        for (i, rc) in self.relabel_configs.iter().enumerate() {
            v.section(&format!("relabel_configs[{i}]"), rc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relabel::Action;

    fn parse(text: &str) -> Result<PrometheusConfig, ConfigError> {
        PrometheusConfig::parse(text, "prometheus.yml")
    }

    #[test]
    fn empty_config_has_prometheus_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.global.scrape_interval, Duration::from_secs(60));
        assert_eq!(c.global.scrape_timeout, Some(Duration::from_secs(10)));
        assert_eq!(c.global.evaluation_interval, Duration::from_secs(60));
    }

    #[test]
    fn jobs_inherit_global_and_timeout_is_capped() {
        let c = parse(
            "global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: a\n  - job_name: b\n    scrape_interval: 1m\n",
        )
        .unwrap();
        // A 5s global interval makes the default timeout 5s, not 10s.
        assert_eq!(c.global.scrape_timeout, Some(Duration::from_secs(5)));
        assert_eq!(c.scrape_configs[0].interval(), Duration::from_secs(5));
        assert_eq!(c.scrape_configs[0].timeout(), Duration::from_secs(5));
        assert_eq!(c.scrape_configs[1].timeout(), Duration::from_secs(5));
        let c = parse("scrape_configs:\n  - job_name: a\n    scrape_interval: 3s\n").unwrap();
        assert_eq!(c.scrape_configs[0].timeout(), Duration::from_secs(3));
        assert_eq!(c.scrape_configs[0].metrics_path, "/metrics");
        assert_eq!(c.scrape_configs[0].scheme, "http");
        assert!(c.scrape_configs[0].honor_timestamps);
    }

    #[test]
    fn zero_durations_mean_unset() {
        let c = parse(
            "global:\n  scrape_interval: 0s\n  evaluation_interval: 0s\nscrape_configs:\n  - job_name: a\n    scrape_interval: 0s\n    scrape_timeout: 0s\n",
        )
        .unwrap();
        assert_eq!(c.global.scrape_interval, Duration::from_secs(60));
        assert_eq!(c.global.evaluation_interval, Duration::from_secs(60));
        assert_eq!(c.scrape_configs[0].interval(), Duration::from_secs(60));
        assert_eq!(c.scrape_configs[0].timeout(), Duration::from_secs(10));
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = parse(
            "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: a\n    scrape_intervall: 5s\n",
        )
        .unwrap_err();
        assert_eq!(err.line(), Some(5), "{err}");
        assert_eq!(err.key(), Some("scrape_configs[0].scrape_intervall"));
        let text = err.to_string();
        assert!(text.contains("unknown key"), "{text}");
        assert!(text.contains("did you mean \"scrape_interval\""), "{text}");
        assert!(text.contains("scrape_intervall"), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }

    #[test]
    fn cross_field_rules() {
        let cases = [
            (
                "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 6s\n",
                "scrape timeout greater than scrape interval",
                Some(4),
            ),
            (
                "scrape_configs:\n  - job_name: a\n  - job_name: a\n",
                "multiple scrape configs",
                Some(3),
            ),
            (
                "global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n",
                "global scrape timeout",
                Some(3),
            ),
            (
                "scrape_configs:\n  - job_name: a\n    bearer_token: x\n    basic_auth:\n      username: u\n",
                "at most one of",
                None,
            ),
            (
                "scrape_configs:\n  - job_name: a\n    authorization:\n      type: Basic\n",
                "use \"basic_auth\"",
                Some(4),
            ),
            (
                "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: [targets.txt]\n",
                "not valid for file discovery",
                None,
            ),
            (
                "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: hashmod\n        source_labels: [x]\n        target_label: y\n",
                "modulus",
                None,
            ),
            (
                "scrape_configs:\n  - job_name: a\n    foo_sd_configs: []\n",
                "foo_sd_configs",
                None,
            ),
            (
                "scrape_configs:\n  - job_name: a\n    oauth2:\n      client_id: c\n      client_secret: s\n",
                "oauth2 token_url must be configured",
                None,
            ),
            (
                "scrape_configs:\n  - job_name: a\n    oauth2:\n      client_id: c\n      token_url: http://t\n",
                "either oauth2 client_secret or client_secret_file",
                None,
            ),
            (
                "scrape_configs:\n  - job_name: a\n    bearer_token: x\n    oauth2:\n      client_id: c\n      client_secret: s\n      token_url: http://t\n",
                "at most one of basic_auth, oauth2",
                None,
            ),
            (
                "scrape_configs:\n  - job_name: a\n    oauth2:\n      client_id: c\n      client_secret: s\n      token_url: http://t\n      scope: [x]\n",
                "scope",
                None,
            ),
            (
                "scrape_configs:\n  - job_name: a\n    ec2_sd_configs:\n      - region: r\n        filters:\n          - name: tag:x\n",
                "filter values cannot be empty",
                None,
            ),
        ];
        for (text, want, line) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.to_string().contains(want), "{text}: {err}");
            if line.is_some() {
                assert_eq!(err.line(), line, "{text}: {err}");
            }
        }
    }

    #[test]
    fn full_scrape_config_parses() {
        let text = r#"
global:
  scrape_interval: 15s
  external_labels:
    region: eu
  query_log_file: /tmp/q.log
alerting:
  alertmanagers:
    - scheme: https
      path_prefix: /am
      timeout: 5s
      api_version: v2
      basic_auth:
        username: u
        password: p
      static_configs:
        - targets: ['am:9093']
      file_sd_configs:
        - files: ['am/*.json']
rule_files: ['rules/*.yml']
remote_write:
  - url: http://remote/api/v1/write
remote_read:
  - url: http://remote/api/v1/read
scrape_configs:
  - job_name: node
    scrape_interval: 30s
    scrape_timeout: 20s
    metrics_path: /probe
    scheme: https
    params:
      module: [http_2xx]
    honor_labels: true
    honor_timestamps: false
    authorization:
      credentials_file: /secret/token
    tls_config:
      ca_file: ca.pem
      cert_file: c.pem
      key_file: k.pem
      insecure_skip_verify: true
      server_name: node.local
    sample_limit: 1000
    label_limit: 30
    label_name_length_limit: 100
    label_value_length_limit: 200
    target_limit: 10
    body_size_limit: 10MB
    static_configs:
      - targets: ['a:9100', 'b:9100']
        labels:
          env: prod
    file_sd_configs:
      - files: ['targets/*.json', 'more.yml']
        refresh_interval: 30s
    ec2_sd_configs:
      - region: eu-west-1
        port: 9100
        filters:
          - name: tag:Monitor
            values: ['true']
    kubernetes_sd_configs:
      - role: pod
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        regex: '(.*):\d+'
        replacement: '${1}'
        target_label: instance
    metric_relabel_configs:
      - action: Drop
        source_labels: [__name__]
        regex: go_.*
"#;
        let c = parse(text).unwrap();
        let job = &c.scrape_configs[0];
        assert_eq!(job.params["module"], vec!["http_2xx".to_string()]);
        assert_eq!(job.body_size_limit.as_u64(), 10 * 1024 * 1024);
        assert_eq!(
            job.file_sd_configs[0].refresh_interval,
            Duration::from_secs(30)
        );
        assert_eq!(job.ec2_sd_configs[0].port, 9100);
        assert_eq!(
            job.ec2_sd_configs[0].refresh_interval,
            Duration::from_secs(60)
        );
        assert_eq!(job.relabel_configs[1].replacement, "${1}");
        assert_eq!(job.metric_relabel_configs[0].action, Action::Drop);
        let http = job.http_client();
        assert_eq!(http.authorization.unwrap().scheme(), "Bearer");
        assert!(http.tls_config.insecure_skip_verify);
        assert_eq!(c.alerting.alertmanagers[0].timeout, Duration::from_secs(5));
        assert_eq!(c.remote_write.len(), 1);
        let warnings = c.warnings().join("\n");
        for key in [
            "query_log_file",
            "remote_write",
            "remote_read",
            "kubernetes_sd_configs",
        ] {
            assert!(warnings.contains(key), "{warnings}");
        }
        // Secrets never reach the served config.
        let served = serde_yaml::to_string(&c).unwrap();
        assert!(!served.contains("password: p"), "{served}");
    }

    #[test]
    fn retention_under_global_is_rejected_like_prometheus() {
        let err = parse("global:\n  scrape_interval: 15s\n  retention: 360h\n").unwrap_err();
        assert!(err.to_string().contains("retention"), "{err}");
    }

    #[test]
    fn default_file_sd_refresh_is_five_minutes() {
        let c = parse(
            "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: [t.json]\n",
        )
        .unwrap();
        assert_eq!(
            c.scrape_configs[0].file_sd_configs[0].refresh_interval,
            Duration::from_secs(300)
        );
    }

    #[test]
    fn dollar_signs_reach_relabel_configs_unchanged() {
        let c = parse(
            "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - target_label: x\n        replacement: '$1-$$-${name}'\n",
        )
        .unwrap();
        assert_eq!(
            c.scrape_configs[0].relabel_configs[0].replacement,
            "$1-$$-${name}"
        );
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prometheus.yml");
        std::fs::write(
            &path,
            "rule_files: [r.yml, /abs.yml]\nscrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: [sd/*.json]\n",
        )
        .unwrap();
        let c = PrometheusConfig::load(&path).unwrap();
        assert_eq!(
            c.rule_files[0],
            dir.path().join("r.yml").display().to_string()
        );
        assert_eq!(c.rule_files[1], "/abs.yml");
        assert_eq!(
            c.scrape_configs[0].file_sd_configs[0].files[0],
            dir.path().join("sd/*.json").display().to_string()
        );
    }

    #[test]
    fn seed_configs_load_unchanged() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let mut loaded = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.starts_with("prometheus_") {
                continue;
            }
            let c = PrometheusConfig::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!c.scrape_configs.is_empty(), "{name}");
            loaded += 1;
        }
        assert!(loaded >= 2, "only {loaded} seed configs found");
    }
}
