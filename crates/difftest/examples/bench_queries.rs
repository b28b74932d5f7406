//! Dashboard query latency: Pharos `metrics-server` vs Prometheus 2.42 vs
//! VictoriaMetrics 1.79 over the same data, through each one's HTTP API.
//! Not a test: run by hand, one machine, nothing else of note running.
//!
//! `cargo build --release --bin metrics-server`, then
//! `cargo run --release -p pharos-difftest --example bench_queries -- [REPS [COPIES]]`
//! with `METRICS_SERVER` pointing at the binary (default
//! `target/release/metrics-server`), `prometheus`, `promtool` and
//! `victoria-metrics` on PATH (VictoriaMetrics is skipped when absent).
//! `BENCH_FILTER=p95` runs only the queries whose label contains that;
//! `BENCH_HOLD=1` loads the servers, prints their ports and keeps them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pharos_difftest::compare::{Outcome, compare};
use pharos_difftest::data::{Config, DataSet, START_MS, format_value, generate};
use serde_json::Value as Json;

const QUERIES: &[(&str, &str)] = &[
    (
        "cpu busy by instance",
        r#"sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))"#,
    ),
    (
        "cpu %",
        r#"100 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100"#,
    ),
    (
        "disk used %",
        "100 * (1 - node_filesystem_avail_bytes / node_filesystem_size_bytes)",
    ),
    (
        "p95 latency",
        "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    ),
    (
        "topk cpu",
        "topk(5, sum by (instance, mode) (rate(node_cpu_seconds_total[5m])))",
    ),
    (
        "regex matcher",
        r#"sum by (instance) (rate(node_network_receive_bytes_total{device=~"eth.*", instance=~"node-(0|1):.*"}[5m]))"#,
    ),
];

/// One server under test, killed when dropped.
struct Server {
    name: &'static str,
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A bare HTTP/1.0 exchange, so client overhead is the same for all three.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    s.write_all(body).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    let status = String::from_utf8_lossy(&buf[..split])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("bad status line")?;
    Ok((status, buf[split + 4..].to_vec()))
}

fn wait_ready(s: &mut Server, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(st)) = s.child.try_wait() {
            panic!("{} exited with {st}", s.name);
        }
        if matches!(http(s.port, "GET", path, "", b""), Ok((200, _))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{} not ready after 60 s", s.name);
}

fn spawn(name: &'static str, cmd: &mut Command, dir: tempfile::TempDir, port: u16) -> Server {
    let log = std::fs::File::create(dir.path().join("log")).expect("log file");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    Server {
        name,
        child,
        port,
        _dir: dir,
    }
}

fn start_prometheus(data: &DataSet) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let om = dir.path().join("data.om");
    std::fs::write(&om, data.to_openmetrics()).expect("write openmetrics");
    let tsdb = dir.path().join("tsdb");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&tsdb)
        .output()
        .expect("running promtool");
    assert!(
        out.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 15s\n").expect("config");
    let port = free_port();
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=100y")
        .arg("--log.level=warn");
    let mut s = spawn("prometheus", &mut cmd, dir, port);
    wait_ready(&mut s, "/-/ready");
    s
}

