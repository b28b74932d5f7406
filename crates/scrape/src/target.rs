//! Turning discovered target groups into scrape targets, with Prometheus'
//! label rules: `job`, `__scheme__`, `__metrics_path__`,
//! `__scrape_interval__`, `__scrape_timeout__` and `__param_*` are filled in
//! when discovery left them unset, `relabel_configs` run, `__meta_*` labels
//! are dropped, `instance` defaults to `__address__`, and labels starting
//! with `__` stay internal to the target.

use std::collections::BTreeMap;
use std::str::FromStr;

use pharos_config::Duration;
use pharos_model::Labels;

use crate::config::ScrapeConfig;
use crate::error::ScrapeError;
use crate::relabel;

pub const ADDRESS_LABEL: &str = "__address__";
pub const SCHEME_LABEL: &str = "__scheme__";
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub const PARAM_PREFIX: &str = "__param_";
pub const META_PREFIX: &str = "__meta_";
pub const RESERVED_PREFIX: &str = "__";
pub const JOB_LABEL: &str = "job";
pub const INSTANCE_LABEL: &str = "instance";

/// What one discovery source produced: targets (each at least
/// `__address__`) and labels shared by all of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetGroup {
    /// Identifies the group within its provider (file name and index).
    pub source: String,
    pub targets: Vec<Labels>,
    pub labels: Labels,
}

/// A target that survived relabeling.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// All labels after relabeling, `__`-prefixed ones included.
    pub labels: Labels,
    /// Labels before relabeling, as `/api/v1/targets` shows them.
    pub discovered_labels: Labels,
    pub scrape_pool: String,
    pub interval: Duration,
    pub timeout: Duration,
    params: BTreeMap<String, Vec<String>>,
}

/// A target relabeling dropped; kept for `/api/v1/targets`.
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedTarget {
    pub discovered_labels: Labels,
    pub scrape_pool: String,
}

impl Target {
    /// The labels attached to every scraped series: those without the
    /// reserved `__` prefix.
    pub fn public_labels(&self) -> Labels {
        Labels::from_pairs(
            self.labels
                .iter()
                .filter(|l| !l.name.starts_with(RESERVED_PREFIX))
                .map(|l| (l.name.clone(), l.value.clone())),
        )
    }

    /// The URL scraped: `__scheme__://__address____metrics_path__?params`,
    /// where `__param_<name>` labels override the job's first `params` value.
    pub fn url(&self) -> String {
        let mut params = self.params.clone();
        for l in self.labels.iter() {
            if let Some(name) = l.name.strip_prefix(PARAM_PREFIX) {
                let values = params.entry(name.to_owned()).or_default();
                match values.first_mut() {
                    Some(first) => first.clone_from(&l.value),
                    None => values.push(l.value.clone()),
                }
            }
        }
        let path = self.labels.get(METRICS_PATH_LABEL).unwrap_or("");
        // Go's URL printing adds the slash a relative path lacks.
        let slash = if path.starts_with('/') { "" } else { "/" };
        let mut url = format!(
            "{}://{}{slash}{path}",
            self.labels.get(SCHEME_LABEL).unwrap_or("http"),
            self.labels.get(ADDRESS_LABEL).unwrap_or(""),
        );
        let mut first = true;
        for (name, values) in &params {
            for value in values {
                url.push(if first { '?' } else { '&' });
                first = false;
                url.push_str(&query_escape(name));
                url.push('=');
                url.push_str(&query_escape(value));
            }
        }
        url
    }

    /// Identity within a pool: labels and URL, as Prometheus dedups by.
    pub fn hash(&self) -> u64 {
        let mut h = self.labels.stable_hash();
        for b in self.url().bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }

    /// The `instance` label.
    pub fn instance(&self) -> &str {
        self.labels.get(INSTANCE_LABEL).unwrap_or("")
    }
}

/// Go's `url.QueryEscape`: unreserved bytes stay, space is `+`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The outcome of one discovered label set.
#[derive(Debug, Clone, PartialEq)]
pub enum Populated {
    Active(Target),
    Dropped(DroppedTarget),
}

