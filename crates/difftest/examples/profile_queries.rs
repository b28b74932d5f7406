//! The dashboard queries of `bench_queries` run in-process against a
//! Pharos TSDB (no HTTP, no other system), for profiling the engine and
//! the read path: `cargo run --release -p pharos-difftest --example
//! profile_queries -- [REPS [COPIES [blocks|head [FILTER]]]]`.
//!
//! With `blocks` (the default) the TSDB's maintenance cuts the older part
//! of the 6 h into blocks first, as a running server does within a minute;
//! `head` keeps everything in the head. FILTER keeps the queries whose
//! label contains it; `PROFILE_RANGE=6h/60s` keeps one range and step. Prints the median wall time and the mean CPU time
//! (all threads) per query and range. Allocates through jemalloc, as the
//! servers do.

use std::time::{Duration, Instant};

use pharos_difftest::data::{Config, START_MS, generate};
use pharos_model::{Labels, Matcher, Sample};
use pharos_promql::{Engine, EngineOptions, QueryError, Queryable, Series};
use pharos_tsdb::{Tsdb, TsdbOptions};

const QUERIES: &[(&str, &str)] = &[
    (
        "cpu busy",
        r#"sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))"#,
    ),
    (
        "cpu %",
        r#"100 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100"#,
    ),
    (
        "disk %",
        "100 * (1 - node_filesystem_avail_bytes / node_filesystem_size_bytes)",
    ),
    (
        "p95",
        "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    ),
    (
        "topk",
        "topk(5, sum by (instance, mode) (rate(node_cpu_seconds_total[5m])))",
    ),
    (
        "regex",
        r#"sum by (instance) (rate(node_network_receive_bytes_total{device=~"eth.*", instance=~"node-(0|1):.*"}[5m]))"#,
    ),
];

// the allocator the servers are built with
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

struct Db(Tsdb);

impl Queryable for Db {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let rows = self
            .0
            .select(matchers, mint, maxt)
            .map_err(|e| QueryError::Storage(e.to_string()))?;
        Ok(rows
            .into_iter()
            .map(|(labels, samples)| Series { labels, samples })
            .collect())
    }

    fn select_map(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        f: &pharos_promql::SeriesMap<'_>,
    ) -> Result<Vec<Series>, QueryError> {
        // as the server's TsdbQueryable does: the engine's per-series work
        // runs where the TSDB reads each series
        self.0
            .select_map(matchers, mint, maxt, |labels, samples| {
                f(Series { labels, samples })
            })
            .map_err(|e| match e {
                pharos_tsdb::SelectError::Map(e) => e,
                pharos_tsdb::SelectError::Storage(e) => QueryError::Storage(e.to_string()),
            })
    }
}

/// Writes a matrix roughly as the query API does (`[secs.millis,"value"]`
/// per point, the value through a `String` of its own), returning points
/// and bytes written.
fn format_answer(v: &pharos_promql::Value) -> (usize, usize) {
    use std::fmt::Write;
    let mut out = String::new();
    let mut points = 0;
    if let pharos_promql::Value::Matrix(series) = v {
        for (l, samples) in series {
            let _ = write!(out, "{{\"metric\":{l:?},\"values\":[");
            for s in samples {
                let value = format!("{}", s.v);
                let _ = write!(out, "[{}.{:03},\"{value}\"],", s.t / 1000, s.t % 1000);
                points += 1;
            }
            out.push_str("]}");
        }
    }
    (points, out.len())
}

/// User plus system time of the whole process, threads included, in
/// 10 ms ticks (Linux' USER_HZ).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    // fields 14 and 15 of the file; the split starts at field 3
    after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(15);
    let copies: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let blocks = args.next().is_none_or(|a| a != "head");
    let filter = args.next().unwrap_or_default();
    let ranges = std::env::var("PROFILE_RANGE").ok();

    let base = generate(&Config {
        scrapes: 1440,
        ..Config::default()
    });
    let series = pharos_difftest::data::scaled_copies(&base.series, copies);
    let hi = series
        .iter()
        .filter_map(|(_, s)| s.last().map(|x| x.t))
        .max()
        .unwrap_or(START_MS);

    let dir = tempfile::tempdir().expect("temp dir");
    let db = Tsdb::open(dir.path(), TsdbOptions::default()).expect("open tsdb");
    let t0 = Instant::now();
    let mut t = START_MS;
    while t <= hi {
        let batch: Vec<(Labels, Vec<Sample>)> = series
            .iter()
            .map(|(l, s)| {
                let lo = s.partition_point(|x| x.t < t);
                let up = s.partition_point(|x| x.t < t + 300_000);
                (l.clone(), s[lo..up].to_vec())
            })
            .filter(|(_, s)| !s.is_empty())
            .collect();
        db.append(&batch).expect("append");
        t += 300_000;
    }
    if blocks {
        db.maintain().expect("maintain");
    }
    let st = db.stats();
    println!(
        "loaded {} series, {} samples in the head, in {:?}",
        st.series,
        st.samples,
        t0.elapsed()
    );

    let q = Db(db);
    let engine = Engine::new(EngineOptions::default());
    let end = hi - hi.rem_euclid(60_000);
    for (label, query) in QUERIES {
        if !label.contains(&filter) {
            continue;
        }
        for (range_h, step_s) in [(1i64, 15i64), (6, 15), (6, 60)] {
            // PROFILE_RANGE=6h/60s keeps that range and step only
            if ranges
                .as_deref()
                .is_some_and(|r| r != format!("{range_h}h/{step_s}s"))
            {
                continue;
            }
            let start = end - range_h * 3_600_000 + step_s * 1000;
            engine
                .range(&q, query, start, end, step_s * 1000)
                .expect("query");
            let cpu0 = cpu_ticks();
            let mut times: Vec<Duration> = (0..reps)
                .map(|_| {
                    let t0 = Instant::now();
                    engine
                        .range(&q, query, start, end, step_s * 1000)
                        .expect("query");
                    t0.elapsed()
                })
                .collect();
            let cpu = (cpu_ticks() - cpu0) as f64 * 10.0 / reps.max(1) as f64;
            times.sort();
            // what writing the answer costs, the way the HTTP API writes
            // it (a formatted string per value): not part of the engine,
            // but of every dashboard query's latency
            let answer = engine
                .range(&q, query, start, end, step_s * 1000)
                .expect("query");
            let t0 = Instant::now();
            let (points, bytes) = format_answer(&answer);
            let fmt = t0.elapsed();
            println!(
                "{label:>9} {range_h} h / {step_s:>2} s: {:7.2} ms wall (median; {:.2} fastest, {:.2} p90), \
                 {cpu:7.1} ms cpu (mean); {points} points written as JSON-like text ({bytes} B) in {:.2} ms",
                times[times.len() / 2].as_secs_f64() * 1000.0,
                times[0].as_secs_f64() * 1000.0,
                times[times.len() * 9 / 10].as_secs_f64() * 1000.0,
                fmt.as_secs_f64() * 1000.0
            );
        }
    }
}
