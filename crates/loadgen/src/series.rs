//! Node-exporter-like series and the value every one of them has at every
//! scrape.

/// How a series' value evolves from scrape to scrape.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Grows by 1..2*step-1 per scrape (packets, context switches).
    CounterInt { step: u64 },
    /// Seconds with two decimals, growing by about `centis`/100 per scrape.
    CounterSecs { centis: u64 },
    /// `digits` significant digits times 10^`exp`, redrawn every
    /// `every` scrapes (real gauges often repeat).
    Gauge { digits: u32, exp: i32, every: u64 },
    /// Cumulative bucket of histogram `hist`: the share `frac` of its count.
    Bucket { hist: u64, rate: u64, frac: f64 },
    /// `_count` of histogram `hist`.
    HistCount { hist: u64, rate: u64 },
    /// `_sum` of histogram `hist`: count times a mean in milliseconds.
    HistSum { hist: u64, rate: u64, mean_ms: u64 },
    /// Values recorded from a real exporter, replayed in a loop; counters
    /// keep growing across loops.
    Replay { track: usize, counter: bool },
}

/// One series: sorted labels (with `__name__`) and its kind.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSpec {
    pub labels: Vec<(String, String)>,
    pub kind: Kind,
}

/// The whole set; values are a function of (index, scrape) only.
#[derive(Debug, Clone, Default)]
pub struct SeriesSet {
    pub specs: Vec<SeriesSpec>,
    /// Recorded values per replay track (corpus mode).
    pub tracks: Vec<Vec<f64>>,
    pub seed: u64,
}

