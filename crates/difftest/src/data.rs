//! A deterministic, node-exporter- and app-shaped data set with the awkward
//! parts real data has: counter resets, missed scrapes, series that stop or
//! start midway, NaN and infinite values, and values with many decimals.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use pharos_model::{Labels, Sample};

use crate::rng::Rng;

/// 2023-11-14T22:13:20Z: a fixed, whole-second origin so query times can be
/// written as literals in the corpus.
pub const START_MS: i64 = 1_700_000_000_000;
pub const SCRAPE_MS: i64 = 15_000;

#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    /// Number of scrape rounds; 960 is 4 h at 15 s.
    pub scrapes: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seed: 0x5eed_2042,
            scrapes: 960,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct DataSet {
    pub series: Vec<(Labels, Vec<Sample>)>,
}

impl DataSet {
    pub fn samples(&self) -> usize {
        self.series.iter().map(|(_, s)| s.len()).sum()
    }

    /// Earliest and latest sample timestamp.
    pub fn bounds(&self) -> Option<(i64, i64)> {
        let lo = self
            .series
            .iter()
            .filter_map(|(_, s)| s.first())
            .map(|s| s.t)
            .min()?;
        let hi = self
            .series
            .iter()
            .filter_map(|(_, s)| s.last())
            .map(|s| s.t)
            .max()?;
        Some((lo, hi))
    }

