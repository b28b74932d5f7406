//! Sections shared by several roles.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::validate::{Validate, Validator};

/// `cluster`: how Pharos instances find each other and share work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Address (`ip:port`) the gossip protocol listens on for other members.
    pub listen_address: String,
    /// Address (`host:port`) other members use to reach this one. Set it when
    /// `listen_address` is a wildcard or not reachable as is (NAT, containers).
    pub advertise_address: Option<String>,
    /// Members to join at start: `host:port` addresses or DNS names (a name
    /// without a port uses the port of `listen_address`). Empty: a single node.
    pub join: Vec<String>,
    /// How many members hold each piece of data; 1 keeps one copy.
    pub replication_factor: u32,
    /// How often members exchange membership state.
    pub gossip_interval: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            listen_address: "0.0.0.0:7946".to_owned(),
            advertise_address: None,
            join: Vec::new(),
            replication_factor: 1,
            gossip_interval: Duration::from_secs(1),
        }
    }
}

impl Validate for ClusterConfig {
    fn validate(&self, v: &mut Validator) {
        v.check(
            self.listen_address.parse::<SocketAddr>().is_ok(),
            "listen_address",
            format!(
                "\"{}\" is not an ip:port address: write one like 0.0.0.0:7946",
                self.listen_address
            ),
        );
        if let Some(advertise) = &self.advertise_address {
            v.check(
                has_host_and_port(advertise),
                "advertise_address",
                format!("\"{advertise}\" is not a host:port address: write one like 10.0.0.5:7946"),
            );
        }
        for (i, member) in self.join.iter().enumerate() {
            let ok = !member.is_empty()
                && !member.contains(char::is_whitespace)
                && (!member.contains(':') || has_host_and_port(member));
            v.check(
                ok,
                &format!("join[{i}]"),
                format!("\"{member}\" is not a member address: write host:port or a DNS name"),
            );
        }
        v.check(
            self.replication_factor >= 1,
            "replication_factor",
            "must be at least 1 (1 keeps a single copy)",
        );
        v.check(
            !self.gossip_interval.is_zero(),
            "gossip_interval",
            "must be above 0, like 1s",
        );
    }
}

fn has_host_and_port(address: &str) -> bool {
    address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

/// `limits`: per-tenant defaults applied by every signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most series a tenant may have in memory at once; 0 means no limit.
    pub max_active_series: u64,
    /// Most labels one series may have, its name included.
    pub max_label_names_per_series: u32,
    /// Longest label name accepted, in bytes.
    pub max_label_name_length: u32,
    /// Longest label value accepted, in bytes.
    pub max_label_value_length: u32,
    /// Samples (or log lines, or spans) per second a tenant may ingest, on average.
    pub ingestion_rate: f64,
    /// Samples a tenant may send at once above `ingestion_rate`; should be at
    /// least the largest write request.
    pub ingestion_burst: f64,
    /// Most samples one query may load into memory; 0 means no limit.
    pub max_query_samples: u64,
    /// Longest time range one query may cover; 0 means no limit.
    pub max_query_length: Duration,
    /// How long a query may run before it is cancelled.
    pub query_timeout: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_active_series: 1_000_000,
            max_label_names_per_series: 30,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            ingestion_rate: 100_000.0,
            ingestion_burst: 200_000.0,
            max_query_samples: 50_000_000,
            max_query_length: Duration::ZERO,
            query_timeout: Duration::from_secs(120),
        }
    }
}

