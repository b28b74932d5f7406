//! A small registry that renders the Prometheus text format (0.0.4).
//!
//! Hand-written rather than pulled in: Pharos needs counters, gauges and
//! histograms with label vectors and a text renderer that `promtool check
//! metrics` accepts, and owning it keeps the encoding identical across roles.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use pharos_core::BuildInfo;

/// Anything that can append its samples to an exposition.
pub trait Collect: Send + Sync {
    fn collect(&self, out: &mut String);
}

#[derive(Clone, Default)]
pub struct Registry {
    collectors: Arc<RwLock<Vec<Arc<dyn Collect>>>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&self, c: Arc<dyn Collect>) {
        self.collectors.write().expect("registry lock").push(c);
    }

    pub fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> CounterVec {
        let v = CounterVec(Arc::new(Family::new(name, help, "counter", labels)));
        self.register(v.0.clone());
        v
    }

    pub fn counter(&self, name: &str, help: &str) -> Counter {
        self.counter_vec(name, help, &[]).with(&[])
    }

    pub fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        let v = GaugeVec(Arc::new(Family::new(name, help, "gauge", labels)));
        self.register(v.0.clone());
        v
    }

    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        self.gauge_vec(name, help, &[]).with(&[])
    }

    pub fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: &[f64],
    ) -> HistogramVec {
        let v = HistogramVec(Arc::new(HistFamily {
            meta: Meta::new(name, help, "histogram", labels),
            buckets: buckets.to_vec(),
            series: Mutex::new(BTreeMap::new()),
        }));
        self.register(v.0.clone());
        v
    }

    /// The registry plus process and build-info metrics, as served on
    /// `/metrics`.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        for c in self.collectors.read().expect("registry lock").iter() {
            c.collect(&mut out);
        }
        out
    }

    /// Registers `pharos_build_info` and the `process_*` metrics.
    pub fn register_process_metrics(&self) {
        self.register(Arc::new(ProcessCollector));
    }
}

/// An f64 stored in an atomic so hot paths never take a lock.
#[derive(Default)]
struct AtomicF64(AtomicU64);

impl AtomicF64 {
    fn add(&self, v: f64) {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let new = (f64::from_bits(cur) + v).to_bits();
            match self
                .0
                .compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }
    fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

struct Meta {
    name: String,
    help: String,
    kind: &'static str,
    labels: Vec<String>,
}

impl Meta {
    fn new(name: &str, help: &str, kind: &'static str, labels: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            help: help.to_owned(),
            kind,
            labels: labels.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn header(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, escape_help(&self.help));
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
    }

    fn check_arity(&self, values: &[&str]) {
        assert_eq!(
            values.len(),
            self.labels.len(),
            "metric {} takes labels {:?}",
            self.name,
            self.labels
        );
    }
}

struct Family {
    meta: Meta,
    series: Mutex<BTreeMap<Vec<String>, Arc<AtomicF64>>>,
}

impl Family {
    fn new(name: &str, help: &str, kind: &'static str, labels: &[&str]) -> Self {
        Self {
            meta: Meta::new(name, help, kind, labels),
            series: Mutex::new(BTreeMap::new()),
        }
    }

