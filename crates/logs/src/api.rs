//! The Loki HTTP API surface, split by role.

use axum::routing::get;
use axum::{Json, Router};
use pharos_core::BuildInfo;
use pharos_server::{ErrorFormat, unbuilt_routes};

#[derive(Clone, Default)]
pub struct LogsApi {}

const INGESTER_ROUTES: &[&str] = &["/loki/api/v1/push", "/api/prom/push", "/flush"];

const QUERIER_ROUTES: &[&str] = &[
    "/loki/api/v1/query",
    "/loki/api/v1/query_range",
    "/loki/api/v1/labels",
    "/loki/api/v1/label/{name}/values",
    "/loki/api/v1/series",
    "/loki/api/v1/tail",
    "/loki/api/v1/index/stats",
    "/loki/api/v1/index/volume",
    "/loki/api/v1/index/volume_range",
    "/loki/api/v1/detected_fields",
    "/loki/api/v1/detected_labels",
    "/loki/api/v1/patterns",
    "/loki/api/v1/format_query",
];

pub fn ingester_router(state: LogsApi) -> Router {
    with_routes(INGESTER_ROUTES, state)
}

/// The querier also answers buildinfo, which Grafana's Loki datasource
/// calls on "Save & test".
pub fn querier_router(state: LogsApi) -> Router {
    with_routes(QUERIER_ROUTES, state).route(
        "/loki/api/v1/status/buildinfo",
        get(|| async { Json(BuildInfo::current()) }),
    )
}

fn with_routes(paths: &[&str], state: LogsApi) -> Router {
    unbuilt_routes(Router::new(), paths, ErrorFormat::PlainText).with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_server::testing::{get as get_path, post};

    #[tokio::test]
    async fn routes_split_by_role() {
        let ing = ingester_router(LogsApi::default());
        let q = querier_router(LogsApi::default());
        let a = post(ing.clone(), "/loki/api/v1/push", "{}").await;
        assert_eq!(a.status, 501);
        assert!(
            a.body.contains("/loki/api/v1/push is not implemented"),
            "{}",
            a.body
        );
        assert_eq!(get_path(ing, "/loki/api/v1/query").await.status, 404);
        assert_eq!(
            get_path(q.clone(), "/loki/api/v1/label/job/values")
                .await
                .status,
            501
        );
        let b = get_path(q, "/loki/api/v1/status/buildinfo").await;
        assert_eq!(b.status, 200);
        assert_eq!(b.json()["version"], env!("CARGO_PKG_VERSION"));
    }
}
