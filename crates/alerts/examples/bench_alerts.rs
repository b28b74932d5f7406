//! Ingest throughput of the alert-router against Alertmanager 0.25.
//!
//! Both servers run as separate processes with the same config: the
//! `alert-router` binary (`$ALERT_ROUTER`, default
//! `target/release/alert-router`) and upstream's
//! (`$ALERTMANAGER`, default `/usr/bin/prometheus-alertmanager`). Each
//! gets 1k silences, then a warm-up pass that creates the 10k aggregation
//! groups, then a timed run posting pre-encoded batches (bodies are built
//! once, so the client spends its time on I/O, not JSON) over a few
//! keep-alive connections. Reported per server: accepted alerts/s, server
//! CPU µs per accepted alert (utime+stime from `/proc/<pid>/stat`), the
//! client's own CPU share, and resident memory.
//!
//! `cargo run --release -p pharos-alerts --example bench_alerts -- [secs] [connections]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const GROUPS: usize = 10_000;
const SILENCES: usize = 1_000;
const BATCH: usize = 100;

/// Every group waits an hour, so the run measures ingest, not sends.
const CONFIG: &str = "route:\n  receiver: hook\n  group_by: [group]\n  group_wait: 1h\n  group_interval: 1h\n  repeat_interval: 4h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:9/never\n";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// utime+stime of a process in seconds. Fields are counted after the
/// `)` closing the command name, which may itself contain spaces.
fn cpu_secs(pid: &str) -> f64 {
    let ticks = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // After ")": state is field 3, utime 14, stime 15 (1-based).
            let u: f64 = f.get(11)?.parse().ok()?;
            let st: f64 = f.get(12)?.parse().ok()?;
            Some((u + st) / ticks)
        })
        .unwrap_or(0.0)
}

