//! The roles, and which port each one's HTTP API answers on.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    MetricsServer,
    LogIngester,
    LogQuerier,
    TraceDistributor,
    TraceIngester,
    TraceQuerier,
    TraceCompactor,
    AlertRouter,
}

/// The port family a role's HTTP API lives on; roles of one family share a
/// listener in the all-in-one binary, as upstream's single binaries do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    Metrics,
    Logs,
    Traces,
    Alerts,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::MetricsServer,
        Role::LogIngester,
        Role::LogQuerier,
        Role::TraceDistributor,
        Role::TraceIngester,
        Role::TraceQuerier,
        Role::TraceCompactor,
        Role::AlertRouter,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::MetricsServer => pharos_metrics::ROLE,
            Role::LogIngester => pharos_logs::INGESTER,
            Role::LogQuerier => pharos_logs::QUERIER,
            Role::TraceDistributor => pharos_traces::DISTRIBUTOR,
            Role::TraceIngester => pharos_traces::INGESTER,
            Role::TraceQuerier => pharos_traces::QUERIER,
            Role::TraceCompactor => pharos_traces::COMPACTOR,
            Role::AlertRouter => pharos_alerts::ROLE,
        }
    }

    pub fn family(self) -> Family {
        match self {
            Role::MetricsServer => Family::Metrics,
            Role::LogIngester | Role::LogQuerier => Family::Logs,
            Role::TraceDistributor
            | Role::TraceIngester
            | Role::TraceQuerier
            | Role::TraceCompactor => Family::Traces,
            Role::AlertRouter => Family::Alerts,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
                format!(
                    "unknown target {s:?}: use all, read, write or a list of {}",
                    names.join(", ")
                )
            })
    }
}

/// Parses `-target`: `all`, Loki-style `read`/`write`, or a comma list.
pub fn parse_targets(s: &str) -> Result<Vec<Role>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "all" => out.extend(Role::ALL),
            "write" => out.extend([
                Role::MetricsServer,
                Role::LogIngester,
                Role::TraceDistributor,
                Role::TraceIngester,
            ]),
            "read" => out.extend([Role::LogQuerier, Role::TraceQuerier]),
            "backend" => out.extend([Role::TraceCompactor, Role::AlertRouter]),
            other => out.push(other.parse()?),
        }
    }
    out.sort();
    out.dedup();
    if out.is_empty() {
        return Err("empty target: name at least one role or all".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(parse_targets("all").unwrap().len(), 8);
        assert_eq!(
            parse_targets("log-querier, alert-router").unwrap(),
            vec![Role::LogQuerier, Role::AlertRouter]
        );
        assert!(
            parse_targets("ingester")
                .unwrap_err()
                .contains("unknown target")
        );
        assert!(parse_targets("").is_err());
    }
}
