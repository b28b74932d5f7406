//! The crate's one error type.

use pharos_core::error::{Classify, ErrorClass};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// One or more rule files are invalid; each entry names file, line and
    /// reason the way Prometheus prints them.
    #[error("{}", .0.join("\n"))]
    Load(Vec<String>),
    /// A unit-test file is malformed.
    #[error("{0}")]
    TestFile(String),
    /// Notifier configuration is invalid (bad URL, unsupported api_version).
    #[error("{0}")]
    Config(String),
    /// Reading a file failed.
    #[error("{0}")]
    Io(String),
    /// Something Prometheus offers that this crate does not implement yet.
    #[error("not implemented: {0}")]
    NotImplemented(String),
}

impl Classify for RulesError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Load(_) | Self::TestFile(_) | Self::Config(_) => ErrorClass::BadRequest,
            Self::Io(_) => ErrorClass::Internal,
            Self::NotImplemented(_) => ErrorClass::NotImplemented,
        }
    }
}
