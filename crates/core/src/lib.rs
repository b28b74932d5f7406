//! Types shared by every Pharos crate: the error classes and their one
//! mapping to HTTP status and gRPC code, tenant ids, and build information.

pub mod build;
pub mod error;
pub mod tenant;

pub use build::BuildInfo;
pub use error::{ErrorClass, GrpcCode};
pub use tenant::{TenantError, TenantId};
