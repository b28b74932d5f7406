//! Storage failures, classified by what the caller can do about them.
//!
//! object_store reports most network trouble as `Generic` with the cause
//! buried in the source chain; [`StorageError::from_object_store`] digs it
//! out so that "S3 is down" becomes `Unavailable` (retry later, 503) and not
//! `Internal` (a bug, 500).

use std::error::Error as StdError;
use std::io;
use std::ops::Range;

use object_store::client::{HttpError, HttpErrorKind};
use pharos_core::error::{Classify, ErrorClass};

/// Every failure of a storage operation.
///
/// Paths are the full object keys (with the scope prefix), which is what an
/// operator finds in the bucket. Reasons never contain credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("object {path:?} not found")]
    NotFound { path: String },

    #[error("object {path:?} already exists")]
    AlreadyExists { path: String },

    #[error("precondition failed for object {path:?}")]
    Precondition { path: String },

    /// The backend did not answer, answered 5xx, or timed out, even after
    /// retries; trying again later may succeed.
    #[error("object storage unavailable: {op} {path:?}: {reason}")]
    Unavailable {
        op: &'static str,
        path: String,
        reason: String,
    },

    /// The key cannot be an object path (empty segment, `..`, control
    /// characters); caught before any request is sent.
    #[error("invalid object path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },

    /// A byte range that is empty or starts at/after the end of the object.
    #[error("invalid range {}..{} for object {path:?}: {reason}", range.start, range.end)]
    InvalidRange {
        path: String,
        range: Range<u64>,
        reason: String,
    },

    /// The backend cannot do this at all (e.g. conditional put on an S3
    /// server without `If-None-Match` support).
    #[error("{op} is not supported by this storage backend: {reason}")]
    Unsupported { op: &'static str, reason: String },

    #[error("invalid storage config: {0}")]
    InvalidConfig(String),

    /// Anything else: wrong credentials, a bug, a malformed response.
    #[error("object storage {op} {path:?} failed: {reason}")]
    Internal {
        op: &'static str,
        path: String,
        reason: String,
    },
}

impl Classify for StorageError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::NotFound { .. } => ErrorClass::NotFound,
            Self::AlreadyExists { .. } | Self::Precondition { .. } => ErrorClass::Conflict,
            Self::Unavailable { .. } => ErrorClass::Unavailable,
            Self::InvalidPath { .. } | Self::InvalidRange { .. } => ErrorClass::BadRequest,
            Self::Unsupported { .. } => ErrorClass::NotImplemented,
            // A bad config is the operator's mistake, not the client's: a
            // request that trips over it gets a 500, never a 400.
            Self::InvalidConfig(_) | Self::Internal { .. } => ErrorClass::Internal,
        }
    }
}

impl StorageError {
    /// Whether our own retry loop may try the operation again.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// Classifies an object_store error raised by `op` on `path`.
    pub fn from_object_store(op: &'static str, path: &str, err: object_store::Error) -> Self {
        use object_store::Error as E;
        let path = path.to_owned();
        match err {
            E::NotFound { .. } => Self::NotFound { path },
            E::AlreadyExists { .. } => Self::AlreadyExists { path },
            E::Precondition { .. } => Self::Precondition { path },
            E::NotImplemented { .. } | E::NotSupported { .. } => Self::Unsupported {
                op,
                reason: chain_text(&err),
            },
            E::InvalidPath { .. } => Self::InvalidPath {
                reason: chain_text(&err),
                path,
            },
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => Self::Internal {
                op,
                path,
                reason: format!(
                    "access denied, check storage credentials: {}",
                    chain_text(&err)
                ),
            },
            ref other if is_transient(other) => Self::Unavailable {
                op,
                path,
                reason: chain_text(other),
            },
            other => Self::Internal {
                op,
                path,
                reason: chain_text(&other),
            },
        }
    }

    /// Replaces every occurrence of a secret in the free-text reasons.
    ///
    /// S3 error bodies and URLs should never carry the secret key, but a
    /// misbehaving server or proxy could echo anything; this is the last
    /// line of defence before a message reaches a log or a client.
    pub(crate) fn redact(mut self, secrets: &[String]) -> Self {
        if secrets.is_empty() {
            return self;
        }
        match &mut self {
            Self::Unavailable { reason, .. }
            | Self::Internal { reason, .. }
            | Self::InvalidPath { reason, .. }
            | Self::InvalidRange { reason, .. }
            | Self::Unsupported { reason, .. } => {
                for secret in secrets {
                    if reason.contains(secret.as_str()) {
                        *reason = reason.replace(secret.as_str(), "<secret>");
                    }
                }
            }
            Self::InvalidConfig(message) => {
                for secret in secrets {
                    *message = message.replace(secret.as_str(), "<secret>");
                }
            }
            Self::NotFound { .. } | Self::AlreadyExists { .. } | Self::Precondition { .. } => {}
        }
        self
    }
}