impl Validate for LimitsConfig {
    fn validate(&self, v: &mut Validator) {
        let positive = |x: f64| x.is_finite() && x > 0.0;
        v.check(
            positive(self.ingestion_rate),
            "ingestion_rate",
            format!("must be a number above 0, got {}", self.ingestion_rate),
        );
        v.check(
            positive(self.ingestion_burst),
            "ingestion_burst",
            format!("must be a number above 0, got {}", self.ingestion_burst),
        );
        for (key, value) in [
            (
                "max_label_names_per_series",
                self.max_label_names_per_series,
            ),
            ("max_label_name_length", self.max_label_name_length),
            ("max_label_value_length", self.max_label_value_length),
        ] {
            v.check(value >= 1, key, "must be at least 1");
        }
        v.check(
            !self.query_timeout.is_zero(),
            "query_timeout",
            "must be above 0, like 2m",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems<T: Validate>(value: &T) -> Vec<(String, String)> {
        let mut v = Validator::new();
        value.validate(&mut v);
        v.into_errors()
    }

    #[test]
    fn cluster_defaults() {
        let c: ClusterConfig = serde_yaml::from_str("{}").unwrap();
        assert_eq!(c, ClusterConfig::default());
        assert_eq!(c.listen_address, "0.0.0.0:7946");
        assert_eq!(c.replication_factor, 1);
        assert_eq!(c.gossip_interval, Duration::from_secs(1));
        assert!(c.join.is_empty() && c.advertise_address.is_none());
        assert!(problems(&c).is_empty());
    }

    #[test]
    fn cluster_parses_and_validates() {
        let c: ClusterConfig = serde_yaml::from_str(
            "advertise_address: node-1.pharos:7946\njoin: [pharos-0.pharos, '10.0.0.2:7946', '[::1]:7946']\nreplication_factor: 3\ngossip_interval: 200ms\n",
        )
        .unwrap();
        assert_eq!(c.replication_factor, 3);
        assert_eq!(c.gossip_interval, Duration::from_millis(200));
        assert_eq!(c.join.len(), 3);
        assert!(problems(&c).is_empty(), "{:?}", problems(&c));
    }

    #[test]
    fn cluster_rejects_bad_values() {
        let c = ClusterConfig {
            listen_address: "localhost".into(),
            advertise_address: Some("10.0.0.5".into()),
            join: vec!["a:b".into(), String::new()],
            replication_factor: 0,
            gossip_interval: Duration::ZERO,
        };
        let keys: Vec<String> = problems(&c).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "listen_address",
                "advertise_address",
                "join[0]",
                "join[1]",
                "replication_factor",
                "gossip_interval"
            ]
        );
        assert_eq!(
            problems(&c)[0].1,
            "\"localhost\" is not an ip:port address: write one like 0.0.0.0:7946"
        );
    }

    #[test]
    fn cluster_rejects_unknown_keys() {
        let err = serde_yaml::from_str::<ClusterConfig>("joins: []\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `joins`"), "{err}");
    }

    #[test]
    fn limits_defaults() {
        let l: LimitsConfig = serde_yaml::from_str("{}").unwrap();
        assert_eq!(l, LimitsConfig::default());
        assert_eq!(l.max_active_series, 1_000_000);
        assert_eq!(l.max_label_names_per_series, 30);
        assert_eq!(l.max_label_name_length, 1024);
        assert_eq!(l.max_label_value_length, 2048);
        assert_eq!(l.ingestion_rate, 100_000.0);
        assert_eq!(l.ingestion_burst, 200_000.0);
        assert_eq!(l.max_query_samples, 50_000_000);
        assert!(l.max_query_length.is_zero());
        assert_eq!(l.query_timeout, Duration::from_secs(120));
        assert!(problems(&l).is_empty());
    }

    #[test]
    fn limits_reject_bad_values() {
        let l: LimitsConfig = serde_yaml::from_str(
            "ingestion_rate: 0\ningestion_burst: .nan\nmax_label_name_length: 0\nquery_timeout: 0s\nmax_query_length: 30d\n",
        )
        .unwrap();
        assert_eq!(l.max_query_length, Duration::from_secs(30 * 86_400));
        let keys: Vec<String> = problems(&l).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "ingestion_rate",
                "ingestion_burst",
                "max_label_name_length",
                "query_timeout"
            ]
        );
        assert_eq!(problems(&l)[0].1, "must be a number above 0, got 0");
    }

    #[test]
    fn sections_serialize_for_the_config_endpoint() {
        let yaml = serde_yaml::to_string(&LimitsConfig::default()).unwrap();
        assert!(yaml.contains("query_timeout: 2m\n"), "{yaml}");
        assert!(yaml.contains("max_query_length: 0s\n"), "{yaml}");
        let back: LimitsConfig = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(back, LimitsConfig::default());
    }
}
