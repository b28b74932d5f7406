//! `pharos-loadgen`: remote_write load with an acknowledgement log and a
//! bit-exact read-back check.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use pharos_loadgen::{Plan, RunOptions, SeriesSet, corpus, run, verify};

#[derive(Parser)]
#[command(
    name = "pharos-loadgen",
    about = "Prometheus remote_write load generator"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send samples, print a JSON summary, optionally read them back.
    Run(RunArgs),
    /// Append the same plan straight into a Pharos TSDB (no HTTP) and
    /// print the head's encoded chunk bytes per sample and memory per
    /// series: numbers metrics-server's HTTP API does not expose.
    HeadBytes {
        #[arg(long, default_value_t = 100_000)]
        series: usize,
        #[arg(long, default_value_t = 60)]
        scrapes: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        corpus: Option<PathBuf>,
    },
    /// Encode each series' samples into block-sized chunks (as a 2 h block
    /// holds them) and print bytes per sample by metric name, with the
    /// share spent on timestamps (the same chunks with constant values).
    ChunkBytes {
        #[arg(long, default_value_t = 1820)]
        series: usize,
        #[arg(long, default_value_t = 480)]
        scrapes: u64,
        #[arg(long, default_value_t = 480)]
        chunk: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        corpus: Option<PathBuf>,
    },
    /// Scrape an exporter N times into a corpus file.
    RecordCorpus {
        #[arg(long, default_value = "http://127.0.0.1:9100/metrics")]
        url: String,
        #[arg(long, default_value_t = 5)]
        times: usize,
        #[arg(long, default_value_t = 1000)]
        every_ms: u64,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// remote_write endpoint
    #[arg(long, default_value = "http://127.0.0.1:9090/api/v1/write")]
    url: String,
    #[arg(long, default_value_t = 10_000)]
    series: usize,
    /// Concurrent connections (each owns a share of the series).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Samples per request.
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    /// Simulated scrape interval in milliseconds.
    #[arg(long, default_value_t = 15_000)]
    interval_ms: i64,
    /// Samples per second; flat out when absent.
    #[arg(long)]
    rate: Option<f64>,
    /// Scrapes per series.
    #[arg(long)]
    scrapes: Option<u64>,
    /// Total samples at most.
    #[arg(long)]
    samples: Option<u64>,
    /// Seconds to run at most.
    #[arg(long)]
    duration: Option<f64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// First timestamp; defaults so the last scrape (with --scrapes) is now.
    #[arg(long)]
    start_ms: Option<i64>,
    /// Replay a recorded corpus instead of synthetic series.
    #[arg(long)]
    corpus: Option<PathBuf>,
    #[arg(long)]
    tenant: Option<String>,
    /// Write the acknowledgement log (plan + acked request runs) here.
    #[arg(long)]
    log: Option<PathBuf>,
    /// After sending, GET this URL first (e.g. VictoriaMetrics' force_flush).
    #[arg(long)]
    before_verify: Option<String>,
    /// `/api/v1/query` URL to read samples back from.
    #[arg(long)]
    verify_query: Option<String>,
    /// The server's pid: report its CPU seconds while sending and its RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The server's data directories: report their size after sending
    /// (and after `--before-verify`).
    #[arg(long)]
    server_dir: Vec<PathBuf>,
    /// Hosts (instances) to read back.
    #[arg(long, default_value_t = 5)]
    verify_hosts: usize,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::RecordCorpus {
            url,
            times,
            every_ms,
            out,
        } => {
            let client = reqwest::Client::new();
            let text =
                corpus::record(&client, &url, times, Duration::from_millis(every_ms)).await?;
            std::fs::write(&out, text).with_context(|| format!("write {}", out.display()))?;
            Ok(())
        }
        Cmd::Run(a) => run_cmd(a).await,
        Cmd::HeadBytes {
            series,
            scrapes,
            seed,
            corpus,
        } => head_bytes(series, scrapes, seed, corpus),
        Cmd::ChunkBytes {
            series,
            scrapes,
            chunk,
            seed,
            corpus,
        } => chunk_bytes(series, scrapes, chunk, seed, corpus),
    }
}

