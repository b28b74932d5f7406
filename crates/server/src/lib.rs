//! Server scaffolding shared by every Pharos role: listeners (HTTP and gRPC,
//! optional TLS), access control, tenancy, readiness, self-metrics, the
//! common routes and graceful shutdown.

pub mod access;
pub mod api;
pub mod config;
pub mod error;
pub mod metrics;
pub mod ready;
pub mod serve;
pub mod shutdown;
pub mod tenancy;
pub mod testing;
pub mod tls;

pub use api::{CommonState, common_routes, not_implemented, unbuilt_routes};
pub use config::{AccessConfig, AuthConfig, BasicAuthConfig, ServerConfig, TlsConfig};
pub use error::{ApiError, ErrorFormat, ServerError};
pub use metrics::{Counter, CounterVec, Gauge, GaugeVec, HistogramVec, Registry};
pub use ready::{Readiness, ReadyHandle};
pub use serve::{Listener, Server};
pub use shutdown::Shutdown;
pub use tenancy::{Tenancy, Tenant};
