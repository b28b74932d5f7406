//! The Prometheus HTTP API surface.

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::ingest::Ingest;
use crate::query_api::{QueryApi, query_routes};
use crate::scraping::Scraping;
use pharos_core::BuildInfo;
use pharos_server::{ErrorFormat, unbuilt_routes};

/// What the API serves from; parts not built yet stay `None` and their
/// routes answer 501.
#[derive(Clone, Default)]
pub struct MetricsApi {
    /// The remote_write receiver; `None` when disabled.
    pub ingest: Option<Ingest>,
    /// Scraping from `prometheus.yml`; `None` in roles that do not scrape.
    pub scraping: Option<Scraping>,
    /// The query API (PromQL, series, labels, metadata, status, federate).
    pub query: Option<QueryApi>,
    /// Recording and alerting rules.
    pub rules: Option<crate::rules::Rules>,
}

/// Remote write bodies are snappy-compressed protobuf; Prometheus sends at
/// most a few MiB per request, agents sometimes more.
const MAX_WRITE_BODY: usize = 64 << 20;

pub fn router(state: MetricsApi) -> Router {
    let mut r = Router::new()
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready));
    r = match state.ingest.clone() {
        Some(ing) => r
            .route(
                "/api/v1/write",
                post(crate::ingest::write)
                    .with_state(ing.clone())
                    .layer(DefaultBodyLimit::max(MAX_WRITE_BODY)),
            )
            .route(
                "/api/v1/otlp/v1/metrics",
                post(crate::otlp::write)
                    .with_state(ing)
                    .layer(DefaultBodyLimit::max(MAX_WRITE_BODY)),
            ),
        // Prometheus' answer when the receiver is off
        None => r.route(
            "/api/v1/write",
            post(|| async {
                (
                    http::StatusCode::NOT_FOUND,
                    "remote write receiver needs to be enabled with --web.enable-remote-write-receiver\n",
                )
            }),
        ),
    };
    if let Some(sc) = state.scraping.clone() {
        r = r.merge(
            Router::new()
                .route("/api/v1/targets", get(crate::scraping::targets))
                .route(
                    "/api/v1/targets/metadata",
                    get(crate::scraping::targets_metadata),
                )
                .with_state(sc),
        );
    }
    if let Some(rules) = state.rules.clone() {
        r = r.merge(
            Router::new()
                .route("/api/v1/rules", get(crate::rules::rules_api))
                .route("/api/v1/alerts", get(crate::rules::alerts_api))
                .with_state(rules),
        );
    }
    if state.scraping.is_some() || state.rules.is_some() {
        let st = (state.scraping.clone(), state.rules.clone());
        r = r.route("/-/reload", post(reload).put(reload).with_state(st));
    }
    if let Some(q) = state.query.clone() {
        r = r.merge(query_routes(q));
    }
    unbuilt_routes(r, &["/api/v1/{*rest}"], ErrorFormat::Prometheus)
}

/// `POST /-/reload`: prometheus.yml's scrape configs, then its rules and
/// Alertmanagers. On error the running configuration stays (500 + why).
async fn reload(
    axum::extract::State((scraping, rules)): axum::extract::State<(
        Option<Scraping>,
        Option<crate::rules::Rules>,
    )>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut result = Ok(());
    if let Some(s) = &scraping {
        result = s.reload();
    }
    if let (Ok(()), Some(r)) = (&result, &rules) {
        result = r.reload().await;
    }
    match result {
        Ok(()) => (http::StatusCode::OK, "").into_response(),
        Err(e) => (
            http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
    }
}

/// Prometheus' envelope. No `features` field: Grafana reads its presence as
/// "this is Mimir".
async fn buildinfo() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "success", "data": BuildInfo::current() }))
}

async fn healthy() -> &'static str {
    "Prometheus Server is Healthy.\n"
}

/// Answered only once the listener is serving, which is when the role is
/// ready; `/ready` carries the component detail.
async fn ready() -> &'static str {
    "Prometheus Server is Ready.\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_server::testing::{get as get_path, post};

    #[tokio::test]
    async fn buildinfo_has_prometheus_envelope_without_features() {
        let a = get_path(router(MetricsApi::default()), "/api/v1/status/buildinfo").await;
        assert_eq!(a.status, 200);
        let v = a.json();
        assert_eq!(v["status"], "success");
        assert_eq!(v["data"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(v["data"].get("features").is_none());
    }

    #[tokio::test]
    async fn unbuilt_routes_answer_501_in_prometheus_shape() {
        let a = post(router(MetricsApi::default()), "/api/v1/query", "query=1").await;
        assert_eq!(a.status, 501);
        let v = a.json();
        assert_eq!(v["status"], "error");
        assert!(v["error"].as_str().unwrap().contains("/api/v1/query"));
        let a = get_path(router(MetricsApi::default()), "/-/healthy").await;
        assert_eq!(a.status, 200);
    }
}