/// The generator's series, or a recorded corpus replayed.
fn series_set(series: usize, seed: u64, corpus: Option<PathBuf>) -> anyhow::Result<SeriesSet> {
    Ok(match corpus {
        Some(p) => corpus::series_from_corpus(&std::fs::read_to_string(p)?, series, seed)?,
        None => SeriesSet::node_exporter(series, seed),
    })
}

fn head_bytes(
    series: usize,
    scrapes: u64,
    seed: u64,
    corpus: Option<PathBuf>,
) -> anyhow::Result<()> {
    use pharos_model::{Labels, Sample};
    let set = series_set(series, seed, corpus)?;
    let dir = tempfile::tempdir()?;
    let mut opts = pharos_tsdb::TsdbOptions::default();
    // the WAL is measured over HTTP; here only the head matters
    opts.wal.fsync = pharos_tsdb::FsyncPolicy::Never;
    let db = pharos_tsdb::Tsdb::open(dir.path(), opts)?;
    let labels: Vec<Labels> = set
        .specs
        .iter()
        .map(|s| Labels::from_pairs(s.labels.iter().cloned()))
        .collect();
    let interval = 15_000i64;
    let start = (now_ms() - scrapes as i64 * interval) / interval * interval;
    let t0 = Instant::now();
    let mut added = 0usize;
    for k in 0..scrapes {
        let t = start + k as i64 * interval;
        for chunk in (0..set.len()).collect::<Vec<_>>().chunks(2000) {
            let batch: Vec<(Labels, Vec<Sample>)> = chunk
                .iter()
                .map(|&i| {
                    (
                        labels[i].clone(),
                        vec![Sample {
                            t,
                            v: set.value(i, k),
                        }],
                    )
                })
                .collect();
            let r = db.append(&batch)?;
            anyhow::ensure!(r.errors.is_empty(), "append errors: {:?}", r.errors.first());
            added += r.added;
        }
    }
    let st = db.stats();
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "series": st.series,
            "samples": st.samples,
            "added": added,
            "append_s": t0.elapsed().as_secs_f64(),
            "chunk_bytes": st.chunk_bytes,
            "chunk_bytes_per_sample": st.chunk_bytes as f64 / st.samples.max(1) as f64,
            "head_memory_bytes": st.memory_bytes,
            "head_memory_bytes_per_series": st.memory_bytes as f64 / st.series.max(1) as f64,
        }))?
    );
    Ok(())
}

