//! The crate's one error type.

use std::path::PathBuf;

use pharos_core::error::{Classify, ErrorClass};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TsdbError {
    /// Same series, same timestamp, a different value.
    #[error("duplicate sample for timestamp {t} with a different value for series {series}")]
    DuplicateSample { series: String, t: i64 },

    /// Older than the out-of-order window allows (or than the head keeps).
    #[error(
        "out of bounds: sample at {t} for series {series} is too old (accepted from {min_t}; out-of-order window {window_ms}ms)"
    )]
    OutOfBounds {
        series: String,
        t: i64,
        min_t: i64,
        window_ms: i64,
    },

    /// Labels the engine cannot store (empty set, unsorted, empty name).
    #[error("invalid labels {series}: {reason}")]
    InvalidLabels { series: String, reason: String },

    /// A new series over the tenant's active-series limit.
    #[error(
        "per-tenant series limit of {limit} exceeded (limits.max_active_series), series: '{series}'"
    )]
    SeriesLimit { limit: usize, series: String },

    /// A selector Prometheus would refuse too.
    #[error("{0}")]
    InvalidSelector(String),

    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Data on disk that does not decode, away from a torn tail.
    #[error("corrupt {file} at offset {offset}: {reason}")]
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },

    /// The WAL failed earlier; the engine refuses writes until reopened so
    /// nothing is acknowledged without being logged.
    #[error("write-ahead log unavailable after an earlier failure: {0}")]
    WalFailed(String),
}

impl TsdbError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Whether the client sent something wrong (as opposed to the server
    /// failing), i.e. whether retrying the same request is pointless.
    pub fn is_bad_data(&self) -> bool {
        self.class() == ErrorClass::BadRequest
    }
}

impl Classify for TsdbError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::DuplicateSample { .. }
            | Self::OutOfBounds { .. }
            | Self::InvalidLabels { .. }
            | Self::SeriesLimit { .. }
            | Self::InvalidSelector(_) => ErrorClass::BadRequest,
            Self::Io { .. } | Self::WalFailed(_) => ErrorClass::Unavailable,
            Self::Corrupt { .. } => ErrorClass::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let dup = TsdbError::DuplicateSample {
            series: "{a=\"b\"}".into(),
            t: 5,
        };
        assert_eq!(dup.class(), ErrorClass::BadRequest);
        assert!(dup.to_string().contains("{a=\"b\"}"));
        let io = TsdbError::io("open", "/x", std::io::Error::other("boom"));
        assert_eq!(io.class(), ErrorClass::Unavailable);
        assert!(!io.is_bad_data());
    }
}
