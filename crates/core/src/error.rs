//! One classification of failures, and its one mapping to HTTP and gRPC.
//!
//! Every crate's error type implements [`Classify`]; the servers turn the
//! class into a status code through [`ErrorClass::http_status`] and
//! [`ErrorClass::grpc_code`], so the same failure never answers 400 on one
//! route and 500 on another.

use http::StatusCode;

/// What kind of failure an error is, from the client's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The request is malformed or asks for something invalid (400).
    BadRequest,
    /// The request is well-formed but cannot be executed (422), e.g. a
    /// query over the sample limit.
    Unprocessable,
    /// Credentials are missing or wrong (401).
    Unauthorized,
    /// Authenticated but not allowed (403).
    Forbidden,
    /// The thing asked for does not exist (404).
    NotFound,
    /// The thing exists already or a precondition failed (409).
    Conflict,
    /// The content type is not one we speak (415).
    UnsupportedMediaType,
    /// A per-tenant limit was hit (429).
    TooManyRequests,
    /// Gone for good, e.g. a removed API version (410).
    Gone,
    /// The route exists upstream but is not built yet (501).
    NotImplemented,
    /// A dependency (object store, peer) is unavailable; retrying later may
    /// succeed (503).
    Unavailable,
    /// The operation ran out of time (503 for HTTP like Prometheus,
    /// DeadlineExceeded for gRPC).
    Timeout,
    /// The client went away before the answer was ready (499).
    Canceled,
    /// A bug or an unexpected state on our side (500).
    Internal,
}

/// The gRPC status codes Pharos answers with (numbers as in the gRPC spec),
/// kept here so this crate does not depend on tonic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum GrpcCode {
    Cancelled = 1,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
}

impl ErrorClass {
    pub fn http_status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict => StatusCode::CONFLICT,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Gone => StatusCode::GONE,
            Self::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            Self::Unavailable | Self::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            // nginx's "client closed request", which Prometheus uses too
            Self::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn grpc_code(self) -> GrpcCode {
        match self {
            Self::BadRequest | Self::Unprocessable | Self::UnsupportedMediaType => {
                GrpcCode::InvalidArgument
            }
            Self::Unauthorized => GrpcCode::Unauthenticated,
            Self::Forbidden => GrpcCode::PermissionDenied,
            Self::NotFound | Self::Gone => GrpcCode::NotFound,
            Self::Conflict => GrpcCode::AlreadyExists,
            Self::TooManyRequests => GrpcCode::ResourceExhausted,
            Self::NotImplemented => GrpcCode::Unimplemented,
            Self::Unavailable => GrpcCode::Unavailable,
            Self::Timeout => GrpcCode::DeadlineExceeded,
            Self::Canceled => GrpcCode::Cancelled,
            Self::Internal => GrpcCode::Internal,
        }
    }

    /// Whether a client (or our own retry loop) may succeed by trying again.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Unavailable | Self::Timeout | Self::TooManyRequests
        )
    }

    /// Prometheus API `errorType` for this class.
    pub fn prometheus_error_type(self) -> &'static str {
        match self {
            Self::BadRequest | Self::UnsupportedMediaType => "bad_data",
            Self::Unprocessable => "execution",
            Self::Timeout => "timeout",
            Self::Canceled => "canceled",
            Self::NotFound => "not_found",
            Self::Unavailable | Self::TooManyRequests | Self::NotImplemented | Self::Gone => {
                "unavailable"
            }
            _ => "internal",
        }
    }
}

/// Implemented by every crate's error enum.
pub trait Classify {
    fn class(&self) -> ErrorClass;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_upstream() {
        assert_eq!(ErrorClass::BadRequest.http_status(), 400);
        assert_eq!(ErrorClass::Unprocessable.http_status(), 422);
        assert_eq!(ErrorClass::TooManyRequests.http_status(), 429);
        assert_eq!(ErrorClass::Timeout.http_status(), 503);
        assert_eq!(ErrorClass::Canceled.http_status(), 499);
        assert_eq!(
            ErrorClass::BadRequest.grpc_code(),
            GrpcCode::InvalidArgument
        );
        assert_eq!(ErrorClass::Unavailable.grpc_code() as i32, 14);
        assert_eq!(
            ErrorClass::Unprocessable.prometheus_error_type(),
            "execution"
        );
        assert!(ErrorClass::Unavailable.is_retryable());
        assert!(!ErrorClass::BadRequest.is_retryable());
    }
}
