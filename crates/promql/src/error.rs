//! The engine's one error type, classified the way Prometheus answers.

use pharos_core::error::{Classify, ErrorClass};

/// Message Prometheus uses when a query would hold too many samples.
pub const TOO_MANY_SAMPLES: &str =
    "query processing would load too many samples into memory in query execution";

/// Message Prometheus' API uses when a range query has too many steps.
pub const TOO_MANY_POINTS: &str = "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The query text does not parse (or uses syntax newer than 2.42).
    #[error("{0}")]
    Parse(String),
    /// The query parses but cannot be asked (wrong result type, step too fine).
    #[error("{0}")]
    BadRequest(String),
    /// Evaluation failed on the data, e.g. many-to-many matching.
    #[error("{0}")]
    Execution(String),
    #[error("{}", TOO_MANY_SAMPLES)]
    TooManySamples,
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    #[error("query was canceled in {0}")]
    Canceled(&'static str),
    /// The storage failed underneath the query.
    #[error("{0}")]
    Storage(String),
    /// Valid PromQL this engine does not evaluate yet.
    #[error("not implemented: {0}")]
    NotImplemented(String),
}

impl Classify for QueryError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Parse(_) | Self::BadRequest(_) => ErrorClass::BadRequest,
            Self::Execution(_) | Self::TooManySamples => ErrorClass::Unprocessable,
            Self::Timeout(_) => ErrorClass::Timeout,
            Self::Canceled(_) => ErrorClass::Canceled,
            Self::Storage(_) => ErrorClass::Internal,
            Self::NotImplemented(_) => ErrorClass::NotImplemented,
        }
    }
}

pub(crate) fn exec(msg: impl Into<String>) -> QueryError {
    QueryError::Execution(msg.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_prometheus() {
        assert_eq!(
            QueryError::Parse("x".into()).class(),
            ErrorClass::BadRequest
        );
        assert_eq!(
            QueryError::TooManySamples.class(),
            ErrorClass::Unprocessable
        );
        assert_eq!(QueryError::TooManySamples.to_string(), TOO_MANY_SAMPLES);
        assert_eq!(QueryError::Timeout("x").class(), ErrorClass::Timeout);
        assert_eq!(exec("m").class().prometheus_error_type(), "execution");
    }
}
