//! Errors of the metrics role.

use pharos_core::error::{Classify, ErrorClass};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    #[error(
        "unsupported content type {0:?}: send application/x-protobuf (remote write 1.0) or application/x-protobuf;proto=io.prometheus.write.v2.Request"
    )]
    UnsupportedContentType(String),
    #[error("unsupported content encoding {0:?}: remote write bodies must be snappy-compressed")]
    UnsupportedEncoding(String),
    #[error("snappy decode error: {0}")]
    Snappy(String),
    #[error("protobuf decode error: {0}")]
    Protobuf(String),
    #[error("received a series without metric name, series: '{series}'")]
    MissingMetricName { series: String },
    #[error("received a series with invalid metric name: '{name}'")]
    InvalidMetricName { name: String },
    #[error("received a series with an invalid label: '{label}' series: '{series}'")]
    InvalidLabelName { label: String, series: String },
    #[error("received a series with duplicate label name, label: '{label}' series: '{series}'")]
    DuplicateLabel { label: String, series: String },
    #[error("remote write 2.0: {what} refers to symbol {index} but the request has {len} symbols")]
    SymbolOutOfRange {
        what: &'static str,
        index: u32,
        len: usize,
    },
    #[error("remote write 2.0: labels_refs of a series has odd length {0}")]
    OddLabelRefs(usize),
}

impl Classify for WriteError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::UnsupportedContentType(_) | Self::UnsupportedEncoding(_) => {
                ErrorClass::UnsupportedMediaType
            }
            _ => ErrorClass::BadRequest,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tsdb(#[from] pharos_tsdb::TsdbError),
}

impl Classify for StoreError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Io { .. } => ErrorClass::Unavailable,
            Self::Tsdb(e) => e.class(),
        }
    }
}