/// The error and its sources as one line, skipping a source whose text the
/// outer message already repeats (object_store and thiserror both embed
/// their source's text).
fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = next_cause(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !cause_text.is_empty() && !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = next_cause(cause);
    }
    text
}

/// `source()`, except that an `io::Error` wrapping another error yields
/// that error: std's `io::Error::source` skips it and returns its source.
fn next_cause<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    if let Some(inner) = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
        return Some(inner);
    }
    err.source()
}

/// Whether the failure is the network or the server being unwell rather than
/// the request being wrong.
fn is_transient(err: &object_store::Error) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(http) = cause.downcast_ref::<HttpError>() {
            match http.kind() {
                HttpErrorKind::Connect
                | HttpErrorKind::Request
                | HttpErrorKind::Timeout
                | HttpErrorKind::Interrupted
                // A body cut off mid-transfer shows up as a decode error.
                | HttpErrorKind::Decode => return true,
                _ => {}
            }
        }
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            use io::ErrorKind as K;
            if matches!(
                io.kind(),
                K::ConnectionRefused
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::NotConnected
                    | K::BrokenPipe
                    | K::TimedOut
                    | K::Interrupted
                    | K::WouldBlock
                    | K::UnexpectedEof
                    | K::ResourceBusy
                    | K::HostUnreachable
                    | K::NetworkUnreachable
                    | K::NetworkDown
            ) {
                return true;
            }
        }
        source = next_cause(cause);
    }
    // Last resort for causes we cannot name (reqwest is not our dependency,
    // object_store's RetryError is private): its messages are stable.
    let text = chain_text(err).to_ascii_lowercase();
    [
        "error sending request",
        "connection",
        "connect error",
        "timed out",
        "timeout",
        "retries, max_retries",
        "non-2xx status code: 5",
        "internalerror",
        "slowdown",
        "service unavailable",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(source: impl StdError + Send + Sync + 'static) -> object_store::Error {
        object_store::Error::Generic {
            store: "Test",
            source: Box::new(source),
        }
    }

    #[test]
    fn object_store_errors_are_classified() {
        let e = StorageError::from_object_store(
            "get",
            "a/b",
            object_store::Error::NotFound {
                path: "a/b".into(),
                source: "gone".into(),
            },
        );
        assert!(matches!(e, StorageError::NotFound { ref path } if path == "a/b"));
        assert_eq!(e.class(), ErrorClass::NotFound);

        let e = StorageError::from_object_store(
            "put_if_absent",
            "a",
            object_store::Error::AlreadyExists {
                path: "a".into(),
                source: "exists".into(),
            },
        );
        assert_eq!(e.class(), ErrorClass::Conflict);

        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
        let e = StorageError::from_object_store("list", "p", generic(refused));
        assert!(e.is_transient(), "{e}");
        assert_eq!(e.class(), ErrorClass::Unavailable);
        assert!(e.to_string().contains("list"), "{e}");

        let nested = io::Error::other(io::Error::new(io::ErrorKind::TimedOut, "slow"));
        let e = StorageError::from_object_store("get", "p", generic(nested));
        assert!(e.is_transient(), "{e}");

        let e = StorageError::from_object_store(
            "get",
            "p",
            generic(io::Error::other(
                "Server returned non-2xx status code: 503 Service Unavailable",
            )),
        );
        assert!(e.is_transient(), "{e}");

        let e = StorageError::from_object_store(
            "get",
            "p",
            generic(io::Error::other(
                "Server returned non-2xx status code: 400 Bad Request",
            )),
        );
        assert!(matches!(e, StorageError::Internal { .. }), "{e}");

        let e = StorageError::from_object_store(
            "put",
            "p",
            object_store::Error::PermissionDenied {
                path: "p".into(),
                source: "403".into(),
            },
        );
        assert_eq!(e.class(), ErrorClass::Internal);
        assert!(e.to_string().contains("credentials"), "{e}");
    }

    #[test]
    fn secrets_are_redacted() {
        let e = StorageError::Unavailable {
            op: "get",
            path: "p".into(),
            reason: "server echoed hunter2hunter2 back".into(),
        }
        .redact(&["hunter2hunter2".to_owned()]);
        let text = e.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<secret>"), "{text}");
    }
}
