//! Types shared by every Pharos crate: the error classes and their one
//! mapping to HTTP status and gRPC code, tenant ids, and build information.

pub mod build;
pub mod cache;
pub mod error;
pub mod limits;
pub mod parallel;
pub mod tenant;
pub mod time;

pub use build::BuildInfo;
pub use error::{ErrorClass, GrpcCode};
pub use limits::{RateLimited, RateLimiter};
pub use tenant::{TenantError, TenantId};