fn chunk_bytes(
    series: usize,
    scrapes: u64,
    chunk: usize,
    seed: u64,
    corpus: Option<PathBuf>,
) -> anyhow::Result<()> {
    use std::collections::BTreeMap;
    let set = series_set(series, seed, corpus)?;
    let interval = 15_000i64;
    let start = (now_ms() - scrapes as i64 * interval) / interval * interval;
    let encode = |vals: &dyn Fn(u64) -> f64| -> (usize, String) {
        let mut bytes = 0;
        let mut enc = String::new();
        let mut k = 0u64;
        while k < scrapes {
            let mut a = pharos_tsdb::ChunkAppender::new();
            while k < scrapes && a.len() < chunk {
                a.append(start + k as i64 * interval, vals(k));
                k += 1;
            }
            let (c, _) = a.finish_best();
            bytes += c.bytes().len();
            enc = format!("{:?}", c.encoding());
        }
        (bytes, enc)
    };
    #[derive(Default)]
    struct Family {
        series: usize,
        samples: u64,
        bytes: usize,
        time_bytes: usize,
        encodings: BTreeMap<String, usize>,
    }
    let mut by_name: BTreeMap<String, Family> = BTreeMap::new();
    for (i, spec) in set.specs.iter().enumerate() {
        let name = spec
            .labels
            .iter()
            .find(|(k, _)| k == "__name__")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let (b, enc) = encode(&|k| set.value(i, k));
        let (tb, _) = encode(&|_| 0.0);
        let f = by_name.entry(name).or_default();
        f.series += 1;
        f.samples += scrapes;
        f.bytes += b;
        f.time_bytes += tb;
        *f.encodings.entry(enc).or_default() += 1;
    }
    let (mut samples, mut bytes, mut tbytes) = (0u64, 0usize, 0usize);
    for (name, f) in &by_name {
        samples += f.samples;
        bytes += f.bytes;
        tbytes += f.time_bytes;
        let s = f.samples as f64;
        println!(
            "{name:55} {:5} series {:6.3} B/sample ({:5.2} bits, time-only {:5.2} bits) {:?}",
            f.series,
            f.bytes as f64 / s,
            f.bytes as f64 * 8.0 / s,
            f.time_bytes as f64 * 8.0 / s,
            f.encodings,
        );
    }
    println!(
        "TOTAL {} series {samples} samples {bytes} bytes: {:.4} B/sample, time-only {:.4} B/sample",
        set.len(),
        bytes as f64 / samples as f64,
        tbytes as f64 / samples as f64
    );
    Ok(())
}

async fn run_cmd(a: RunArgs) -> anyhow::Result<()> {
    let set = match &a.corpus {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))?;
            corpus::series_from_corpus(&text, a.series, a.seed)?
        }
        None => SeriesSet::node_exporter(a.series, a.seed),
    };
    let interval = a.interval_ms.max(1);
    let start_ms = a.start_ms.unwrap_or_else(|| {
        let back = a.scrapes.unwrap_or(240) as i64 * interval;
        (now_ms() - back) / interval * interval
    });
    let plan = Arc::new(Plan::new(
        Arc::new(set),
        a.connections,
        a.batch,
        start_ms,
        interval,
    ));
    let opts = RunOptions {
        url: a.url.clone(),
        rate: a.rate,
        scrapes: a.scrapes,
        max_samples: a.samples,
        duration: a.duration.map(Duration::from_secs_f64),
        tenant: a.tenant.clone(),
        ..RunOptions::default()
    };
    let cpu0 = self_cpu();
    let server0 = a.server_pid.and_then(proc_cpu);
    let report = run(plan.clone(), opts).await?;
    let cpu = self_cpu() - cpu0;
    let server_cpu = a
        .server_pid
        .and_then(proc_cpu)
        .zip(server0)
        .map(|(b, a)| b - a);
    let acked = report.acked_samples(&plan);
    let sent = report.sent_samples(&plan);
    let secs = report.elapsed.as_secs_f64();
    let mut summary = serde_json::json!({
        "url": a.url,
        "series": plan.set.len(),
        "connections": plan.shards,
        "batch": plan.batch,
        "start_ms": plan.start_ms,
        "interval_ms": plan.interval_ms,
        "seed": plan.set.seed,
        "elapsed_s": secs,
        "requests": report.requests(|_| true),
        "requests_acked": report.requests(|o| o == pharos_loadgen::Outcome::Acked),
        "requests_failed": report.requests(|o| o == pharos_loadgen::Outcome::Failed),
        "requests_rejected": rejected_by_status(&report),
        "samples_sent": sent,
        "samples_acked": acked,
        "samples_per_s": acked as f64 / secs.max(1e-9),
        "loadgen_cpu_s": cpu,
    });
    if let Some(c) = server_cpu {
        summary["server_cpu_s"] = c.into();
        summary["samples_per_server_cpu_s"] = (acked as f64 / c.max(1e-9)).into();
    }
    if let Some(pid) = a.server_pid {
        let (rss, hwm) = proc_rss(pid);
        summary["server_rss_bytes"] = rss.into();
        summary["server_rss_peak_bytes"] = hwm.into();
        summary["server_rss_bytes_per_series"] = (rss as f64 / plan.set.len() as f64).into();
    }
    if let Some(path) = &a.log {
        let log = serde_json::json!({ "summary": summary, "acked_runs": report.acked_runs() });
        std::fs::write(path, serde_json::to_vec(&log)?)?;
    }
    if let Some(q) = &a.verify_query {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?;
        if let Some(u) = &a.before_verify {
            client.get(u).send().await?.error_for_status()?;
        }
        if !a.server_dir.is_empty() {
            let (apparent, allocated) = a
                .server_dir
                .iter()
                .map(|d| dir_bytes(d))
                .fold((0, 0), |x, y| (x.0 + y.0, x.1 + y.1));
            summary["disk_bytes_apparent"] = apparent.into();
            summary["disk_bytes_allocated"] = allocated.into();
            summary["disk_bytes_per_sample"] = (apparent as f64 / acked.max(1) as f64).into();
        }
        // hosts spread over the whole set, not just the first ones
        let mut hosts: Vec<String> = Vec::new();
        for s in &plan.set.specs {
            if let Some((_, v)) = s.labels.iter().find(|(k, _)| k == "instance")
                && hosts.last() != Some(v)
            {
                hosts.push(v.clone());
            }
        }
        let step = (hosts.len() / a.verify_hosts.max(1)).max(1);
        let picked: Vec<String> = hosts
            .into_iter()
            .step_by(step)
            .take(a.verify_hosts)
            .collect();
        let at = plan.timestamp(report.shards.iter().map(Vec::len).max().unwrap_or(0) as u64) + 1;
        let t0 = Instant::now();
        let v = verify(
            &client,
            q,
            &plan,
            &report,
            &picked,
            at.min(now_ms() + 600_000),
        )
        .await?;
        summary["verify"] = serde_json::json!({
            "hosts": picked.len(),
            "series_returned": v.series_returned,
            "expected": v.expected,
            "exact": v.exact,
            "mismatched": v.mismatched,
            "missing": v.missing,
            "duplicates": v.duplicates,
            "unexpected": v.unexpected,
            "lossless": v.is_lossless(),
            "examples": v.examples,
            "query_s": t0.elapsed().as_secs_f64(),
        });
    }
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