fn iso(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

async fn wait_ready(client: &reqwest::Client, base: &str) -> bool {
    for _ in 0..400 {
        if let Ok(r) = client.get(format!("{base}/-/ready")).send().await
            && r.status().is_success()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn make_silences(client: &reqwest::Client, base: &str) -> usize {
    let now = std::time::SystemTime::now();
    let end = now + Duration::from_secs(3600);
    let mut ok = 0;
    for i in 0..SILENCES {
        let body = serde_json::json!({
            "matchers": [{"name": "group", "value": format!("g{}", i * (GROUPS / SILENCES)), "isRegex": false, "isEqual": true}],
            "startsAt": iso(now), "endsAt": iso(end), "createdBy": "bench", "comment": "bench"
        });
        if let Ok(r) = client
            .post(format!("{base}/api/v2/silences"))
            .json(&body)
            .send()
            .await
            && r.status().is_success()
        {
            ok += 1;
        }
    }
    ok
}

/// `GROUPS / BATCH` bodies that together hold one alert per group; each
/// is posted again and again, as Prometheus re-sends firing alerts.
fn bodies() -> Vec<Vec<u8>> {
    let now = std::time::SystemTime::now();
    let (starts, ends) = (iso(now), iso(now + Duration::from_secs(4 * 3600)));
    (0..GROUPS / BATCH)
        .map(|b| {
            let batch: Vec<serde_json::Value> = (0..BATCH)
                .map(|k| {
                    let i = b * BATCH + k;
                    serde_json::json!({
                        "labels": {"alertname": "Bench", "group": format!("g{i}"), "instance": format!("i{}", i % 50), "job": "bench"},
                        "annotations": {"summary": "load"},
                        "startsAt": starts,
                        "endsAt": ends,
                        "generatorURL": "http://prometheus:9090/graph",
                    })
                })
                .collect();
            serde_json::to_vec(&batch).unwrap_or_default()
        })
        .collect()
}

/// Posts the bodies round-robin from `conns` tasks until `until`, or once
/// each when `until` is `None`; returns (accepted, failed) alerts.
async fn load(
    client: &reqwest::Client,
    base: &str,
    bodies: &Arc<Vec<Vec<u8>>>,
    conns: usize,
    until: Option<Instant>,
) -> (u64, u64) {
    let accepted = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let url = format!("{base}/api/v2/alerts");
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (client, url, bodies) = (client.clone(), url.clone(), bodies.clone());
        let (accepted, failed, next) = (accepted.clone(), failed.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap_or(0);
                match until {
                    Some(t) if Instant::now() >= t => break,
                    None if i >= bodies.len() => break,
                    _ => {}
                }
                let body = bodies[i % bodies.len()].clone();
                let ok = match client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => {
                        let ok = r.status().is_success();
                        // Drains the body so the connection is reused.
                        let _ = r.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                let c = if ok { &accepted } else { &failed };
                c.fetch_add(BATCH as u64, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    (
        accepted.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    )
}

async fn groups(client: &reqwest::Client, base: &str) -> usize {
    match client
        .get(format!("{base}/api/v2/alerts/groups"))
        .send()
        .await
    {
        Ok(r) => r
            .json::<Vec<serde_json::Value>>()
            .await
            .map(|v| v.len())
            .unwrap_or(0),
        Err(_) => 0,
    }
}

async fn run_one(name: &str, base: &str, pid: u32, secs: u64, conns: usize) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conns)
        .tcp_nodelay(true)
        .build()
        .unwrap_or_default();
    if !wait_ready(&client, base).await {
        println!("| {name} | not ready, skipped |");
        return;
    }
    let bodies = Arc::new(bodies());
    let s = make_silences(&client, base).await;
    let (warm, _) = load(&client, base, &bodies, conns, None).await;
    let rss0 = rss_kib(pid);
    let spid = pid.to_string();
    let (cpu0, self0) = (cpu_secs(&spid), cpu_secs("self"));
    let t = Instant::now();
    let (ok, bad) = load(
        &client,
        base,
        &bodies,
        conns,
        Some(t + Duration::from_secs(secs)),
    )
    .await;
    let wall = t.elapsed().as_secs_f64();
    let (cpu1, self1) = (cpu_secs(&spid), cpu_secs("self"));
    let rss1 = rss_kib(pid);
    let g = groups(&client, base).await;
    let per_alert_us = if ok == 0 {
        f64::NAN
    } else {
        (cpu1 - cpu0) * 1e6 / ok as f64
    };
    println!(
        "| {name} | {:.0} | {per_alert_us:.1} | {:.2} | {:.2} | {ok} | {bad} | {g} (warm-up {warm}) | {s} | {} | {} |",
        ok as f64 / wall,
        (cpu1 - cpu0) / wall,
        (self1 - self0) / wall,
        rss0 / 1024,
        rss1 / 1024
    );
}

/// Starts a server, benchmarks it, stops it.
async fn bench_process(
    name: &str,
    mut cmd: std::process::Command,
    port: u16,
    secs: u64,
    conns: usize,
) {
    match cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            run_one(
                name,
                &format!("http://127.0.0.1:{port}"),
                child.id(),
                secs,
                conns,
            )
            .await;
            let _ = child.kill();
            let _ = child.wait();
        }
        Err(e) => println!("| {name} | cannot start ({e}), skipped |"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let conns: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg_path = dir.path().join("alertmanager.yml");
    std::fs::write(&cfg_path, CONFIG).expect("write config");

    println!(
        "| server | accepted alerts/s | server CPU µs/alert | server cores busy | client cores busy | accepted | failed | groups after | silences | RSS before MiB | RSS after MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");

    if only.is_empty() || only == "pharos" {
        let bin =
            std::env::var("ALERT_ROUTER").unwrap_or_else(|_| "target/release/alert-router".into());
        let (port, grpc) = (free_port(), free_port());
        let mut cmd = std::process::Command::new(&bin);
        cmd.arg(format!("--config.file={}", cfg_path.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("router").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg(format!("--server.grpc-listen-port={grpc}"));
        bench_process("pharos alert-router", cmd, port, secs, conns).await;
    }

    if only.is_empty() || only == "am" {
        let am = std::env::var("ALERTMANAGER")
            .unwrap_or_else(|_| "/usr/bin/prometheus-alertmanager".into());
        let port = free_port();
        let mut cmd = std::process::Command::new(&am);
        cmd.arg(format!("--config.file={}", cfg_path.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("am").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=");
        bench_process("Alertmanager 0.25", cmd, port, secs, conns).await;
    }
}