    fn get(&self, values: &[&str]) -> Arc<AtomicF64> {
        self.meta.check_arity(values);
        let key: Vec<String> = values.iter().map(|s| (*s).to_owned()).collect();
        self.series
            .lock()
            .expect("metric lock")
            .entry(key)
            .or_default()
            .clone()
    }
}

impl Collect for Family {
    fn collect(&self, out: &mut String) {
        let series = self.series.lock().expect("metric lock");
        if series.is_empty() && !self.meta.labels.is_empty() {
            return;
        }
        self.meta.header(out);
        for (values, v) in series.iter() {
            out.push_str(&self.meta.name);
            write_labels(out, &self.meta.labels, values, None);
            let _ = writeln!(out, " {}", fmt_value(v.get()));
        }
    }
}

#[derive(Clone)]
pub struct CounterVec(Arc<Family>);
#[derive(Clone)]
pub struct Counter(Arc<AtomicF64>);

impl CounterVec {
    pub fn with(&self, values: &[&str]) -> Counter {
        Counter(self.0.get(values))
    }
}

impl Counter {
    pub fn inc(&self) {
        self.0.add(1.0);
    }
    pub fn add(&self, v: f64) {
        debug_assert!(v >= 0.0, "counters only go up");
        self.0.add(v);
    }
    pub fn get(&self) -> f64 {
        self.0.get()
    }
}

#[derive(Clone)]
pub struct GaugeVec(Arc<Family>);
#[derive(Clone)]
pub struct Gauge(Arc<AtomicF64>);

impl GaugeVec {
    pub fn with(&self, values: &[&str]) -> Gauge {
        Gauge(self.0.get(values))
    }
}

impl Gauge {
    pub fn set(&self, v: f64) {
        self.0.set(v);
    }
    pub fn add(&self, v: f64) {
        self.0.add(v);
    }
    pub fn get(&self) -> f64 {
        self.0.get()
    }
}

struct HistSeries {
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    sum: AtomicF64,
}

struct HistFamily {
    meta: Meta,
    buckets: Vec<f64>,
    series: Mutex<BTreeMap<Vec<String>, Arc<HistSeries>>>,
}

#[derive(Clone)]
pub struct HistogramVec(Arc<HistFamily>);

#[derive(Clone)]
pub struct Histogram {
    bounds: Arc<HistFamily>,
    series: Arc<HistSeries>,
}

/// Request latency buckets, as Prometheus client libraries default to.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl HistogramVec {
    pub fn with(&self, values: &[&str]) -> Histogram {
        self.0.meta.check_arity(values);
        let key: Vec<String> = values.iter().map(|s| (*s).to_owned()).collect();
        let n = self.0.buckets.len();
        let series = self
            .0
            .series
            .lock()
            .expect("metric lock")
            .entry(key)
            .or_insert_with(|| {
                Arc::new(HistSeries {
                    counts: (0..n).map(|_| AtomicU64::new(0)).collect(),
                    count: AtomicU64::new(0),
                    sum: AtomicF64::default(),
                })
            })
            .clone();
        Histogram {
            bounds: self.0.clone(),
            series,
        }
    }
}

