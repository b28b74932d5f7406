//! `X-Scope-OrgID` → [`TenantId`], as an axum extractor.

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use pharos_core::error::ErrorClass;
use pharos_core::tenant::{ORG_ID_HEADER, TenantError, TenantId};

use crate::error::{ApiError, ErrorFormat};

/// Whether requests must name their tenant; inserted into every router as
/// an extension by [`crate::Server`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Tenancy {
    pub required: bool,
}

/// The tenant of the current request.
#[derive(Debug, Clone)]
pub struct Tenant(pub TenantId);

pub struct TenantRejection(TenantError);

impl IntoResponse for TenantRejection {
    fn into_response(self) -> Response {
        // Loki and Tempo answer a missing org id with 401 and a bad one with 400
        let class = match self.0 {
            TenantError::Missing => ErrorClass::Unauthorized,
            _ => ErrorClass::BadRequest,
        };
        ApiError::new(ErrorFormat::PlainText, class, self.0.to_string()).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = TenantRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let required = parts
            .extensions
            .get::<Tenancy>()
            .is_some_and(|t| t.required);
        let mut values = parts.headers.get_all(ORG_ID_HEADER).iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(TenantRejection(TenantError::Multiple));
        }
        let value = match first {
            Some(v) => Some(v.to_str().map_err(|_| {
                TenantRejection(TenantError::BadChar {
                    id: String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    ch: '?',
                })
            })?),
            None => None,
        };
        TenantId::from_header(value, required)
            .map(Tenant)
            .map_err(TenantRejection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use axum::{Extension, Router};
    use http::Request;

    fn app(required: bool) -> Router {
        Router::new()
            .route("/t", get(|Tenant(t): Tenant| async move { t.to_string() }))
            .layer(Extension(Tenancy { required }))
    }

    async fn call(app: Router, org: Option<&str>) -> (u16, String) {
        let mut req = Request::get("/t");
        if let Some(o) = org {
            req = req.header(ORG_ID_HEADER, o);
        }
        let a = crate::testing::send(app, req.body(axum::body::Body::empty()).unwrap()).await;
        (a.status.as_u16(), a.body.trim().to_string())
    }

    #[tokio::test]
    async fn extracts_tenants() {
        assert_eq!(call(app(false), None).await, (200, "anonymous".into()));
        assert_eq!(
            call(app(false), Some("team-a")).await,
            (200, "team-a".into())
        );
        assert_eq!(call(app(true), None).await, (401, "no org id".into()));
        let (s, b) = call(app(false), Some("a/b")).await;
        assert_eq!(s, 400);
        assert!(b.contains("unsupported character '/'"), "{b}");
    }
}