fn start_vm(data: &DataSet) -> Option<Server> {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut cmd = Command::new("victoria-metrics");
    cmd.arg(format!(
        "-storageDataPath={}",
        dir.path().join("data").display()
    ))
    .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
    .arg("-retentionPeriod=100y")
    .arg("-search.latencyOffset=0s")
    // repeated identical queries would otherwise be answered from its
    // rollup cache, which neither of the others has
    .arg("-search.disableCache")
    .arg("-loggerLevel=WARN");
    if Command::new("victoria-metrics")
        .arg("-version")
        .output()
        .is_err()
    {
        eprintln!("victoria-metrics not found: skipped");
        return None;
    }
    let mut s = spawn("victoria-metrics", &mut cmd, dir, port);
    wait_ready(&mut s, "/health");
    // Prometheus text format with millisecond timestamps, a chunk of series
    // per request
    for chunk in data.series.chunks(100) {
        let mut body = String::new();
        for (labels, samples) in chunk {
            let name = labels.metric_name().unwrap_or_default();
            let rest: Vec<String> = labels
                .iter()
                .filter(|l| l.name != "__name__")
                .map(|l| format!("{}={:?}", l.name, l.value))
                .collect();
            let head = format!("{name}{{{}}}", rest.join(","));
            for smp in samples {
                body.push_str(&format!("{head} {} {}\n", format_value(smp.v), smp.t));
            }
        }
        let (st, b) = http(
            s.port,
            "POST",
            "/api/v1/import/prometheus",
            "",
            body.as_bytes(),
        )
        .expect("vm import");
        assert!(st < 300, "vm import: {st} {}", String::from_utf8_lossy(&b));
    }
    let _ = http(s.port, "GET", "/internal/force_flush", "", b"");
    Some(s)
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field(tag: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// A remote_write 1.0 `WriteRequest` with every series' samples in
/// `[from, to)`.
fn write_request(data: &DataSet, from: i64, to: i64) -> Vec<u8> {
    let mut req = Vec::new();
    for (labels, samples) in &data.series {
        let lo = samples.partition_point(|s| s.t < from);
        let hi = samples.partition_point(|s| s.t < to);
        if lo == hi {
            continue;
        }
        let mut ts = Vec::new();
        for l in labels.iter() {
            let mut lb = Vec::new();
            field(0x0a, l.name.as_bytes(), &mut lb);
            field(0x12, l.value.as_bytes(), &mut lb);
            field(0x0a, &lb, &mut ts);
        }
        for s in &samples[lo..hi] {
            let mut sb = vec![0x09];
            sb.extend_from_slice(&s.v.to_le_bytes());
            sb.push(0x10);
            varint(s.t as u64, &mut sb);
            field(0x12, &sb, &mut ts);
        }
        field(0x0a, &ts, &mut req);
    }
    req
}

fn start_pharos(data: &DataSet, bin: &Path) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let cfg = dir.path().join("pharos.yaml");
    std::fs::write(
        &cfg,
        format!(
            "server:\n  grpc_listen_address: 127.0.0.1:{}\n  log_level: warn\n\
             storage:\n  backend: filesystem\n  filesystem:\n    path: {d}/objects\n\
             metrics:\n  http_listen_address: 127.0.0.1:{port}\n  local_path: {d}/local\n  maintenance_interval: 1s\n\
             limits:\n  ingestion_rate: 1000000000\n  ingestion_burst: 1000000000\n  max_active_series: 0\n",
            free_port(),
            d = dir.path().display()
        ),
    )
    .expect("config");
    let mut cmd = Command::new(bin);
    cmd.arg("--config.file").arg(&cfg);
    let mut s = spawn("pharos", &mut cmd, dir, port);
    wait_ready(&mut s, "/ready");
    // every series advances together, 5 min at a time, so nothing falls
    // outside the out-of-order window
    let (lo, hi) = data.bounds().expect("data");
    let mut enc = snap::raw::Encoder::new();
    let mut t = lo;
    while t <= hi {
        let body = enc
            .compress_vec(&write_request(data, t, t + 300_000))
            .expect("snappy");
        let (st, b) = http(
            s.port,
            "POST",
            "/api/v1/write",
            "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n",
            &body,
        )
        .expect("remote write");
        assert!(
            st < 300,
            "pharos write: {st} {}",
            String::from_utf8_lossy(&b)
        );
        t += 300_000;
    }
    // A server that has run for a while holds only the last hours in its
    // head, the rest in blocks (as Prometheus' and VictoriaMetrics' loads
    // here end up in blocks and parts): wait until maintenance has cut
    // and uploaded them, twice in a row.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut settled = 0;
    while settled < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let m = http(s.port, "GET", "/metrics", "", b"")
            .map(|(_, b)| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let blocks = m.lines().any(|l| {
            l.strip_prefix("pharos_tsdb_blocks ")
                .is_some_and(|v| v.trim() != "0")
        });
        let uploaded = m
            .lines()
            .any(|l| l.trim() == "pharos_tsdb_blocks_pending_upload 0");
        settled = if blocks && uploaded { settled + 1 } else { 0 };
    }
    assert!(settled >= 2, "pharos did not cut its blocks within 120 s");
    s
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// Median wall time of `reps` runs (after one warm-up) and the last answer.
fn time_query(port: u16, form: &str, reps: usize) -> (Duration, Json) {
    let run = || {
        let t0 = Instant::now();
        let (_, body) = http(
            port,
            "POST",
            "/api/v1/query_range",
            "Content-Type: application/x-www-form-urlencoded\r\n",
            form.as_bytes(),
        )
        .expect("query");
        (t0.elapsed(), body)
    };
    let (_, mut body) = run();
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let (d, b) = run();
        times.push(d);
        body = b;
    }
    times.sort();
    let json = serde_json::from_slice(&body).unwrap_or(Json::Null);
    (times[times.len() / 2], json)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(9);
    // the generator makes three hosts; copies with renamed instances give
    // a dashboard-sized fleet
    let copies: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let bin = std::env::var_os("METRICS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/release/metrics-server"));
    // 6 h at 15 s, moved so that it ends a little before now: each system
    // then treats it as fresh data (head block, retention, caches)
    let mut data = generate(&Config {
        scrapes: 1440,
        ..Config::default()
    });
    data.series = pharos_difftest::data::scaled_copies(&data.series, copies);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let shift = (now - 7 * 3_600_000 - START_MS).div_euclid(3_600_000) * 3_600_000;
    for (_, s) in &mut data.series {
        for smp in s.iter_mut() {
            smp.t += shift;
        }
    }
    let (lo, hi) = data.bounds().expect("data");
    println!(
        "data: {} series, {} samples, {} .. {} (ms)",
        data.series.len(),
        data.samples(),
        lo,
        hi
    );

    let t0 = Instant::now();
    let prom = start_prometheus(&data);
    println!("prometheus loaded in {:?}", t0.elapsed());
    let t0 = Instant::now();
    let pharos = start_pharos(&data, &bin);
    println!("pharos loaded in {:?}", t0.elapsed());
    let t0 = Instant::now();
    let vm = start_vm(&data);
    println!("victoria-metrics loaded in {:?}", t0.elapsed());
    // let VictoriaMetrics make the flushed parts searchable
    std::thread::sleep(Duration::from_secs(3));
    if std::env::var_os("BENCH_HOLD").is_some() {
        // keep the loaded servers for measurements by hand
        println!(
            "holding: pharos 127.0.0.1:{}, prometheus 127.0.0.1:{}, end {}",
            pharos.port, prom.port, hi
        );
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }

    let end = hi - hi.rem_euclid(60_000);
    println!(
        "| query | range / step | series×points | Pharos ms | Prometheus ms | VictoriaMetrics ms | Pharos = Prometheus |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut mismatches = 0;
    // BENCH_FILTER=<text> keeps the queries whose label contains it
    let filter = std::env::var("BENCH_FILTER").unwrap_or_default();
    for (label, q) in QUERIES.iter().filter(|(l, _)| l.contains(filter.as_str())) {
        for (range_h, step_s) in [(1, 15), (1, 60), (6, 15), (6, 60)] {
            let start = end - range_h * 3_600_000 + step_s * 1000;
            let form = format!(
                "query={}&start={}&end={}&step={step_s}",
                urlencode(q),
                secs(start),
                secs(end)
            );
            let (tp, jp) = time_query(prom.port, &form, reps);
            let (tx, jx) = time_query(pharos.port, &form, reps);
            let vmt = vm.as_ref().map(|v| time_query(v.port, &form, reps).0);
            let po = Outcome::from_prometheus(&jp);
            let xo = Outcome::from_prometheus(&jx);
            let same = match compare(&po, &xo, false) {
                Ok(()) => "yes".to_string(),
                Err(e) => {
                    mismatches += 1;
                    eprintln!("MISMATCH {q} {range_h}h/{step_s}s: {e}");
                    "NO".to_string()
                }
            };
            let points: usize = jp["data"]["result"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .map(|s| s["values"].as_array().map_or(0, Vec::len))
                        .sum()
                })
                .unwrap_or(0);
            let n = jp["data"]["result"].as_array().map_or(0, Vec::len);
            println!(
                "| {label} | {range_h} h / {step_s} s | {n}×{} | {} | {} | {} | {same} |",
                points / n.max(1),
                ms(tx),
                ms(tp),
                vmt.map_or("-".into(), ms)
            );
        }
    }
    println!("mismatches: {mismatches}");
}