impl Histogram {
    pub fn observe(&self, v: f64) {
        // buckets are cumulative when rendered; store per-bucket counts here
        if let Some(i) = self.bounds.buckets.iter().position(|b| v <= *b) {
            self.series.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.series.count.fetch_add(1, Ordering::Relaxed);
        self.series.sum.add(v);
    }
}

impl Collect for HistFamily {
    fn collect(&self, out: &mut String) {
        let series = self.series.lock().expect("metric lock");
        if series.is_empty() {
            return;
        }
        self.meta.header(out);
        for (values, s) in series.iter() {
            let mut cumulative = 0u64;
            for (i, bound) in self.buckets.iter().enumerate() {
                cumulative += s.counts[i].load(Ordering::Relaxed);
                let _ = write!(out, "{}_bucket", self.meta.name);
                write_labels(out, &self.meta.labels, values, Some(&fmt_value(*bound)));
                let _ = writeln!(out, " {cumulative}");
            }
            let count = s.count.load(Ordering::Relaxed);
            let _ = write!(out, "{}_bucket", self.meta.name);
            write_labels(out, &self.meta.labels, values, Some("+Inf"));
            let _ = writeln!(out, " {count}");
            let _ = write!(out, "{}_sum", self.meta.name);
            write_labels(out, &self.meta.labels, values, None);
            let _ = writeln!(out, " {}", fmt_value(s.sum.get()));
            let _ = write!(out, "{}_count", self.meta.name);
            write_labels(out, &self.meta.labels, values, None);
            let _ = writeln!(out, " {count}");
        }
    }
}

fn write_labels(out: &mut String, names: &[String], values: &[String], le: Option<&str>) {
    if names.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (n, v) in names.iter().zip(values) {
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "{n}=\"{}\"", escape_label(v));
    }
    if let Some(le) = le {
        if !first {
            out.push(',');
        }
        let _ = write!(out, "le=\"{le}\"");
    }
    out.push('}');
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)` spelling for the specials.
pub fn fmt_value(v: f64) -> String {
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

/// `process_*` metrics read from /proc on every scrape, and build info.
struct ProcessCollector;

impl Collect for ProcessCollector {
    fn collect(&self, out: &mut String) {
        let b = BuildInfo::current();
        let _ = writeln!(
            out,
            "# HELP pharos_build_info A metric with a constant '1' value labeled by version, revision, branch, and rustversion from which pharos was built.\n# TYPE pharos_build_info gauge\npharos_build_info{{branch=\"{}\",revision=\"{}\",rustversion=\"{}\",version=\"{}\"}} 1",
            b.branch, b.revision, b.go_version, b.version
        );
        if let Some(p) = process_stats() {
            let mut gauge = |name: &str, kind: &str, help: &str, v: f64| {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                    fmt_value(v)
                );
            };
            gauge(
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                p.cpu_seconds,
            );
            gauge(
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                p.rss_bytes,
            );
            gauge(
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size in bytes.",
                p.vsize_bytes,
            );
            gauge(
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds.",
                p.start_time_seconds,
            );
            gauge(
                "process_open_fds",
                "gauge",
                "Number of open file descriptors.",
                p.open_fds,
            );
            gauge(
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                p.max_fds,
            );
            gauge(
                "process_threads",
                "gauge",
                "Number of OS threads in the process.",
                p.threads,
            );
        }
    }
}

struct ProcessStats {
    cpu_seconds: f64,
    rss_bytes: f64,
    vsize_bytes: f64,
    start_time_seconds: f64,
    open_fds: f64,
    max_fds: f64,
    threads: f64,
}

/// Reads /proc/self; None on systems without procfs.
fn process_stats() -> Option<ProcessStats> {
    // USER_HZ and the page size are 100 and 4096 on every Linux we target;
    // reading them needs libc, which this crate avoids.
    const TICKS: f64 = 100.0;
    const PAGE: f64 = 4096.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // fields after the parenthesised command name, which may hold spaces
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    // indices are field numbers from proc(5) minus 3
    let utime = num(11);
    let stime = num(12);
    let threads = num(17);
    let starttime = num(19);
    let vsize = num(20);
    let rss = num(21);
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("btime ")
                    .map(|v| v.trim().parse::<f64>().ok())
            })
        })
        .flatten()
        .unwrap_or(0.0);
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as f64)
        .unwrap_or(0.0);
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(3)
                        .and_then(|v| v.parse::<f64>().ok())
                })
        })
        .unwrap_or(0.0);
    Some(ProcessStats {
        cpu_seconds: (utime + stime) / TICKS,
        rss_bytes: rss * PAGE,
        vsize_bytes: vsize,
        start_time_seconds: boot + starttime / TICKS,
        open_fds,
        max_fds,
        threads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_text_format() {
        let r = Registry::new();
        let c = r.counter_vec("x_requests_total", "Requests.", &["code"]);
        c.with(&["200"]).inc();
        c.with(&["200"]).add(2.0);
        c.with(&["5\"00"]).inc();
        let h = r.histogram_vec("x_duration_seconds", "Latency.", &["route"], &[0.1, 1.0]);
        h.with(&["/a"]).observe(0.05);
        h.with(&["/a"]).observe(0.5);
        h.with(&["/a"]).observe(5.0);
        let g = r.gauge("x_up", "Up.");
        g.set(1.0);
        let text = r.render();
        assert!(text.contains("# TYPE x_requests_total counter\n"));
        assert!(text.contains("x_requests_total{code=\"200\"} 3\n"));
        assert!(text.contains("x_requests_total{code=\"5\\\"00\"} 1\n"));
        assert!(text.contains("x_duration_seconds_bucket{route=\"/a\",le=\"0.1\"} 1\n"));
        assert!(text.contains("x_duration_seconds_bucket{route=\"/a\",le=\"1\"} 2\n"));
        assert!(text.contains("x_duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n"));
        assert!(text.contains("x_duration_seconds_sum{route=\"/a\"} 5.55\n"));
        assert!(text.contains("x_duration_seconds_count{route=\"/a\"} 3\n"));
        assert!(text.contains("x_up 1\n"));
    }

    #[test]
    fn process_metrics_present_on_linux() {
        let r = Registry::new();
        r.register_process_metrics();
        let text = r.render();
        assert!(text.contains("pharos_build_info{"));
        if cfg!(target_os = "linux") {
            let rss_line = text
                .lines()
                .find(|l| l.starts_with("process_resident_memory_bytes "))
                .expect("rss metric");
            let rss: f64 = rss_line.split(' ').nth(1).unwrap().parse().unwrap();
            assert!(rss > 1_000_000.0, "rss {rss}");
            assert!(text.contains("process_open_fds "));
        }
    }

    #[test]
    #[should_panic(expected = "takes labels")]
    fn wrong_label_arity_is_a_bug() {
        let r = Registry::new();
        r.counter_vec("y_total", "y", &["a"]).with(&[]);
    }

    #[test]
    fn special_values() {
        assert_eq!(fmt_value(f64::NAN), "NaN");
        assert_eq!(fmt_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(fmt_value(0.25), "0.25");
    }
}
