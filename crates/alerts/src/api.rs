//! The Alertmanager API surface.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{any, get};
use axum::{Json, Router};
use pharos_server::{ErrorFormat, unbuilt_routes};

#[derive(Clone, Default)]
pub struct AlertsApi {}

pub fn router(state: AlertsApi) -> Router {
    let r = Router::new()
        .route("/-/healthy", get(|| async { "OK" }))
        .route("/-/ready", get(|| async { "OK" }))
        .route("/api/v1/{*rest}", any(v1_gone));
    unbuilt_routes(
        r,
        &["/api/v2/{*rest}", "/-/reload"],
        ErrorFormat::JsonString,
    )
    .with_state(state)
}

/// Alertmanager removed API v1 in 0.27 and answers it with 410 and this
/// message; amtool and Grafana use v2.
async fn v1_gone() -> impl IntoResponse {
    (
        StatusCode::GONE,
        Json(
            "The Alertmanager v1 API was deprecated in version 0.16.0 and is removed as of version 0.27.0 - please use the equivalent route in the v2 API",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_server::testing::{get as get_path, post};

    #[tokio::test]
    async fn v1_is_gone_and_v2_not_built_yet() {
        let a = get_path(router(AlertsApi::default()), "/api/v1/alerts").await;
        assert_eq!(a.status, 410);
        assert!(a.json().as_str().unwrap().contains("v2 API"));
        let b = post(router(AlertsApi::default()), "/api/v2/alerts", "[]").await;
        assert_eq!(b.status, 501);
        assert!(b.json().as_str().unwrap().contains("/api/v2/alerts"));
        assert_eq!(
            get_path(router(AlertsApi::default()), "/-/healthy")
                .await
                .status,
            200
        );
    }
}
