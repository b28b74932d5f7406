//! Version and build facts, shown by `/status/buildinfo` and `*_build_info`.

use serde::Serialize;

/// The fields Prometheus, Loki and Tempo report in their buildinfo
/// endpoints; `goVersion` carries the Rust version so clients that expect
/// the key still find it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    pub version: &'static str,
    pub revision: &'static str,
    pub branch: &'static str,
    pub build_user: &'static str,
    pub build_date: &'static str,
    pub go_version: &'static str,
}

impl BuildInfo {
    /// Facts baked in at compile time; `PHAROS_REVISION`, `PHAROS_BRANCH`
    /// and `PHAROS_BUILD_DATE` may be set by the build (CI, Dockerfile).
    pub const fn current() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            revision: match option_env!("PHAROS_REVISION") {
                Some(r) => r,
                None => "unknown",
            },
            branch: match option_env!("PHAROS_BRANCH") {
                Some(b) => b,
                None => "main",
            },
            build_user: "pharos",
            build_date: match option_env!("PHAROS_BUILD_DATE") {
                Some(d) => d,
                None => "unknown",
            },
            go_version: concat!("rust", env!("CARGO_PKG_RUST_VERSION")),
        }
    }
}