    /// OpenMetrics text as `promtool tsdb create-blocks-from openmetrics`
    /// reads it: one series after another with its samples in time order
    /// (the importer rejects out-of-order samples per series), timestamps in
    /// seconds, no metadata lines (the importer ignores types anyway) and the
    /// mandatory `# EOF`.
    pub fn to_openmetrics(&self) -> String {
        let mut out = String::with_capacity(self.samples() * 80);
        for (labels, samples) in &self.series {
            let name = labels.metric_name().unwrap_or_default();
            let mut head = String::from(name);
            let rest: Vec<String> = labels
                .iter()
                .filter(|l| l.name != "__name__")
                .map(|l| format!("{}=\"{}\"", l.name, escape(&l.value)))
                .collect();
            if !rest.is_empty() {
                head.push('{');
                head.push_str(&rest.join(","));
                head.push('}');
            }
            for s in samples {
                let _ = writeln!(
                    out,
                    "{head} {} {}.{:03}",
                    format_value(s.v),
                    s.t.div_euclid(1000),
                    s.t.rem_euclid(1000)
                );
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Rust's shortest round-trip decimal, with the spellings Go's ParseFloat
/// accepts for the specials.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[derive(Default)]
struct Builder {
    series: BTreeMap<Labels, Vec<Sample>>,
}

impl Builder {
    fn push(&mut self, name: &str, labels: &[(&str, &str)], t: i64, v: f64) {
        let mut pairs: Vec<(&str, &str)> = vec![("__name__", name)];
        pairs.extend_from_slice(labels);
        self.series
            .entry(Labels::from_pairs(pairs))
            .or_default()
            .push(Sample::new(t, v));
    }
}

struct Target {
    job: &'static str,
    instance: String,
    /// Phase of this target's scrape within the interval.
    offset_ms: i64,
    /// Per-scrape timestamp jitter, as real scrapes show.
    jitter_ms: i64,
    counters: BTreeMap<String, f64>,
}

impl Target {
    fn new(job: &'static str, instance: String, offset_ms: i64, jitter_ms: i64) -> Self {
        Self {
            job,
            instance,
            offset_ms,
            jitter_ms,
            counters: BTreeMap::new(),
        }
    }

    fn inc(&mut self, key: String, by: f64) -> f64 {
        let c = self.counters.entry(key).or_insert(0.0);
        *c += by;
        *c
    }

    fn reset_counters(&mut self) {
        self.counters.clear();
    }
}

const CPU_MODES: [&str; 4] = ["idle", "iowait", "system", "user"];
const HANDLERS: [&str; 3] = ["/api/v1/query", "/api/v1/write", "/metrics"];
const BUCKETS: [(&str, f64); 8] = [
    ("0.005", 0.005),
    ("0.01", 0.01),
    ("0.05", 0.05),
    ("0.1", 0.1),
    ("0.5", 0.5),
    ("1", 1.0),
    ("5", 5.0),
    ("+Inf", f64::INFINITY),
];

/// `copies` copies of `series` for the latency benchmarks: copy `j` has
/// `-j` appended to its `instance` (or a `replica="j"` label) and its
/// values scaled by `1 + 0.01 j`, so `topk` never has to choose among
/// exact ties, which no system specifies.
pub fn scaled_copies(
    series: &[(Labels, Vec<Sample>)],
    copies: usize,
) -> Vec<(Labels, Vec<Sample>)> {
    (0..copies)
        .flat_map(|j| {
            series.iter().map(move |(l, s)| {
                let mut l = l.clone();
                if let Some(inst) = l.get("instance").map(str::to_owned) {
                    l.set("instance", &format!("{inst}-{j}"));
                } else {
                    l.set("replica", &j.to_string());
                }
                let k = 1.0 + j as f64 * 0.01;
                (l, s.iter().map(|x| Sample::new(x.t, x.v * k)).collect())
            })
        })
        .collect()
}

pub fn generate(cfg: &Config) -> DataSet {
    let mut rng = Rng::new(cfg.seed);
    let mut b = Builder::default();
    let mut nodes: Vec<Target> = (0..3)
        .map(|i| Target::new("node", format!("node-{i}:9100"), [0, 3_217, 7_500][i], 0))
        .collect();
    let mut apps: Vec<Target> = (0..2)
        .map(|i| {
            Target::new(
                "api",
                format!("app-{i}:8080"),
                [1_001, 12_345][i],
                [0, 40][i],
            )
        })
        .collect();
    let n = cfg.scrapes;
    for k in 0..n {
        let phase = k as f64 / n as f64 * std::f64::consts::TAU;
        for (ni, node) in nodes.iter_mut().enumerate() {
            let t = scrape_time(&mut rng, node, k);
            let inst = node.instance.clone();
            let base = [("instance", inst.as_str()), ("job", node.job)];
            // node-2 is unreachable for ten minutes (longer than the
            // lookback), node-1 misses the odd scrape
            let down = (ni == 2 && (300..340).contains(&k)) || (ni == 1 && rng.chance(0.02));
            b.push("up", &base, t, if down { 0.0 } else { 1.0 });
            if down {
                continue;
            }
            for cpu in 0..4 {
                let cpu_s = cpu.to_string();
                let busy = (0.25 + 0.2 * (phase * (ni + 1) as f64).sin() + 0.1 * rng.f64())
                    .clamp(0.01, 0.95);
                let shares = [1.0 - busy, busy * 0.1, busy * 0.3, busy * 0.6];
                for (mode, share) in CPU_MODES.iter().zip(shares) {
                    let v = node.inc(format!("cpu{cpu}{mode}"), 15.0 * share);
                    b.push(
                        "node_cpu_seconds_total",
                        &[base[0], base[1], ("cpu", &cpu_s), ("mode", mode)],
                        t,
                        v,
                    );
                }
            }
            for dev in ["eth0", "lo"] {
                let key = format!("rx{dev}");
                // node-1 eth0 wraps its counter (driver reset) halfway
                if ni == 1 && dev == "eth0" && k == n / 2 + 17 {
                    node.counters.insert(key.clone(), 0.0);
                }
                let v = node.inc(key, (1e5 + 9e5 * rng.f64()).floor());
                b.push(
                    "node_network_receive_bytes_total",
                    &[base[0], base[1], ("device", dev)],
                    t,
                    v,
                );
            }
            let total = if ni == 2 { 8.0 } else { 16.0 } * 1024.0 * 1024.0 * 1024.0;
            b.push("node_memory_MemTotal_bytes", &base, t, total);
            let avail = total * (0.4 + 0.3 * (phase * 2.0 + ni as f64).cos() + 0.05 * rng.f64());
            b.push("node_memory_MemAvailable_bytes", &base, t, avail.floor());
            for (mi, (mp, dev, size)) in [("/", "/dev/sda1", 100e9), ("/home", "/dev/sdb1", 500e9)]
                .into_iter()
                .enumerate()
            {
                let labels = [
                    base[0],
                    base[1],
                    ("device", dev),
                    ("fstype", "ext4"),
                    ("mountpoint", mp),
                ];
                // disks fill slowly and steadily, so predict_linear has a trend
                let used =
                    size * (0.5 + 0.1 * mi as f64) + k as f64 * 4096.0 * (ni + 1) as f64 * 100.0;
                b.push("node_filesystem_size_bytes", &labels, t, size);
                b.push(
                    "node_filesystem_avail_bytes",
                    &labels,
                    t,
                    (size - used).floor(),
                );
            }
            let load = 0.5 + (ni as f64 + 1.0) * (1.0 + (phase * 3.0).sin()) + rng.f64();
            b.push("node_load1", &base, t, (load * 100.0).round() / 100.0);
        }
        for (ai, app) in apps.iter_mut().enumerate() {
            let t = scrape_time(&mut rng, app, k);
            let inst = app.instance.clone();
            let base = [("instance", inst.as_str()), ("job", app.job)];
            // app-1 restarts two thirds in: every counter starts over
            if ai == 1 && k == n * 2 / 3 {
                app.reset_counters();
            }
            b.push("up", &base, t, 1.0);
            b.push(
                "app_info",
                &[
                    base[0],
                    base[1],
                    ("version", ["1.4.2", "1.5.0"][ai]),
                    ("commit", "abc123"),
                ],
                t,
                1.0,
            );
            for (hi, handler) in HANDLERS.iter().enumerate() {
                let method = if hi == 1 { "POST" } else { "GET" };
                let load = (hi + 1) as f64 * (1.0 + 0.5 * (phase + ai as f64).sin());
                let ok = (load * 10.0 * rng.f64()).floor();
                let err = if rng.chance(0.1) {
                    rng.below(3) as f64
                } else {
                    0.0
                };
                for (status, by) in [("200", ok), ("500", err)] {
                    let v = app.inc(format!("req{handler}{status}"), by);
                    b.push(
                        "http_requests_total",
                        &[
                            base[0],
                            base[1],
                            ("handler", handler),
                            ("method", method),
                            ("status", status),
                        ],
                        t,
                        v,
                    );
                }
                let mut sum_inc = 0.0;
                let mut bucket_inc = [0.0f64; BUCKETS.len()];
                for _ in 0..(ok + err) as usize {
                    // latency mostly small with a long tail, scaled by handler
                    let lat = 0.002 * (hi + 1) as f64 / (1.0 - rng.f64()).powf(1.3);
                    sum_inc += lat;
                    for (bi, (_, le)) in BUCKETS.iter().enumerate() {
                        if lat <= *le {
                            bucket_inc[bi] += 1.0;
                        }
                    }
                }
                for (bi, (le, _)) in BUCKETS.iter().enumerate() {
                    let v = app.inc(format!("bucket{handler}{le}"), bucket_inc[bi]);
                    b.push(
                        "http_request_duration_seconds_bucket",
                        &[base[0], base[1], ("handler", handler), ("le", le)],
                        t,
                        v,
                    );
                }
                let s = app.inc(format!("sum{handler}"), sum_inc);
                b.push(
                    "http_request_duration_seconds_sum",
                    &[base[0], base[1], ("handler", handler)],
                    t,
                    s,
                );
                let c = app.inc(format!("count{handler}"), ok + err);
                b.push(
                    "http_request_duration_seconds_count",
                    &[base[0], base[1], ("handler", handler)],
                    t,
                    c,
                );
            }
            if ai == 0 {
                // a handler removed by a deploy 1.5 h in: the series just ends
                if k < 360 {
                    let v = app.inc("old".into(), 1.0 + rng.below(5) as f64);
                    b.push(
                        "http_requests_total",
                        &[
                            base[0],
                            base[1],
                            ("handler", "/old"),
                            ("method", "GET"),
                            ("status", "200"),
                        ],
                        t,
                        v,
                    );
                }
                // and one added 2.5 h in
                if k >= 600 {
                    let v = app.inc("new".into(), 2.0 + rng.below(7) as f64);
                    b.push(
                        "http_requests_total",
                        &[
                            base[0],
                            base[1],
                            ("handler", "/new"),
                            ("method", "GET"),
                            ("status", "200"),
                        ],
                        t,
                        v,
                    );
                }
            }
            for sensor in ["a", "b"] {
                let v = if sensor == "b" && k % 50 == 7 {
                    f64::NAN
                } else {
                    40.0 + 15.0 * (phase + ai as f64).sin() + rng.f64()
                };
                b.push(
                    "app_temperature_celsius",
                    &[base[0], base[1], ("sensor", sensor)],
                    t,
                    v,
                );
            }
            let queue = (20.0 * (phase * 5.0).sin() + 5.0 * rng.f64()).round();
            b.push("app_queue_length", &base, t, queue);
            // precision and special values
            let precise = 1_234.567_890_123_456_7 + k as f64 * 0.000_000_123_456_789;
            b.push(
                "app_edge_value",
                &[base[0], base[1], ("kind", "precise")],
                t,
                precise,
            );
            b.push(
                "app_edge_value",
                &[base[0], base[1], ("kind", "tiny")],
                t,
                1.234_567_89e-12 * (1 + k % 7) as f64,
            );
            let special = match k % 97 {
                0 => f64::INFINITY,
                1 => f64::NEG_INFINITY,
                2 => f64::NAN,
                _ => (k % 13) as f64 - 6.0,
            };
            b.push(
                "app_edge_value",
                &[base[0], base[1], ("kind", "special")],
                t,
                special,
            );
        }
    }
    DataSet {
        series: b.series.into_iter().collect(),
    }
}

fn scrape_time(rng: &mut Rng, t: &Target, k: i64) -> i64 {
    let jitter = if t.jitter_ms > 0 {
        rng.below(t.jitter_ms as usize * 2 + 1) as i64 - t.jitter_ms
    } else {
        0
    };
    START_MS + k * SCRAPE_MS + t.offset_ms + jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped_as_described() {
        let cfg = Config {
            scrapes: 400,
            ..Config::default()
        };
        let a = generate(&cfg);
        let b = generate(&cfg);
        assert_eq!(a.to_openmetrics(), b.to_openmetrics());
        assert!(
            (150..=260).contains(&a.series.len()),
            "{} series",
            a.series.len()
        );
        for (l, s) in &a.series {
            assert!(s.windows(2).all(|w| w[0].t < w[1].t), "unsorted {l}");
        }
        // the stale handler ends, NaNs and infinities exist
        let old = a
            .series
            .iter()
            .find(|(l, _)| l.get("handler") == Some("/old"))
            .unwrap();
        assert!(old.1.last().unwrap().t < START_MS + 360 * SCRAPE_MS + 20_000);
        assert!(a.series.iter().any(|(_, s)| s.iter().any(|x| x.v.is_nan())));
        assert!(
            a.series
                .iter()
                .any(|(_, s)| s.iter().any(|x| x.v == f64::INFINITY))
        );
        let text = a.to_openmetrics();
        assert!(text.ends_with("# EOF\n"));
        assert!(text.contains("le=\"+Inf\""));
        assert!(text.contains(" 1700000000.000\n") || text.contains(" 1700000000.000"));
    }
}