/// Applies the job's defaults and relabeling to one discovered label set.
pub fn populate(discovered: &Labels, cfg: &ScrapeConfig) -> Result<Populated, ScrapeError> {
    let mut lb = discovered.clone();
    let defaults = [
        (JOB_LABEL, cfg.job_name.clone()),
        (SCRAPE_INTERVAL_LABEL, cfg.interval().to_string()),
        (SCRAPE_TIMEOUT_LABEL, cfg.timeout().to_string()),
        (METRICS_PATH_LABEL, cfg.metrics_path.clone()),
        (SCHEME_LABEL, cfg.scheme.clone()),
    ];
    for (name, value) in defaults {
        if discovered.get(name).unwrap_or("").is_empty() {
            lb.set(name, &value);
        }
    }
    for (name, values) in &cfg.params {
        if let Some(first) = values.first() {
            lb.set(&format!("{PARAM_PREFIX}{name}"), first);
        }
    }
    let pre = lb;
    let Some(mut labels) = relabel::process(&pre, &cfg.relabel_configs) else {
        return Ok(Populated::Dropped(DroppedTarget {
            discovered_labels: pre,
            scrape_pool: cfg.job_name.clone(),
        }));
    };
    let Some(address) = labels.get(ADDRESS_LABEL).map(str::to_owned) else {
        return Err(ScrapeError::InvalidTarget("no address".into()));
    };
    // Prometheus 2.x adds the scheme's default port when none is given, so
    // `instance` reads `host:80` as it does upstream.
    let default_port = match labels.get(SCHEME_LABEL) {
        Some("http") => "80",
        Some("https") => "443",
        other => {
            return Err(ScrapeError::InvalidTarget(format!(
                "invalid scheme: \"{}\"",
                other.unwrap_or("")
            )));
        }
    };
    let address = if has_port(&address) {
        address
    } else {
        let with_port = format!("{address}:{default_port}");
        labels.set(ADDRESS_LABEL, &with_port);
        with_port
    };
    if address.contains('/') {
        return Err(ScrapeError::InvalidTarget(format!(
            "\"{address}\" is not a valid hostname"
        )));
    }
    let interval = parse_duration_label(&labels, SCRAPE_INTERVAL_LABEL, "interval")?;
    let timeout = parse_duration_label(&labels, SCRAPE_TIMEOUT_LABEL, "timeout")?;
    if timeout > interval {
        return Err(ScrapeError::InvalidTarget(format!(
            "scrape timeout cannot be greater than scrape interval (\"{timeout}\" > \"{interval}\")"
        )));
    }
    let meta: Vec<String> = labels
        .iter()
        .filter(|l| l.name.starts_with(META_PREFIX))
        .map(|l| l.name.clone())
        .collect();
    for name in meta {
        labels.remove(&name);
    }
    if labels.get(INSTANCE_LABEL).is_none() {
        labels.set(INSTANCE_LABEL, &address);
    }
    Ok(Populated::Active(Target {
        labels,
        discovered_labels: pre,
        scrape_pool: cfg.job_name.clone(),
        interval,
        timeout,
        params: cfg.params.clone(),
    }))
}

fn parse_duration_label(labels: &Labels, name: &str, what: &str) -> Result<Duration, ScrapeError> {
    let text = labels.get(name).unwrap_or("");
    let d = Duration::from_str(text)
        .map_err(|e| ScrapeError::InvalidTarget(format!("error parsing scrape {what}: {e}")))?;
    if d.is_zero() {
        return Err(ScrapeError::InvalidTarget(format!(
            "scrape {what} cannot be 0"
        )));
    }
    Ok(d)
}

/// Whether `host:port` names a port (IPv6 literals are bracketed).
fn has_port(address: &str) -> bool {
    if let Some(rest) = address.strip_prefix('[') {
        return rest
            .split_once(']')
            .is_some_and(|(_, p)| p.starts_with(':'));
    }
    address.matches(':').count() == 1
}

/// All targets of one group; errors are per target and do not stop the rest.
pub fn targets_from_group(
    group: &TargetGroup,
    cfg: &ScrapeConfig,
) -> (Vec<Target>, Vec<DroppedTarget>, Vec<ScrapeError>) {
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    let mut errors = Vec::new();
    for target in &group.targets {
        // Target labels win over the group's.
        let mut merged = group.labels.clone();
        for l in target.iter() {
            merged.set(&l.name, &l.value);
        }
        match populate(&merged, cfg) {
            Ok(Populated::Active(t)) => active.push(t),
            Ok(Populated::Dropped(d)) => dropped.push(d),
            Err(e) => errors.push(e),
        }
    }
    (active, dropped, errors)
}

