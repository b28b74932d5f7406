//! The `server` and `auth` sections: settings every listener of every role
//! shares, configured once.

use std::net::SocketAddr;
use std::path::PathBuf;

use pharos_config::{Duration, Secret, Validate, Validator};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Internal gRPC listener (health, and later the ring and queriers).
    pub grpc_listen_address: String,
    /// How long a SIGTERM/SIGINT waits for in-flight requests and flushes
    /// before the process exits anyway.
    pub graceful_shutdown_timeout: Duration,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub log_level: String,
    /// `logfmt` (default) or `json`.
    pub log_format: String,
    /// TLS for every HTTP and gRPC listener; absent means plain text.
    pub tls: Option<TlsConfig>,
    /// Credentials every listener requires.
    pub access: AccessConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            grpc_listen_address: "0.0.0.0:9095".into(),
            graceful_shutdown_timeout: Duration::from_secs(30),
            log_level: "info".into(),
            log_format: "logfmt".into(),
            tls: None,
            access: AccessConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA bundle; when set, clients must present a certificate it signed.
    pub client_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    /// Require HTTP basic auth with these credentials.
    pub basic_auth: Option<BasicAuthConfig>,
    /// Require `Authorization: Bearer <token>`. With basic_auth also set,
    /// either credential is accepted.
    pub bearer_token: Option<Secret>,
    /// Leave `/ready` reachable without credentials, for load balancers and
    /// compose health checks.
    pub unauthenticated_ready: bool,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            basic_auth: None,
            bearer_token: None,
            unauthenticated_ready: true,
        }
    }
}

impl AccessConfig {
    pub fn is_enabled(&self) -> bool {
        self.basic_auth.is_some() || self.bearer_token.is_some()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    pub username: String,
    pub password: Secret,
}

/// The `auth` section: multi-tenancy, named as in Loki (`auth_enabled`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Require `X-Scope-OrgID` on every data request; when false, requests
    /// without it belong to the tenant `anonymous`.
    pub enabled: bool,
}

impl Validate for AuthConfig {}

impl Validate for ServerConfig {
    fn validate(&self, v: &mut Validator) {
        check_listen_address(v, "grpc_listen_address", &self.grpc_listen_address);
        v.check(
            matches!(
                self.log_level.as_str(),
                "error" | "warn" | "info" | "debug" | "trace"
            ),
            "log_level",
            format!(
                "unknown log level {:?}: use error, warn, info, debug or trace",
                self.log_level
            ),
        );
        v.check(
            matches!(self.log_format.as_str(), "logfmt" | "json"),
            "log_format",
            format!(
                "unknown log format {:?}: use logfmt or json",
                self.log_format
            ),
        );
        if let Some(tls) = &self.tls {
            for (key, path) in [
                ("tls.cert_file", &tls.cert_file),
                ("tls.key_file", &tls.key_file),
            ] {
                v.check(
                    path.is_file(),
                    key,
                    format!("file {} does not exist or is not readable", path.display()),
                );
            }
            if let Some(ca) = &tls.client_ca_file {
                v.check(
                    ca.is_file(),
                    "tls.client_ca_file",
                    format!("file {} does not exist or is not readable", ca.display()),
                );
            }
        }
        if let Some(b) = &self.access.basic_auth {
            v.check(
                !b.username.is_empty(),
                "access.basic_auth.username",
                "must not be empty",
            );
            v.check(
                !b.password.is_empty(),
                "access.basic_auth.password",
                "must not be empty",
            );
        }
        if let Some(t) = &self.access.bearer_token {
            v.check(!t.is_empty(), "access.bearer_token", "must not be empty");
        }
    }
}

/// Accepts `host:port`, `:port` (all interfaces, as Go programs do) and
/// `[v6]:port`; shared by every role's listen address.
pub fn parse_listen_address(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_owned()
    };
    if let Ok(a) = full.parse::<SocketAddr>() {
        return Ok(a);
    }
    // a host name such as localhost:9090
    use std::net::ToSocketAddrs;
    full.to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| format!("invalid listen address {s:?}: use host:port, e.g. 0.0.0.0:9090"))
}

pub fn check_listen_address(v: &mut Validator, key: &str, value: &str) {
    if let Err(e) = parse_listen_address(value) {
        v.error(key, e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen_address(":9090").unwrap().port(), 9090);
        assert_eq!(
            parse_listen_address("127.0.0.1:1").unwrap().to_string(),
            "127.0.0.1:1"
        );
        assert!(parse_listen_address("9090").is_err());
        assert!(parse_listen_address("x:y").is_err());
    }
}
