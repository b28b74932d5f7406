//! The `storage:` section of the Pharos config.

use std::path::PathBuf;
use std::time::Duration;

use pharos_config::Duration as ConfigDuration;
pub use pharos_config::Secret;
use serde::{Deserialize, Serialize};

/// Where objects are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A directory on local disk: the default so that Pharos runs with no
    /// config at all.
    #[default]
    Filesystem,
    /// AWS S3 or anything that speaks its protocol (MinIO, R2, Ceph...).
    S3,
    /// Process memory; lost on exit, so only for tests.
    Memory,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Filesystem => "filesystem",
            Self::S3 => "s3",
            Self::Memory => "memory",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "filesystem" => Ok(Self::Filesystem),
            "s3" => Ok(Self::S3),
            "memory" => Ok(Self::Memory),
            other => Err(format!(
                "unknown storage backend {other:?}: use filesystem, s3 or memory"
            )),
        }
    }
}

/// Object storage settings shared by every role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Which backend holds the objects: `filesystem`, `s3` or `memory`.
    pub backend: Backend,
    /// Settings for `backend: filesystem`.
    pub filesystem: FilesystemConfig,
    /// Settings for `backend: s3`.
    pub s3: S3Config,
    /// How long and how often to retry before an operation fails, so that a
    /// dead backend is reported instead of hanging a request.
    pub retry: RetryConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Filesystem,
            filesystem: FilesystemConfig::default(),
            s3: S3Config::default(),
            retry: RetryConfig::default(),
        }
    }
}

/// Settings for the local-disk backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesystemConfig {
    /// Root directory of the store; created at start if missing. Objects
    /// live under it with the same layout as keys in a bucket.
    pub path: PathBuf,
}

impl Default for FilesystemConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("./data"),
        }
    }
}

/// Settings for S3 and S3-compatible servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// Server URL, e.g. `http://minio:9000`. Unset means AWS itself (or the
    /// `AWS_ENDPOINT` environment variable when no keys are configured).
    pub endpoint: Option<String>,
    /// Bucket that holds every Pharos object; it must exist already.
    pub bucket: String,
    /// Region used to sign requests; MinIO accepts any value.
    pub region: String,
    /// Access key id. Unset means credentials come from the standard AWS
    /// environment (`AWS_ACCESS_KEY_ID`, web identity, ECS/instance roles).
    pub access_key_id: Option<String>,
    /// Secret access key; never printed.
    pub secret_access_key: Option<Secret>,
    /// Session token for temporary credentials; never printed.
    pub session_token: Option<Secret>,
    /// Address the bucket as `endpoint/bucket/key` instead of
    /// `bucket.endpoint/key`. MinIO and most self-hosted servers need
    /// `true`; with a custom endpoint and `false` the endpoint must already
    /// name the bucket.
    pub force_path_style: bool,
    /// Permit plain `http://` endpoints (local MinIO); off so that keys are
    /// never sent in the clear by accident.
    pub allow_http: bool,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: None,
            bucket: String::new(),
            region: "us-east-1".to_owned(),
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            force_path_style: false,
            allow_http: false,
        }
    }
}

/// Retry and timeout policy for every storage operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Retries after the first attempt for failures that may pass (network
    /// errors, 5xx, timeouts); other failures are returned at once.
    pub max_retries: u32,
    /// Wait before the first retry; doubles on each retry
    /// (with jitter, so replicas do not retry in lockstep).
    pub initial_backoff: ConfigDuration,
    /// Upper bound of the wait between two retries.
    pub max_backoff: ConfigDuration,
    /// Hard deadline for one operation including all its retries and the
    /// body transfer: past it the caller gets `Unavailable`
    /// instead of waiting on a dead server.
    pub total_timeout: ConfigDuration,
    /// Deadline for one HTTP request (S3 only).
    pub request_timeout: ConfigDuration,
    /// Deadline for opening one TCP/TLS connection (S3 only).
    pub connect_timeout: ConfigDuration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_backoff: ConfigDuration::from_millis(100),
            max_backoff: ConfigDuration::from_secs(5),
            total_timeout: ConfigDuration::from_secs(30),
            request_timeout: ConfigDuration::from_secs(20),
            connect_timeout: ConfigDuration::from_secs(5),
        }
    }
}

impl RetryConfig {
    pub fn initial_backoff(&self) -> Duration {
        self.initial_backoff.as_std()
    }

    pub fn max_backoff(&self) -> Duration {
        self.max_backoff.as_std()
    }

    pub fn total_timeout(&self) -> Duration {
        self.total_timeout.as_std()
    }

    pub fn request_timeout(&self) -> Duration {
        self.request_timeout.as_std()
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout.as_std()
    }
}

impl StorageConfig {
    /// Checks what serde cannot; the error names the offending key
    /// (`storage.s3.bucket`) so an operator can find it in the file.
    pub fn validate(&self) -> Result<(), String> {
        match self.backend {
            Backend::Filesystem => {
                if self.filesystem.path.as_os_str().is_empty() {
                    return Err("storage.filesystem.path: must not be empty".to_owned());
                }
            }
            Backend::S3 => self.s3.validate()?,
            Backend::Memory => {}
        }
        self.retry.validate()
    }
}

