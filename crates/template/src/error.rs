use pharos_core::error::{Classify, ErrorClass};

/// Why parsing or executing a template failed.
///
/// Messages follow Go's `text/template` wording (`template: name:line:col:
/// executing "name" at <node>: ...`) because users grep for them and
/// Prometheus/Alertmanager surface them verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The template text is malformed.
    #[error("{0}")]
    Parse(String),
    /// Execution failed, e.g. a function returned an error or a field does
    /// not exist.
    #[error("{0}")]
    Exec(String),
    /// The named template does not exist in the set.
    #[error("template: no template {0:?} associated with template set")]
    NotFound(String),
}

impl Classify for TemplateError {
    fn class(&self) -> ErrorClass {
        match self {
            TemplateError::Parse(_) | TemplateError::Exec(_) => ErrorClass::BadRequest,
            TemplateError::NotFound(_) => ErrorClass::NotFound,
        }
    }
}

/// Why a template function refused its arguments.
///
/// The variants let the executor word the message as Go does: arity and type
/// errors are reported plainly, anything else as `error calling NAME: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FuncError {
    /// The function was called with the wrong number of arguments.
    #[error("wrong number of args: want {want} got {got}")]
    Arity {
        /// Expected count, as Go words it (`1` or `at least 1`).
        want: String,
        /// Given count.
        got: usize,
    },
    /// An argument had the wrong type.
    #[error("wrong type for value; expected {expected}; got {got}")]
    Type {
        /// The Go type name that was expected.
        expected: String,
        /// The Go type name that was given.
        got: String,
    },
    /// The function ran and failed.
    #[error("{0}")]
    Call(String),
}

impl From<String> for FuncError {
    fn from(s: String) -> Self {
        FuncError::Call(s)
    }
}

impl From<&str> for FuncError {
    fn from(s: &str) -> Self {
        FuncError::Call(s.to_string())
    }
}