/// Non-2xx answers counted by status code.
fn rejected_by_status(report: &pharos_loadgen::RunReport) -> serde_json::Value {
    let mut by: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for o in report.shards.iter().flatten() {
        if let pharos_loadgen::Outcome::Rejected(code) = o {
            *by.entry(code.to_string()).or_default() += 1;
        }
    }
    serde_json::json!(by)
}

/// This process' CPU seconds (user + system), from /proc.
fn self_cpu() -> f64 {
    stat_cpu("/proc/self/stat").unwrap_or(0.0)
}

fn proc_cpu(pid: u32) -> Option<f64> {
    stat_cpu(&format!("/proc/{pid}/stat"))
}

/// (VmRSS, VmHWM) in bytes.
fn proc_rss(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// (apparent, allocated) bytes of every file under `dir`; preallocated
/// segments make the two differ.
fn dir_bytes(dir: &std::path::Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => (m.len(), m.blocks() * 512),
            Err(_) => (0, 0),
        })
        .fold((0, 0), |x, y| (x.0 + y.0, x.1 + y.1))
}

/// utime + stime of a /proc stat file, in seconds (USER_HZ is 100 on Linux).
fn stat_cpu(path: &str) -> Option<f64> {
    std::fs::read_to_string(path).ok().and_then(|s| {
        let rest = s.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // fields 14 and 15 of stat; the slice starts at field 3
        let u: f64 = f.get(11)?.parse().ok()?;
        let st: f64 = f.get(12)?.parse().ok()?;
        Some((u + st) / 100.0)
    })
}
