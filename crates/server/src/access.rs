//! Credentials checked on every listener, HTTP and gRPC alike.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::{HeaderValue, StatusCode, header};

use crate::config::AccessConfig;
use crate::metrics::CounterVec;

#[derive(Clone)]
pub struct AccessState {
    pub config: Arc<AccessConfig>,
    pub listener: &'static str,
    pub failures: CounterVec,
}

/// Middleware: 401 unless the request carries an accepted credential.
pub async fn require_credentials(
    State(st): State<AccessState>,
    req: Request,
    next: Next,
) -> Response {
    if !st.config.is_enabled() || (st.config.unauthenticated_ready && req.uri().path() == "/ready")
    {
        return next.run(req).await;
    }
    match check(&st.config, req.headers().get(header::AUTHORIZATION)) {
        Ok(()) => next.run(req).await,
        Err(reason) => {
            st.failures.with(&[st.listener, reason]).inc();
            tracing::debug!(listener = st.listener, reason, path = %req.uri().path(), "request rejected");
            unauthorized(&req, reason)
        }
    }
}

fn check(cfg: &AccessConfig, auth: Option<&HeaderValue>) -> Result<(), &'static str> {
    let Some(auth) = auth.and_then(|v| v.to_str().ok()) else {
        return Err("missing");
    };
    let (scheme, cred) = auth.split_once(' ').unwrap_or((auth, ""));
    let cred = cred.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return match &cfg.bearer_token {
            Some(t) if ct_eq(t.expose().as_bytes(), cred.as_bytes()) => Ok(()),
            _ => Err("wrong"),
        };
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let Some(basic) = &cfg.basic_auth else {
            return Err("wrong");
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(cred)
            .map_err(|_| "malformed")?;
        let decoded = String::from_utf8(decoded).map_err(|_| "malformed")?;
        let (user, pass) = decoded.split_once(':').ok_or("malformed")?;
        // evaluate both comparisons so timing does not reveal which failed
        let user_ok = ct_eq(user.as_bytes(), basic.username.as_bytes());
        let pass_ok = ct_eq(pass.as_bytes(), basic.password.expose().as_bytes());
        return if user_ok & pass_ok {
            Ok(())
        } else {
            Err("wrong")
        };
    }
    Err("malformed")
}

/// Constant-time comparison for equal lengths; lengths may leak, contents not.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized(req: &Request, reason: &str) -> Response {
    let is_grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"));
    if is_grpc {
        // gRPC clients read the status from headers; 16 = UNAUTHENTICATED
        let mut resp = Response::new(Body::empty());
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        h.insert("grpc-status", HeaderValue::from_static("16"));
        h.insert(
            "grpc-message",
            HeaderValue::from_static("missing or wrong credentials"),
        );
        return resp;
    }
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        format!("unauthorized: {reason} credentials\n"),
    )
        .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"pharos\""),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BasicAuthConfig;

    fn cfg() -> AccessConfig {
        AccessConfig {
            basic_auth: Some(BasicAuthConfig {
                username: "admin".into(),
                password: serde_yaml::from_str("\"s3cret\"").unwrap(),
            }),
            bearer_token: Some(serde_yaml::from_str("\"tok\"").unwrap()),
            unauthenticated_ready: true,
        }
    }

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    fn guarded(cfg: AccessConfig) -> axum::Router {
        let state = AccessState {
            config: Arc::new(cfg),
            listener: "grpc",
            failures: crate::metrics::Registry::new().counter_vec(
                "f_total",
                "f",
                &["listener", "reason"],
            ),
        };
        axum::Router::new()
            .route("/ready", axum::routing::get(|| async { "ready" }))
            .route(
                "/grpc.health.v1.Health/Check",
                axum::routing::post(|| async { "ok" }),
            )
            .layer(axum::middleware::from_fn_with_state(
                state,
                require_credentials,
            ))
    }

    #[tokio::test]
    async fn grpc_callers_get_unauthenticated_status() {
        let req = http::Request::post("/grpc.health.v1.Health/Check")
            .header(header::CONTENT_TYPE, "application/grpc")
            .body(Body::empty())
            .unwrap();
        let a = crate::testing::send(guarded(cfg()), req).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.headers["grpc-status"], "16");
        let req = http::Request::post("/grpc.health.v1.Health/Check")
            .header(header::CONTENT_TYPE, "application/grpc")
            .header(header::AUTHORIZATION, "Bearer tok")
            .body(Body::empty())
            .unwrap();
        let a = crate::testing::send(guarded(cfg()), req).await;
        assert_eq!((a.status.as_u16(), a.body.as_str()), (200, "ok"));
        assert!(!a.headers.contains_key("grpc-status"));
    }

    #[tokio::test]
    async fn ready_can_stay_open() {
        assert_eq!(
            crate::testing::get(guarded(cfg()), "/ready").await.status,
            200
        );
        let closed = AccessConfig {
            unauthenticated_ready: false,
            ..cfg()
        };
        assert_eq!(
            crate::testing::get(guarded(closed), "/ready").await.status,
            401
        );
    }

    #[test]
    fn checks_credentials() {
        let c = cfg();
        let good = base64::engine::general_purpose::STANDARD.encode("admin:s3cret");
        let bad = base64::engine::general_purpose::STANDARD.encode("admin:nope");
        assert_eq!(check(&c, Some(&hv(&format!("Basic {good}")))), Ok(()));
        assert_eq!(check(&c, Some(&hv(&format!("Basic {bad}")))), Err("wrong"));
        assert_eq!(check(&c, Some(&hv("Bearer tok"))), Ok(()));
        assert_eq!(check(&c, Some(&hv("bearer tok"))), Ok(()));
        assert_eq!(check(&c, Some(&hv("Bearer tok2"))), Err("wrong"));
        assert_eq!(check(&c, Some(&hv("Basic !!!"))), Err("malformed"));
        assert_eq!(check(&c, None), Err("missing"));
    }
}