impl S3Config {
    fn validate(&self) -> Result<(), String> {
        if self.bucket.trim().is_empty() {
            return Err("storage.s3.bucket: must be set when storage.backend is s3".to_owned());
        }
        if self.region.trim().is_empty() {
            return Err("storage.s3.region: must not be empty".to_owned());
        }
        if let Some(endpoint) = &self.endpoint {
            if endpoint.starts_with("http://") {
                if !self.allow_http {
                    return Err(format!(
                        "storage.s3.endpoint: {endpoint:?} is plain http; set storage.s3.allow_http: true to permit it"
                    ));
                }
            } else if !endpoint.starts_with("https://") {
                return Err(format!(
                    "storage.s3.endpoint: {endpoint:?} must start with http:// or https://"
                ));
            }
        }
        let has_id = self.access_key_id.as_deref().is_some_and(|s| !s.is_empty());
        let has_secret = self
            .secret_access_key
            .as_ref()
            .is_some_and(|s| !s.is_empty());
        match (has_id, has_secret) {
            (true, false) => {
                return Err(
                    "storage.s3.secret_access_key: must be set when storage.s3.access_key_id is"
                        .to_owned(),
                );
            }
            (false, true) => {
                return Err(
                    "storage.s3.access_key_id: must be set when storage.s3.secret_access_key is"
                        .to_owned(),
                );
            }
            _ => {}
        }
        if !has_id && self.session_token.as_ref().is_some_and(|s| !s.is_empty()) {
            return Err(
                "storage.s3.session_token: only valid together with storage.s3.access_key_id"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

impl RetryConfig {
    fn validate(&self) -> Result<(), String> {
        if self.initial_backoff.is_zero() {
            return Err("storage.retry.initial_backoff: must be greater than 0".to_owned());
        }
        if self.max_backoff < self.initial_backoff {
            return Err(
                "storage.retry.max_backoff: must not be less than storage.retry.initial_backoff"
                    .to_owned(),
            );
        }
        for (key, value) in [
            ("total_timeout", self.total_timeout),
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(format!("storage.retry.{key}: must be greater than 0"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_filesystem_under_data() {
        let config: StorageConfig = serde_yaml::from_str("{}").unwrap();
        assert_eq!(config, StorageConfig::default());
        assert_eq!(config.backend, Backend::Filesystem);
        assert_eq!(config.filesystem.path, PathBuf::from("./data"));
        assert_eq!(config.retry.total_timeout, ConfigDuration::from_secs(30));
        config.validate().unwrap();
    }

    #[test]
    fn s3_section_parses() {
        let yaml = r#"
backend: s3
s3:
  endpoint: http://minio:9000
  bucket: pharos
  access_key_id: AKIA
  secret_access_key: hunter2hunter2
  force_path_style: true
  allow_http: true
retry:
  total_timeout: 5s
"#;
        let config: StorageConfig = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(config.backend, Backend::S3);
        assert_eq!(config.s3.region, "us-east-1");
        assert_eq!(
            config.s3.secret_access_key.as_ref().unwrap().expose(),
            "hunter2hunter2"
        );
        assert_eq!(config.retry.max_retries, 5);
        assert_eq!(config.retry.total_timeout(), Duration::from_secs(5));
        config.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = serde_yaml::from_str::<StorageConfig>("s3:\n  bucket_name: x\n").unwrap_err();
        assert!(err.to_string().contains("bucket_name"), "{err}");
        assert!(serde_yaml::from_str::<StorageConfig>("backend: gcs\n").is_err());
    }

    #[test]
    fn secrets_never_print() {
        let mut config = StorageConfig::default();
        config.s3.secret_access_key = Some(Secret::new("hunter2hunter2"));
        config.s3.session_token = Some("tok3ntok3n".into());
        let debug = format!("{config:?}");
        let yaml = serde_yaml::to_string(&config).unwrap();
        for out in [&debug, &yaml] {
            assert!(!out.contains("hunter2"), "{out}");
            assert!(!out.contains("tok3n"), "{out}");
            assert!(out.contains("<secret>"), "{out}");
        }
    }

    #[test]
    fn validation_names_the_key() {
        let mut config = StorageConfig {
            backend: Backend::S3,
            ..StorageConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .starts_with("storage.s3.bucket")
        );

        config.s3.bucket = "b".into();
        config.s3.endpoint = Some("http://localhost:9000".into());
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("storage.s3.allow_http")
        );
        config.s3.allow_http = true;
        config.validate().unwrap();

        config.s3.endpoint = Some("localhost:9000".into());
        assert!(
            config
                .validate()
                .unwrap_err()
                .starts_with("storage.s3.endpoint")
        );
        config.s3.endpoint = None;

        config.s3.access_key_id = Some("id".into());
        assert!(
            config
                .validate()
                .unwrap_err()
                .starts_with("storage.s3.secret_access_key")
        );
        config.s3.access_key_id = None;
        config.s3.session_token = Some("t".into());
        assert!(
            config
                .validate()
                .unwrap_err()
                .starts_with("storage.s3.session_token")
        );
        config.s3.session_token = None;

        config.retry.max_backoff = ConfigDuration::from_millis(1);
        assert!(
            config
                .validate()
                .unwrap_err()
                .starts_with("storage.retry.max_backoff")
        );
        config.retry = RetryConfig {
            total_timeout: ConfigDuration::ZERO,
            ..RetryConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .starts_with("storage.retry.total_timeout")
        );

        let empty_path = StorageConfig {
            filesystem: FilesystemConfig {
                path: PathBuf::new(),
            },
            ..StorageConfig::default()
        };
        assert!(
            empty_path
                .validate()
                .unwrap_err()
                .starts_with("storage.filesystem.path")
        );
    }
}
