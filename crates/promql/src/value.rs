//! Query results.

use pharos_model::{Labels, Sample};

/// The result of a query, shaped like Prometheus' API `resultType`s.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(i64, f64),
    /// Instant vector: one sample per series at the evaluation time.
    Vector(Vec<(Labels, i64, f64)>),
    /// Range result: series sorted by labels (range queries) or raw samples
    /// of a range selector (instant queries).
    Matrix(Vec<(Labels, Vec<Sample>)>),
    String(i64, String),
}

impl Value {
    /// Prometheus' `resultType` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Scalar(..) => "scalar",
            Self::Vector(_) => "vector",
            Self::Matrix(_) => "matrix",
            Self::String(..) => "string",
        }
    }
}