/// The groups of a job's `static_configs`.
pub fn static_groups(cfg: &ScrapeConfig) -> Vec<TargetGroup> {
    cfg.static_configs
        .iter()
        .enumerate()
        .map(|(i, sc)| TargetGroup {
            source: i.to_string(),
            targets: sc
                .targets
                .iter()
                .map(|t| Labels::from_pairs([(ADDRESS_LABEL, t.as_str())]))
                .collect(),
            labels: Labels::from_pairs(sc.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PrometheusConfig;

    fn job(yaml: &str) -> ScrapeConfig {
        PrometheusConfig::parse(yaml, "t.yml")
            .unwrap()
            .scrape_configs
            .remove(0)
    }

    fn active(p: Populated) -> Target {
        match p {
            Populated::Active(t) => t,
            Populated::Dropped(d) => panic!("dropped: {d:?}"),
        }
    }

    #[test]
    fn defaults_and_instance() {
        let cfg = job(
            "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['a:9100', 'b']\n        labels: {env: prod}\n",
        );
        let groups = static_groups(&cfg);
        let (targets, dropped, errors) = targets_from_group(&groups[0], &cfg);
        assert!(dropped.is_empty() && errors.is_empty());
        let a = &targets[0];
        assert_eq!(
            a.public_labels(),
            Labels::from_pairs([("env", "prod"), ("instance", "a:9100"), ("job", "node")])
        );
        assert_eq!(a.labels.get(SCRAPE_INTERVAL_LABEL), Some("15s"));
        assert_eq!(a.labels.get(SCRAPE_TIMEOUT_LABEL), Some("10s"));
        assert_eq!(a.url(), "http://a:9100/metrics");
        assert_eq!(a.discovered_labels.get(ADDRESS_LABEL), Some("a:9100"));
        // The scheme's default port is added, as in Prometheus 2.x.
        assert_eq!(targets[1].instance(), "b:80");
    }

    #[test]
    fn blackbox_style_relabeling_and_params() {
        let cfg = job(r#"scrape_configs:
  - job_name: blackbox
    metrics_path: /probe
    params:
      module: [http_2xx]
    static_configs:
      - targets: ['https://example.com/a b']
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:9115
"#);
        let (targets, _, errors) = targets_from_group(&static_groups(&cfg)[0], &cfg);
        assert!(errors.is_empty(), "{errors:?}");
        let t = &targets[0];
        assert_eq!(t.instance(), "https://example.com/a b");
        assert_eq!(
            t.url(),
            "http://127.0.0.1:9115/probe?module=http_2xx&target=https%3A%2F%2Fexample.com%2Fa+b"
        );
    }

    #[test]
    fn meta_labels_dropped_and_relabel_drop_reported() {
        let cfg = job(
            "scrape_configs:\n  - job_name: j\n    relabel_configs:\n      - source_labels: [__meta_x]\n        regex: skip\n        action: drop\n      - source_labels: [__meta_x]\n        target_label: x\n",
        );
        let keep =
            Labels::from_pairs([("__address__", "h:1"), ("__meta_x", "v"), ("__tmp_y", "t")]);
        let t = active(populate(&keep, &cfg).unwrap());
        assert_eq!(t.labels.get("__meta_x"), None);
        assert_eq!(t.labels.get("x"), Some("v"));
        // `__tmp` labels stay on the target but never on series.
        assert_eq!(t.labels.get("__tmp_y"), Some("t"));
        assert_eq!(t.public_labels().get("__tmp_y"), None);
        let skip = Labels::from_pairs([("__address__", "h:1"), ("__meta_x", "skip")]);
        match populate(&skip, &cfg).unwrap() {
            Populated::Dropped(d) => {
                assert_eq!(d.discovered_labels.get("__meta_x"), Some("skip"));
                assert_eq!(d.discovered_labels.get("job"), Some("j"));
            }
            Populated::Active(_) => panic!("should be dropped"),
        }
    }

    #[test]
    fn invalid_targets_are_errors() {
        let cfg = job("scrape_configs:\n  - job_name: j\n");
        let bad = [
            Labels::from_pairs([("__address__", "h/x:1")]),
            Labels::from_pairs([("x", "y")]),
            Labels::from_pairs([("__address__", "h:1"), ("__scheme__", "ftp")]),
            Labels::from_pairs([("__address__", "h:1"), ("__scrape_timeout__", "2m")]),
            Labels::from_pairs([("__address__", "h:1"), ("__scrape_interval__", "nope")]),
        ];
        for labels in bad {
            assert!(populate(&labels, &cfg).is_err(), "{labels:?}");
        }
        let relative = job("scrape_configs:\n  - job_name: j\n    metrics_path: stats\n");
        let t = active(populate(&Labels::from_pairs([("__address__", "h:1")]), &relative).unwrap());
        assert_eq!(t.url(), "http://h:1/stats");
        let v6 = Labels::from_pairs([("__address__", "[::1]")]);
        assert_eq!(active(populate(&v6, &cfg).unwrap()).instance(), "[::1]:80");
    }
}
