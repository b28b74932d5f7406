//! Errors of the generator and the checker.

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadgenError {
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    #[error("query {query} failed: {body}")]
    Query { query: String, body: String },
    #[error("bad corpus: {0}")]
    Corpus(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid option: {0}")]
    Invalid(String),
}
