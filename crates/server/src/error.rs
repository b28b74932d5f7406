//! Errors of the scaffolding itself, and the one place where an error
//! class becomes an HTTP response in the upstream body shape.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use pharos_core::error::{Classify, ErrorClass};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("cannot listen on {addr} for {listener}: {source}")]
    Bind {
        listener: String,
        addr: String,
        source: std::io::Error,
    },
    #[error("tls: {0}")]
    Tls(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Classify for ServerError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Bind { .. } | Self::Tls(_) => ErrorClass::BadRequest,
            Self::Io(_) => ErrorClass::Internal,
        }
    }
}

/// The body shape an API's clients expect for errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    /// `{"status":"error","errorType":"bad_data","error":"..."}`
    /// (Prometheus HTTP API).
    Prometheus,
    /// A plain-text line (Loki and Tempo).
    PlainText,
    /// A JSON string (Alertmanager API v2).
    JsonString,
}

/// An error on its way to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub class: ErrorClass,
    pub message: String,
    pub format: ErrorFormat,
}

impl ApiError {
    pub fn new(format: ErrorFormat, class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            format,
        }
    }

    /// Build from any classified error, keeping its message.
    pub fn from_error<E: Classify + std::fmt::Display>(format: ErrorFormat, err: &E) -> Self {
        Self::new(format, err.class(), err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.class.http_status();
        let (body, ctype) = match self.format {
            ErrorFormat::Prometheus => (
                serde_json::json!({
                    "status": "error",
                    "errorType": self.class.prometheus_error_type(),
                    "error": self.message,
                })
                .to_string(),
                "application/json",
            ),
            ErrorFormat::PlainText => (format!("{}\n", self.message), "text/plain; charset=utf-8"),
            ErrorFormat::JsonString => (
                serde_json::Value::String(self.message).to_string(),
                "application/json",
            ),
        };
        let mut resp = (status, body).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(r: Response) -> (u16, String) {
        let status = r.status().as_u16();
        let b = r.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(b.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn shapes() {
        let (s, b) = body(
            ApiError::new(
                ErrorFormat::Prometheus,
                ErrorClass::BadRequest,
                "parse error",
            )
            .into_response(),
        )
        .await;
        assert_eq!(s, 400);
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["status"], "error");
        assert_eq!(v["errorType"], "bad_data");
        assert_eq!(v["error"], "parse error");

        let (s, b) = body(
            ApiError::new(
                ErrorFormat::JsonString,
                ErrorClass::NotFound,
                "silence not found",
            )
            .into_response(),
        )
        .await;
        assert_eq!((s, b.as_str()), (404, "\"silence not found\""));

        let (s, b) = body(
            ApiError::new(
                ErrorFormat::PlainText,
                ErrorClass::TooManyRequests,
                "rate limit",
            )
            .into_response(),
        )
        .await;
        assert_eq!((s, b.as_str()), (429, "rate limit\n"));
    }
}
