//! kill -9 during remote_write: every sample that got a 2xx survives with
//! its exact value, and nothing comes back twice.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pharos_loadgen::{Outcome, Plan, RunOptions, SeriesSet, run, verify};

use crate::support::*;

const HOSTS: usize = 8;
const SCRAPES: u64 = 400;
const INTERVAL_MS: i64 = 15_000;

fn start(cfg: &std::path::Path, dir: &std::path::Path) -> Proc {
    Proc::start(
        "metrics-server",
        &["--config.file", cfg.to_str().unwrap()],
        dir,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_sample() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::new();
    let cfg = dir.path().join("pharos.yaml");
    // flat out may exceed the default per-tenant rate; a 429 is not what
    // this test is about
    let yaml = config_yaml(&ports, dir.path(), "")
        + "limits:\n  ingestion_rate: 1000000000\n  ingestion_burst: 1000000000\n";
    std::fs::write(&cfg, yaml).unwrap();
    let base = format!("http://127.0.0.1:{}", ports.metrics);
    let mut server = start(&cfg, dir.path());
    wait_ready(
        &mut server,
        &format!("{base}/ready"),
        Duration::from_secs(20),
    )
    .await;

    // the whole plan lies in the past so nothing is "too far in the future"
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start_ms = (now - SCRAPES as i64 * INTERVAL_MS) / INTERVAL_MS * INTERVAL_MS;
    let set = SeriesSet::node_exporter(HOSTS * pharos_loadgen::series::PER_HOST, 42);
    // small requests so many are in flight and many are acknowledged
    let plan = Arc::new(Plan::new(Arc::new(set), 4, 250, start_ms, INTERVAL_MS));
    let total = plan.set.len() as u64 * SCRAPES;
    let opts = RunOptions {
        url: format!("{base}/api/v1/write"),
        scrapes: Some(SCRAPES),
        timeout: Duration::from_secs(5),
        ..RunOptions::default()
    };
    let (stop, acked) = (opts.stop.clone(), opts.acked.clone());
    let load = tokio::spawn(run(plan.clone(), opts));

    // kill while the generator is still sending: after a third of the plan
    // is acknowledged, or after a few seconds on a slow machine
    let t0 = Instant::now();
    while acked.load(Ordering::Relaxed) < total / 3 && t0.elapsed() < Duration::from_secs(4) {
        assert!(!load.is_finished(), "generator ended before the kill");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!load.is_finished(), "generator ended before the kill");
    server.signal("KILL");
    let _ = server.wait_exit(Duration::from_secs(10));
    // let requests after the kill fail, so some were cut off mid-flight
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let report = load.await.unwrap().unwrap();

    let acked_samples = report.acked_samples(&plan);
    let failed = report.requests(|o| o == Outcome::Failed);
    assert!(
        acked_samples > 0,
        "nothing was acknowledged before the kill"
    );
    assert!(
        failed > 0,
        "no request failed: the kill did not hit a running load"
    );
    assert_eq!(
        report.requests(|o| matches!(o, Outcome::Rejected(_))),
        0,
        "the server rejected requests before the kill"
    );

    let mut server = start(&cfg, dir.path());
    wait_ready(
        &mut server,
        &format!("{base}/ready"),
        Duration::from_secs(30),
    )
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let hosts: Vec<String> = (0..HOSTS).map(|h| format!("host-{h}:9100")).collect();
    let at = plan.timestamp(SCRAPES) + 1;
    let v = verify(
        &client,
        &format!("{base}/api/v1/query"),
        &plan,
        &report,
        &hosts,
        at,
    )
    .await
    .unwrap();
    assert!(v.is_lossless(), "{v:#?}");
    assert_eq!(v.expected, acked_samples, "{v:#?}");
    assert_eq!(v.exact, acked_samples, "{v:#?}");
    assert_eq!(v.series_returned as usize, plan.set.len(), "{v:#?}");
    eprintln!(
        "acknowledged {acked_samples} samples in {} requests, {failed} failed at the kill, \
         {} unacknowledged samples kept",
        report.requests(|o| o == Outcome::Acked),
        v.unacked_present
    );
    server.signal("TERM");
    let _ = server.wait_exit(Duration::from_secs(10));
}
