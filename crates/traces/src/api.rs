//! The Tempo HTTP API surface, split by role, and the OTLP/HTTP receiver.

use axum::routing::get;
use axum::{Json, Router};
use pharos_core::BuildInfo;
use pharos_server::{ErrorFormat, unbuilt_routes};

#[derive(Clone, Default)]
pub struct TracesApi {}

/// Tempo's distributor has no HTTP API of its own on 3200 beyond status.
pub fn distributor_router(state: TracesApi) -> Router {
    Router::new().with_state(state)
}

pub fn ingester_router(state: TracesApi) -> Router {
    unbuilt_routes(
        Router::new(),
        &["/flush", "/shutdown"],
        ErrorFormat::PlainText,
    )
    .with_state(state)
}

pub fn compactor_router(state: TracesApi) -> Router {
    Router::new().with_state(state)
}

/// Query routes, plus `/api/echo` and buildinfo which Grafana's Tempo
/// datasource calls on "Save & test".
pub fn querier_router(state: TracesApi) -> Router {
    let r = Router::new()
        .route("/api/echo", get(|| async { "echo" }))
        .route(
            "/api/status/buildinfo",
            get(|| async { Json(BuildInfo::current()) }),
        );
    unbuilt_routes(
        r,
        &[
            "/api/traces/{id}",
            "/api/v2/traces/{id}",
            "/api/search",
            "/api/search/tags",
            "/api/v2/search/tags",
            "/api/search/tag/{name}/values",
            "/api/v2/search/tag/{name}/values",
            "/api/metrics/query",
            "/api/metrics/query_range",
        ],
        ErrorFormat::PlainText,
    )
    .with_state(state)
}

/// The OTLP/HTTP receiver port (4318).
pub fn otlp_http_router(state: TracesApi) -> Router {
    unbuilt_routes(Router::new(), &["/v1/traces"], ErrorFormat::PlainText).with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_server::testing::{get as get_path, post};

    #[tokio::test]
    async fn querier_answers_status_and_501s() {
        let q = querier_router(TracesApi::default());
        assert_eq!(get_path(q.clone(), "/api/echo").await.body, "echo");
        let a = get_path(q.clone(), "/api/traces/0123abcd").await;
        assert_eq!(a.status, 501);
        assert!(a.body.contains("/api/traces/0123abcd"));
        assert_eq!(
            get_path(q, "/api/status/buildinfo").await.json()["version"],
            env!("CARGO_PKG_VERSION")
        );
        let o = post(otlp_http_router(TracesApi::default()), "/v1/traces", "").await;
        assert_eq!(o.status, 501);
    }
}
