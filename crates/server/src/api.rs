//! Routes every HTTP listener serves, whatever its role.

use std::sync::Arc;

use axum::extract::{OriginalUri, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use http::{HeaderValue, StatusCode, header};
use pharos_core::BuildInfo;
use pharos_core::error::ErrorClass;

use crate::error::{ApiError, ErrorFormat};
use crate::metrics::Registry;
use crate::ready::Readiness;
use crate::tenancy::Tenant;

#[derive(Clone)]
pub struct CommonState {
    pub registry: Registry,
    pub readiness: Readiness,
    /// Components this listener's `/ready` waits for.
    pub components: Arc<Vec<String>>,
    /// The effective configuration as YAML, secrets already masked.
    pub effective_config: Arc<String>,
}

/// `/ready`, `/metrics`, `/status/buildinfo` and `/config`.
pub fn common_routes(state: CommonState) -> Router {
    Router::new()
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/status/buildinfo", get(buildinfo))
        .route("/config", get(config))
        .with_state(state)
}

async fn ready(State(st): State<CommonState>) -> Response {
    match st.readiness.check(&st.components) {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

async fn metrics(State(st): State<CommonState>) -> Response {
    let mut resp = st.registry.render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

async fn buildinfo() -> Json<BuildInfo> {
    Json(BuildInfo::current())
}

async fn config(State(st): State<CommonState>) -> Response {
    let mut resp = st.effective_config.as_str().to_owned().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// A 501 for an upstream route whose engine is not built yet, in the body
/// shape that API's clients parse.
pub fn not_implemented(format: ErrorFormat, what: &str) -> ApiError {
    ApiError::new(
        format,
        ErrorClass::NotImplemented,
        format!("{what} is not implemented yet in pharos (see docs/compatibility.md)"),
    )
}

/// Adds `paths` (axum syntax, wildcards allowed) to `router`, each
/// answering 501 naming the requested path, for every method. The tenant
/// is resolved first, as the real handlers will, so a bad or missing
/// `X-Scope-OrgID` already gets its 400/401.
pub fn unbuilt_routes<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    paths: &[&str],
    format: ErrorFormat,
) -> Router<S> {
    paths.iter().fold(router, |r, p| {
        r.route(
            p,
            any(
                move |_tenant: Tenant, OriginalUri(uri): OriginalUri| async move {
                    not_implemented(format, uri.path())
                },
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> (CommonState, crate::ready::ReadyHandle) {
        let readiness = Readiness::new();
        let h = readiness.register("alert-router");
        let registry = Registry::new();
        registry.register_process_metrics();
        (
            CommonState {
                registry,
                readiness,
                components: Arc::new(vec!["alert-router".into()]),
                effective_config: Arc::new("server:\n  x: <secret>\n".into()),
            },
            h,
        )
    }

    async fn get_path(app: Router, path: &str) -> (u16, String) {
        let a = crate::testing::get(app, path).await;
        (a.status.as_u16(), a.body)
    }

    #[tokio::test]
    async fn ready_follows_components() {
        let (st, h) = state();
        let app = common_routes(st);
        assert_eq!(get_path(app.clone(), "/ready").await.0, 503);
        h.set_ready(true);
        assert_eq!(
            get_path(app.clone(), "/ready").await,
            (200, "ready\n".into())
        );
        let (s, body) = get_path(app.clone(), "/metrics").await;
        assert_eq!(s, 200);
        assert!(body.contains("pharos_build_info{"));
        let (s, body) = get_path(app.clone(), "/status/buildinfo").await;
        assert_eq!(s, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        assert!(v.get("goVersion").is_some());
        assert_eq!(get_path(app, "/config").await.1, "server:\n  x: <secret>\n");
    }
}
