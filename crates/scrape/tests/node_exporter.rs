//! Scrapes a real node_exporter (Debian's `prometheus-node-exporter`) on a
//! loopback port through the scrape manager, as metrics-server will.
//!
//! Skipped with a loud message when the binary is missing; with `CI` set a
//! missing binary fails the test, so CI cannot silently lose it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pharos_model::{Labels, Sample};
use pharos_scrape::PrometheusConfig;
use pharos_scrape::scrape::{ScrapeManager, ScrapeSink, TargetHealth};

fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["prometheus-node-exporter", "node_exporter"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Default)]
struct Collect {
    series: Mutex<Vec<(Labels, Sample)>>,
    metadata: Mutex<Vec<(String, String)>>,
}

impl ScrapeSink for Collect {
    fn append(&self, series: Vec<(Labels, Vec<Sample>)>) -> Result<(), String> {
        let mut all = self.series.lock().unwrap();
        for (l, samples) in series {
            all.extend(samples.into_iter().map(|s| (l.clone(), s)));
        }
        Ok(())
    }

    fn set_metadata(&self, metric: &str, kind: &str, _help: &str, _unit: &str) {
        self.metadata
            .lock()
            .unwrap()
            .push((metric.to_owned(), kind.to_owned()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_a_real_node_exporter() {
    let Some(binary) = find_binary() else {
        let msg = "prometheus-node-exporter is not installed: \
                   install it (apt-get install -y prometheus-node-exporter) to run this test";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED scrapes_a_real_node_exporter: {msg}");
        return;
    };
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = Command::new(&binary)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node_exporter");
    let _guard = Killed(child);

    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "node_exporter did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let config = PrometheusConfig::parse(
        &format!(
            "scrape_configs:\n  - job_name: node\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: 'go_.*'\n        action: drop\n"
        ),
        "node.yml",
    )
    .unwrap();
    let sink = Arc::new(Collect::default());
    let manager = ScrapeManager::new(sink.clone(), 0);
    manager.apply_config(&config).unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let targets = manager.targets();
        if let Some(t) = targets.active_targets.first()
            && t.health != TargetHealth::Unknown
        {
            assert_eq!(t.health, TargetHealth::Up, "last error: {}", t.last_error);
            break;
        }
        assert!(Instant::now() < deadline, "no scrape within 10s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    manager.stop();

    let series = sink.series.lock().unwrap();
    let value_of = |name: &str| {
        series
            .iter()
            .find(|(l, _)| l.metric_name() == Some(name))
            .map(|(_, s)| s.v)
    };
    assert_eq!(value_of("up"), Some(1.0));
    let build = series
        .iter()
        .find(|(l, _)| l.metric_name() == Some("node_exporter_build_info"))
        .expect("node_exporter_build_info scraped");
    assert_eq!(build.0.get("job"), Some("node"));
    assert_eq!(
        build.0.get("instance"),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    assert!(build.0.get("version").is_some());
    // go_* was dropped by metric relabeling, and the report says so.
    assert!(
        !series
            .iter()
            .any(|(l, _)| l.metric_name().is_some_and(|n| n.starts_with("go_")))
    );
    let scraped = value_of("scrape_samples_scraped").unwrap();
    let kept = value_of("scrape_samples_post_metric_relabeling").unwrap();
    assert!(
        scraped > kept && kept > 10.0,
        "scraped {scraped}, kept {kept}"
    );
    let metadata = sink.metadata.lock().unwrap();
    assert!(
        metadata
            .iter()
            .any(|(m, k)| m == "node_exporter_build_info" && k == "gauge"),
        "{metadata:?}"
    );
}