pub(crate) fn mix(mut z: u64) -> u64 {
    // splitmix64 finaliser: cheap, deterministic, well spread
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn h(seed: u64, a: u64, b: u64) -> u64 {
    mix(seed ^ mix(a.wrapping_mul(0x1000_0000_01b3) ^ mix(b)))
}

/// k*step plus a jitter below step: strictly increasing in k.
fn mono(seed: u64, id: u64, k: u64, step: u64) -> u64 {
    let step = step.max(1);
    k * step + h(seed, id, k) % step
}

fn pow10(e: u32) -> f64 {
    10f64.powi(e as i32)
}

const MODES: [&str; 8] = [
    "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
];
const MEMORY: [&str; 10] = [
    "MemTotal",
    "MemFree",
    "MemAvailable",
    "Buffers",
    "Cached",
    "SwapTotal",
    "SwapFree",
    "Active",
    "Inactive",
    "Dirty",
];
const FILESYSTEMS: [(&str, &str, &str); 4] = [
    ("/dev/sda1", "ext4", "/"),
    ("/dev/sda2", "ext4", "/home"),
    ("tmpfs", "tmpfs", "/run"),
    ("/dev/nvme0n1p1", "xfs", "/data"),
];
const NICS: [&str; 3] = ["eth0", "eth1", "lo"];
const DISKS: [&str; 3] = ["sda", "sdb", "nvme0n1"];
const HANDLERS: [&str; 3] = ["/api/v1/query", "/metrics", "/api/v1/write"];
const LE: [&str; 10] = [
    "0.1", "0.2", "0.4", "1", "3", "8", "20", "60", "120", "+Inf",
];
const COLLECTORS: [&str; 5] = ["cpu", "diskstats", "filesystem", "meminfo", "netdev"];

/// Series per simulated host.
pub const PER_HOST: usize = 182;

impl SeriesSet {
    /// `n` series from `ceil(n / PER_HOST)` simulated node-exporter hosts.
    pub fn node_exporter(n: usize, seed: u64) -> Self {
        let mut specs = Vec::with_capacity(n);
        let mut host = 0u64;
        while specs.len() < n {
            host_series(seed, host, &mut specs);
            host += 1;
        }
        specs.truncate(n);
        Self {
            specs,
            tracks: Vec::new(),
            seed,
        }
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// The value of series `idx` at scrape `k`.
    pub fn value(&self, idx: usize, k: u64) -> f64 {
        let seed = self.seed;
        let id = idx as u64;
        match &self.specs[idx].kind {
            Kind::CounterInt { step } => mono(seed, id, k, *step) as f64,
            Kind::CounterSecs { centis } => mono(seed, id, k, *centis) as f64 / 100.0,
            Kind::Gauge { digits, exp, every } => {
                let epoch = k / (*every).max(1);
                let lo = pow10(digits - 1) as u64;
                let m = lo + h(seed, id, epoch) % (lo * 9);
                if *exp >= 0 {
                    m as f64 * pow10(*exp as u32)
                } else {
                    // division by an exact power of ten gives the double a
                    // text parser would produce for the decimal
                    m as f64 / pow10(exp.unsigned_abs())
                }
            }
            Kind::HistCount { hist, rate } => mono(seed, *hist, k, *rate) as f64,
            Kind::Bucket { hist, rate, frac } => {
                (mono(seed, *hist, k, *rate) as f64 * frac).floor()
            }
            Kind::HistSum {
                hist,
                rate,
                mean_ms,
            } => (mono(seed, *hist, k, *rate) * mean_ms) as f64 / 1000.0,
            Kind::Replay { track, counter } => {
                let vals = &self.tracks[*track];
                let n = vals.len() as u64;
                let (lap, i) = (k / n, (k % n) as usize);
                if *counter && lap > 0 {
                    let first = vals[0];
                    let last = vals[vals.len() - 1];
                    let step = if n > 1 {
                        (vals[1] - first).max(0.0)
                    } else {
                        1.0
                    };
                    vals[i] + lap as f64 * (last - first + step)
                } else {
                    vals[i]
                }
            }
        }
    }
}

fn push(out: &mut Vec<SeriesSpec>, name: &str, host: u64, extra: &[(&str, &str)], kind: Kind) {
    let mut labels: Vec<(String, String)> = vec![
        ("__name__".into(), name.into()),
        ("instance".into(), format!("host-{host}:9100")),
        ("job".into(), "node".into()),
    ];
    labels.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    labels.sort();
    out.push(SeriesSpec { labels, kind });
}

fn host_series(seed: u64, host: u64, out: &mut Vec<SeriesSpec>) {
    let r = |salt: u64, m: u64| h(seed, host, salt) % m;
    for cpu in 0..8 {
        let c = cpu.to_string();
        for (i, mode) in MODES.iter().enumerate() {
            // idle dominates, steal barely moves
            let centis = match *mode {
                "idle" => 900 + r(i as u64 * 8 + cpu, 500),
                "steal" | "irq" => 1 + r(i as u64 * 8 + cpu, 3),
                _ => 5 + r(i as u64 * 8 + cpu, 200),
            };
            push(
                out,
                "node_cpu_seconds_total",
                host,
                &[("cpu", &c), ("mode", mode)],
                Kind::CounterSecs { centis },
            );
        }
    }
    for m in MEMORY {
        let every = if m.ends_with("Total") { u64::MAX } else { 4 };
        push(
            out,
            &format!("node_memory_{m}_bytes"),
            host,
            &[],
            Kind::Gauge {
                digits: 6,
                exp: 4,
                every,
            },
        );
    }
    for l in ["node_load1", "node_load5", "node_load15"] {
        push(
            out,
            l,
            host,
            &[],
            Kind::Gauge {
                digits: 3,
                exp: -2,
                every: 1,
            },
        );
    }
    for (dev, fs, mp) in FILESYSTEMS {
        let lbl = [("device", dev), ("fstype", fs), ("mountpoint", mp)];
        for (metric, every) in [
            ("node_filesystem_avail_bytes", 8),
            ("node_filesystem_free_bytes", 8),
            ("node_filesystem_size_bytes", u64::MAX),
            ("node_filesystem_files_free", 16),
        ] {
            push(
                out,
                metric,
                host,
                &lbl,
                Kind::Gauge {
                    digits: 5,
                    exp: 5,
                    every,
                },
            );
        }
    }
    for nic in NICS {
        for (dir, what, step) in [
            ("receive", "bytes", 150_000),
            ("transmit", "bytes", 90_000),
            ("receive", "packets", 400),
            ("transmit", "packets", 300),
            ("receive", "errs", 1),
            ("transmit", "errs", 1),
            ("receive", "drop", 2),
            ("transmit", "drop", 1),
        ] {
            push(
                out,
                &format!("node_network_{dir}_{what}_total"),
                host,
                &[("device", nic)],
                Kind::CounterInt { step },
            );
        }
    }
    for disk in DISKS {
        for (metric, kind) in [
            (
                "node_disk_reads_completed_total",
                Kind::CounterInt { step: 40 },
            ),
            (
                "node_disk_writes_completed_total",
                Kind::CounterInt { step: 90 },
            ),
            (
                "node_disk_read_time_seconds_total",
                Kind::CounterSecs { centis: 7 },
            ),
            (
                "node_disk_write_time_seconds_total",
                Kind::CounterSecs { centis: 25 },
            ),
            (
                "node_disk_io_time_seconds_total",
                Kind::CounterSecs { centis: 30 },
            ),
        ] {
            push(out, metric, host, &[("device", disk)], kind);
        }
    }
    for (chip, sensor) in [
        ("coretemp", "temp1"),
        ("coretemp", "temp2"),
        ("nvme", "temp1"),
        ("acpitz", "temp1"),
    ] {
        push(
            out,
            "node_hwmon_temp_celsius",
            host,
            &[("chip", chip), ("sensor", sensor)],
            Kind::Gauge {
                digits: 3,
                exp: -1,
                every: 2,
            },
        );
    }
    for (metric, step) in [
        ("node_context_switches_total", 20_000),
        ("node_intr_total", 9_000),
        ("node_forks_total", 30),
    ] {
        push(out, metric, host, &[], Kind::CounterInt { step });
    }
    for metric in ["node_procs_running", "node_procs_blocked"] {
        push(
            out,
            metric,
            host,
            &[],
            Kind::Gauge {
                digits: 1,
                exp: 0,
                every: 1,
            },
        );
    }
    for c in COLLECTORS {
        push(
            out,
            "node_scrape_collector_duration_seconds",
            host,
            &[("collector", c)],
            Kind::Gauge {
                digits: 4,
                exp: -7,
                every: 1,
            },
        );
    }
    for (i, handler) in HANDLERS.iter().enumerate() {
        let hist = mix(host.wrapping_mul(16) + i as u64);
        let rate = 5 + r(100 + i as u64, 60);
        let n = LE.len();
        for (j, le) in LE.iter().enumerate() {
            // a fixed, increasing share of observations falls under each bound
            let frac = if j + 1 == n {
                1.0
            } else {
                1.0 - 0.5f64.powi(j as i32 + 1)
            };
            push(
                out,
                "prometheus_http_request_duration_seconds_bucket",
                host,
                &[("handler", handler), ("le", le)],
                Kind::Bucket { hist, rate, frac },
            );
        }
        push(
            out,
            "prometheus_http_request_duration_seconds_sum",
            host,
            &[("handler", handler)],
            Kind::HistSum {
                hist,
                rate,
                mean_ms: 3 + r(200 + i as u64, 400),
            },
        );
        push(
            out,
            "prometheus_http_request_duration_seconds_count",
            host,
            &[("handler", handler)],
            Kind::HistCount { hist, rate },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_has_per_host_series_with_unique_sorted_labels() {
        let s = SeriesSet::node_exporter(PER_HOST * 2, 7);
        assert_eq!(s.len(), PER_HOST * 2);
        let mut seen = std::collections::HashSet::new();
        for spec in &s.specs {
            assert!(spec.labels.windows(2).all(|w| w[0].0 < w[1].0), "{spec:?}");
            assert!(seen.insert(spec.labels.clone()), "duplicate {spec:?}");
        }
        // the last series of the first host belongs to host-0
        assert!(
            s.specs[PER_HOST - 1]
                .labels
                .contains(&("instance".into(), "host-0:9100".into()))
        );
        assert!(
            s.specs[PER_HOST]
                .labels
                .contains(&("instance".into(), "host-1:9100".into()))
        );
    }

    #[test]
    fn counters_and_histograms_never_decrease_and_buckets_are_cumulative() {
        let s = SeriesSet::node_exporter(PER_HOST, 3);
        for (i, spec) in s.specs.iter().enumerate() {
            let counter = !matches!(spec.kind, Kind::Gauge { .. });
            for k in 0..50 {
                let (a, b) = (s.value(i, k), s.value(i, k + 1));
                assert!(a.is_finite() && a >= 0.0);
                if counter {
                    assert!(b >= a, "{spec:?} at {k}: {a} > {b}");
                }
            }
        }
        // +Inf bucket equals _count, lower buckets do not exceed higher ones
        let idx = |name: &str, le: Option<&str>| {
            s.specs
                .iter()
                .position(|x| {
                    x.labels.contains(&("__name__".into(), name.into()))
                        && x.labels.contains(&("handler".into(), "/metrics".into()))
                        && le.is_none_or(|le| x.labels.contains(&("le".into(), le.into())))
                })
                .unwrap()
        };
        let count = idx("prometheus_http_request_duration_seconds_count", None);
        let inf = idx(
            "prometheus_http_request_duration_seconds_bucket",
            Some("+Inf"),
        );
        let low = idx(
            "prometheus_http_request_duration_seconds_bucket",
            Some("0.1"),
        );
        for k in 0..20 {
            assert_eq!(s.value(count, k), s.value(inf, k));
            assert!(s.value(low, k) <= s.value(inf, k));
        }
    }

    #[test]
    fn gauges_have_the_asked_significant_digits() {
        let s = SeriesSet::node_exporter(PER_HOST, 11);
        for (i, spec) in s.specs.iter().enumerate() {
            if let Kind::Gauge { digits, .. } = spec.kind {
                for k in 0..10 {
                    let v = s.value(i, k);
                    let text = format!("{:e}", v);
                    let mantissa = text.split('e').next().unwrap().replace('.', "");
                    assert!(mantissa.len() as u32 <= digits, "{v} has > {digits} digits");
                }
            }
        }
    }

    #[test]
    fn values_are_deterministic_per_seed() {
        let a = SeriesSet::node_exporter(500, 1);
        let b = SeriesSet::node_exporter(500, 1);
        let c = SeriesSet::node_exporter(500, 2);
        let va: Vec<u64> = (0..500).map(|i| a.value(i, 9).to_bits()).collect();
        let vb: Vec<u64> = (0..500).map(|i| b.value(i, 9).to_bits()).collect();
        let vc: Vec<u64> = (0..500).map(|i| c.value(i, 9).to_bits()).collect();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
    }
}
