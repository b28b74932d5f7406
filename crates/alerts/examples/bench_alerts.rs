//! Ingest throughput of the alert-router against Alertmanager 0.25.
//!
//! Starts the router in this process and, when found, upstream's binary
//! (`/usr/bin/prometheus-alertmanager` or `$ALERTMANAGER`) with the same
//! config; creates 1k silences on each, then posts batches of alerts that
//! form 10k aggregation groups from several concurrent clients for a fixed
//! time and prints accepted alerts/s and resident memory.
//!
//! `cargo run --release -p pharos-alerts --example bench_alerts -- [secs] [clients]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pharos_alerts::{AlertsApi, AlertsConfig};

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
    for _ in 0..200 {
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

/// Posts batches for `secs` from `clients` tasks; returns accepted alerts.
async fn load(base: &str, secs: u64, clients: usize) -> (u64, u64) {
    let accepted = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let base = base.to_owned();
        let (accepted, failed) = (accepted.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut n: usize = c * 7919;
            while Instant::now() < end {
                let now = std::time::SystemTime::now();
                let batch: Vec<serde_json::Value> = (0..BATCH)
                    .map(|k| {
                        let i = n + k;
                        serde_json::json!({
                            "labels": {"alertname": "Bench", "group": format!("g{}", i % GROUPS), "instance": format!("i{}", i % 50)},
                            "annotations": {"summary": "load"},
                            "startsAt": iso(now),
                            "endsAt": iso(now + Duration::from_secs(3600)),
                        })
                    })
                    .collect();
                n += BATCH;
                match client
                    .post(format!("{base}/api/v2/alerts"))
                    .json(&batch)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        accepted.fetch_add(BATCH as u64, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(BATCH as u64, Ordering::Relaxed);
                    }
                }
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

async fn run_one(name: &str, base: &str, pid: u32, secs: u64, clients: usize) {
    let client = reqwest::Client::new();
    if !wait_ready(&client, base).await {
        println!("{name}: not ready, skipped");
        return;
    }
    let rss0 = rss_kib(pid);
    let t = Instant::now();
    let s = make_silences(&client, base).await;
    let sil_secs = t.elapsed().as_secs_f64();
    let (ok, bad) = load(base, secs, clients).await;
    let rss1 = rss_kib(pid);
    let g = groups(&client, base).await;
    println!(
        "| {name} | {:.0} | {ok} | {bad} | {g} | {s} in {sil_secs:.2}s | {} | {} |",
        ok as f64 / secs as f64,
        rss0 / 1024,
        rss1 / 1024
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let clients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg_path = dir.path().join("alertmanager.yml");
    std::fs::write(&cfg_path, CONFIG).expect("write config");

    println!(
        "| server | accepted alerts/s | accepted | failed | groups after | silences | RSS before MiB | RSS after MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|");

    let port = free_port();
    let cfg = AlertsConfig {
        http_listen_address: format!("127.0.0.1:{port}"),
        config_file: Some(cfg_path.clone()),
        local_path: dir.path().join("router"),
        cluster_listen_address: String::new(),
        ..AlertsConfig::default()
    };
    let api = AlertsApi::from_config(&cfg).expect("router config");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    let app = pharos_alerts::router(api.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    run_one(
        "pharos alert-router (in-process)",
        &format!("http://127.0.0.1:{port}"),
        std::process::id(),
        secs,
        clients,
    )
    .await;
    api.shutdown().await;
    server.abort();

    let am =
        std::env::var("ALERTMANAGER").unwrap_or_else(|_| "/usr/bin/prometheus-alertmanager".into());
    let port = free_port();
    let child = std::process::Command::new(&am)
        .arg(format!("--config.file={}", cfg_path.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("am").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match child {
        Ok(mut child) => {
            run_one(
                "Alertmanager 0.25",
                &format!("http://127.0.0.1:{port}"),
                child.id(),
                secs,
                clients,
            )
            .await;
            let _ = child.kill();
            let _ = child.wait();
        }
        Err(e) => println!("{am}: cannot start ({e}), skipped"),
    }
}
