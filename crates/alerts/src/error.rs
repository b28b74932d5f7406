//! The crate's one error type, classified for the HTTP mapping.

use pharos_core::error::{Classify, ErrorClass};

use crate::config::ConfigFileError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertsError {
    /// `alertmanager.yml` cannot be read or is invalid.
    #[error("{0}")]
    Config(#[from] ConfigFileError),
    /// The request asks for something invalid; the text is upstream's.
    #[error("{0}")]
    BadRequest(String),
    /// No such silence.
    #[error("silence not found")]
    SilenceNotFound,
    /// Templates or notification senders cannot be set up from the config.
    #[error("{0}")]
    Notify(String),
    /// The HA gossip cannot start (e.g. its port is taken).
    #[error("{0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    /// Upstream answers these with 500 (e.g. expiring an expired silence).
    #[error("{0}")]
    Internal(String),
}

impl Classify for AlertsError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Config(_) | Self::BadRequest(_) | Self::Notify(_) => ErrorClass::BadRequest,
            Self::SilenceNotFound => ErrorClass::NotFound,
            Self::Internal(_) | Self::Cluster(_) => ErrorClass::Internal,
        }
    }
}
