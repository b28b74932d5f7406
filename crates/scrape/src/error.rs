//! The crate's error type.

use pharos_core::error::{Classify, ErrorClass};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScrapeError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] pharos_config::ConfigError),
    /// A target's labels are not usable (bad address, invalid label).
    #[error("invalid target: {0}")]
    InvalidTarget(String),
    /// A scrape failed; the message is what `/api/v1/targets` shows as
    /// `lastError`.
    #[error("{0}")]
    Scrape(String),
    /// A feature Prometheus has that Pharos has not built yet.
    #[error("{0} is not implemented yet")]
    NotImplemented(&'static str),
    /// A service discovery config cannot be used (no region, bad endpoint,
    /// unset variable).
    #[error("{0}")]
    DiscoveryConfig(String),
    /// A service discovery refresh failed; the last good targets stay.
    #[error("{0}")]
    Discovery(String),
    /// Building the HTTP client failed (bad TLS files, unreadable secrets).
    #[error("http client: {0}")]
    Client(String),
}

impl Classify for ScrapeError {
    fn class(&self) -> ErrorClass {
        match self {
            ScrapeError::Config(_)
            | ScrapeError::InvalidTarget(_)
            | ScrapeError::Client(_)
            | ScrapeError::DiscoveryConfig(_) => ErrorClass::BadRequest,
            ScrapeError::Scrape(_) | ScrapeError::Discovery(_) => ErrorClass::Unavailable,
            ScrapeError::NotImplemented(_) => ErrorClass::NotImplemented,
        }
    }
}
