//! Listeners: bind, wrap every router in the shared layers, serve HTTP/1,
//! HTTP/2 and gRPC (h2c or TLS) on one accept loop, drain on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::access::{AccessState, require_credentials};
use crate::api::{CommonState, common_routes};
use crate::config::{AuthConfig, ServerConfig, parse_listen_address};
use crate::error::ServerError;
use crate::metrics::{CounterVec, DEFAULT_BUCKETS, HistogramVec, Registry};
use crate::ready::Readiness;
use crate::shutdown::Shutdown;
use crate::tenancy::Tenancy;

/// One port and what it serves.
pub struct Listener {
    /// Shown in logs and the `listener` metric label, e.g. `metrics-server`.
    pub name: &'static str,
    pub address: String,
    pub router: Router,
    /// Readiness components `/ready` on this port waits for.
    pub components: Vec<String>,
    /// gRPC listeners skip the HTTP common routes.
    pub grpc: bool,
}

impl Listener {
    pub fn http(name: &'static str, address: impl Into<String>, router: Router) -> Self {
        Self {
            name,
            address: address.into(),
            router,
            components: vec![name.to_owned()],
            grpc: false,
        }
    }

    pub fn grpc(name: &'static str, address: impl Into<String>, router: Router) -> Self {
        Self {
            name,
            address: address.into(),
            router,
            components: Vec::new(),
            grpc: true,
        }
    }

    /// Several roles on one port (the all-in-one binary).
    pub fn with_components(mut self, components: Vec<String>) -> Self {
        self.components = components;
        self
    }
}

#[derive(Clone)]
struct RequestMetrics {
    listener: &'static str,
    requests: CounterVec,
    duration: HistogramVec,
}

pub struct Server {
    config: ServerConfig,
    tenancy: Tenancy,
    registry: Registry,
    readiness: Readiness,
    effective_config: Arc<String>,
    requests: CounterVec,
    duration: HistogramVec,
    auth_failures: CounterVec,
    bound: Vec<(Listener, TcpListener)>,
}

impl Server {
    pub fn new(
        config: &ServerConfig,
        auth: &AuthConfig,
        registry: Registry,
        readiness: Readiness,
        effective_config: String,
    ) -> Self {
        let requests = registry.counter_vec(
            "pharos_http_requests_total",
            "HTTP and gRPC requests by listener, method, route and status code.",
            &["listener", "method", "route", "status_code"],
        );
        let duration = registry.histogram_vec(
            "pharos_http_request_duration_seconds",
            "Time to answer HTTP and gRPC requests, by listener, method and route.",
            &["listener", "method", "route"],
            DEFAULT_BUCKETS,
        );
        let auth_failures = registry.counter_vec(
            "pharos_http_auth_failures_total",
            "Requests rejected for missing, malformed or wrong credentials.",
            &["listener", "reason"],
        );
        Self {
            config: config.clone(),
            tenancy: Tenancy {
                required: auth.enabled,
            },
            registry,
            readiness,
            effective_config: Arc::new(effective_config),
            requests,
            duration,
            auth_failures,
            bound: Vec::new(),
        }
    }

    /// Binds now, so a busy port fails start-up before anything is ready.
    /// Returns the bound address (useful with port 0).
    pub async fn bind(&mut self, listener: Listener) -> Result<SocketAddr, ServerError> {
        let addr = parse_listen_address(&listener.address).map_err(|e| ServerError::Bind {
            listener: listener.name.into(),
            addr: listener.address.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        })?;
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind {
                listener: listener.name.into(),
                addr: listener.address.clone(),
                source,
            })?;
        let local = tcp.local_addr()?;
        self.bound.push((listener, tcp));
        Ok(local)
    }

    /// The router a listener actually serves: its API, the common routes,
    /// and the shared layers.
    fn finish_router(&self, l: &Listener) -> Router {
        let mut router = l.router.clone();
        if !l.grpc {
            router = router.merge(common_routes(CommonState {
                registry: self.registry.clone(),
                readiness: self.readiness.clone(),
                components: Arc::new(l.components.clone()),
                effective_config: self.effective_config.clone(),
            }));
        }
        let metrics = RequestMetrics {
            listener: l.name,
            requests: self.requests.clone(),
            duration: self.duration.clone(),
        };
        let access = AccessState {
            config: Arc::new(self.config.access.clone()),
            listener: l.name,
            failures: self.auth_failures.clone(),
        };
        router
            .route_layer(middleware::from_fn_with_state(metrics, observe))
            .layer(Extension(self.tenancy))
            .layer(middleware::from_fn_with_state(access, require_credentials))
    }

    /// Serves every bound listener until `shutdown` triggers, then drains
    /// in-flight requests for at most the configured grace period.
    pub async fn run(mut self, shutdown: Shutdown) -> Result<(), ServerError> {
        let tls = match &self.config.tls {
            Some(t) => Some(crate::tls::acceptor(t)?),
            None => None,
        };
        let grace = self.config.graceful_shutdown_timeout.as_std();
        let bound = std::mem::take(&mut self.bound);
        let mut tasks = Vec::new();
        for (l, tcp) in bound {
            let router = self.finish_router(&l);
            tracing::info!(listener = l.name, address = %tcp.local_addr()?, tls = tls.is_some(), grpc = l.grpc, "listening");
            tasks.push(tokio::spawn(accept_loop(
                l.name,
                tcp,
                router,
                tls.clone(),
                shutdown.clone(),
                grace,
            )));
        }
        shutdown.wait().await;
        self.readiness.set_stopping();
        for t in tasks {
            let _ = t.await;
        }
        Ok(())
    }
}

async fn accept_loop(
    name: &'static str,
    tcp: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    shutdown: Shutdown,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, peer) = tokio::select! {
            res = tcp.accept() => match res {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        match tls.clone() {
            None => {
                let conn = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let fut = watcher.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = fut.await {
                        tracing::debug!(%peer, error = %e, "connection ended with error");
                    }
                });
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                            .await;
                    let stream = match handshake {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "tls handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "tls handshake timed out");
                            return;
                        }
                    };
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, error = %e, "connection ended with error");
                    }
                });
            }
        }
    }
    drop(tcp);
    tokio::select! {
        _ = graceful.shutdown() => tracing::debug!(listener = name, "drained"),
        _ = tokio::time::sleep(grace) => {
            tracing::warn!(listener = name, grace_secs = grace.as_secs_f64(), "grace period over, closing remaining connections");
        }
    }
}

async fn observe(State(m): State<RequestMetrics>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "other".into());
    let resp = next.run(req).await;
    let elapsed = start.elapsed();
    let status = resp.status();
    m.requests
        .with(&[m.listener, &method, &route, status.as_str()])
        .inc();
    m.duration
        .with(&[m.listener, &method, &route])
        .observe(elapsed.as_secs_f64());
    tracing::debug!(listener = m.listener, %method, %route, status = status.as_u16(), duration_ms = elapsed.as_secs_f64() * 1e3, "request");
    resp
}
