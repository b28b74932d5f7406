//! Helpers for router tests with `oneshot`, shared by every role crate.

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A router's answer, body decoded as UTF-8 (lossy).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

pub async fn send(router: Router, req: Request<Body>) -> Answer {
    let resp = router.oneshot(req).await.expect("routers are infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub async fn get(router: Router, path: &str) -> Answer {
    send(
        router,
        Request::get(path)
            .body(Body::empty())
            .expect("valid request"),
    )
    .await
}

pub async fn post(router: Router, path: &str, body: impl Into<Body>) -> Answer {
    send(
        router,
        Request::post(path)
            .body(body.into())
            .expect("valid request"),
    )
    .await
}
