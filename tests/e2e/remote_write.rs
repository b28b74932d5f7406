//! A real Prometheus 2.42 remote-writes to metrics-server.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;

/// A tiny exporter: serves a fixed exposition with a counter that grows on
/// every scrape, until `stop` is set.
fn start_exporter(stop: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let hits = Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                    let n = hits.fetch_add(1, Ordering::Relaxed);
                    let body = format!(
                        "# HELP demo_requests_total Requests.\n# TYPE demo_requests_total counter\ndemo_requests_total{{path=\"/a\"}} {}\ndemo_requests_total{{path=\"/b\"}} {}\n# TYPE demo_temperature gauge\ndemo_temperature 21.5\ndemo_ratio 0.1\n",
                        n * 3,
                        n as f64 * 0.25
                    );
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                        body.len(),
                        body
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    port
}

#[tokio::test]
async fn prometheus_remote_write_is_received_completely() {
    let Some(prometheus) = which("prometheus") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus not installed in CI"
        );
        eprintln!("SKIPPING: no prometheus binary");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::new();
    let cfg = dir.path().join("pharos.yaml");
    std::fs::write(&cfg, config_yaml(&ports, dir.path(), "")).unwrap();
    let mut pharos = Proc::start(
        "pharos",
        &[
            "--config.file",
            cfg.to_str().unwrap(),
            "-target=metrics-server",
        ],
        dir.path(),
    );
    wait_ready(
        &mut pharos,
        &format!("http://127.0.0.1:{}/ready", ports.metrics),
        Duration::from_secs(20),
    )
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let exporter = start_exporter(stop.clone());
    let prom_port = free_port();
    let prom_yml = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_yml,
        format!(
            r#"global:
  scrape_interval: 1s
scrape_configs:
  - job_name: demo
    static_configs:
      - targets: ["127.0.0.1:{exporter}"]
remote_write:
  - url: http://127.0.0.1:{metrics}/api/v1/write
    queue_config:
      batch_send_deadline: 200ms
      max_samples_per_send: 50
    metadata_config:
      send_interval: 1s
    write_relabel_configs:
      - source_labels: [job]
        regex: demo
        action: keep
"#,
            metrics = ports.metrics
        ),
    )
    .unwrap();
    let prom = Peer::spawn(
        &prometheus,
        &[
            format!("--config.file={}", prom_yml.display()),
            format!("--storage.tsdb.path={}", dir.path().join("prom").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
    );
    let c = client();
    let prom_metrics = format!("http://127.0.0.1:{prom_port}/metrics");
    let ours = format!("http://127.0.0.1:{}/metrics", ports.metrics);

    // let it scrape and send for a while, then take the exporter away so
    // the series go stale and the sender falls quiet
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut sent, mut received) = (0.0, -1.0);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let p = c
            .get(&prom_metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let o = get_text(&c, &ours).await;
        let pending = metric_value(&p, "prometheus_remote_storage_samples_pending");
        let failed = metric_value(&p, "prometheus_remote_storage_samples_failed_total");
        assert_eq!(failed, 0.0, "prometheus failed to send samples");
        let s = metric_value(&p, "prometheus_remote_storage_samples_total");
        let r = metric_value(&o, "pharos_remote_write_samples_received_total");
        if pending == 0.0 && s == sent && r == received && s > 0.0 {
            break;
        }
        sent = s;
        received = r;
    }
    // every sample is queryable: the same queries answer the same on both
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for q in [
        "count_over_time(demo_requests_total[10m])",
        "sum_over_time(demo_requests_total[10m])",
        "max_over_time(demo_temperature[10m])",
        "last_over_time(demo_ratio[10m])",
        "sum by (path) (max_over_time(demo_requests_total[10m]))",
    ] {
        let ask = |port: u16| {
            let c = c.clone();
            let q = q.to_owned();
            async move {
                let v: serde_json::Value = c
                    .get(format!("http://127.0.0.1:{port}/api/v1/query"))
                    .query(&[("query", q.as_str()), ("time", &t.to_string())])
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(v["status"], "success", "{q}: {v}");
                let mut r = v["data"]["result"].as_array().unwrap().clone();
                r.sort_by_key(|x| x["metric"].to_string());
                r
            }
        };
        // Prometheus' WAL watcher may still hold a last sample or staleness
        // marker on a loaded machine: equal answers within a few seconds.
        let settle = Instant::now() + Duration::from_secs(10);
        let (theirs, ours) = loop {
            let (theirs, ours) = (ask(prom_port).await, ask(ports.metrics).await);
            if ours == theirs || Instant::now() > settle {
                break (theirs, ours);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        assert!(
            !theirs.is_empty(),
            "{q}: prometheus answered nothing (ours: {ours:?})"
        );
        assert_eq!(ours, theirs, "{q}");
    }
    drop(prom);
    assert!(sent >= 20.0, "prometheus sent only {sent} samples");
    assert_eq!(
        sent, received,
        "prometheus sent {sent}, metrics-server received {received}"
    );
    let o = get_text(&c, &ours).await;
    assert_eq!(
        metric_value(&o, "pharos_remote_write_samples_discarded_total"),
        0.0,
        "{o}"
    );
    // every request got 204: no 4xx/5xx answers on the write route
    for l in o
        .lines()
        .filter(|l| l.starts_with("pharos_http_requests_total{") && l.contains("/api/v1/write"))
    {
        assert!(l.contains("status_code=\"204\""), "{l}");
    }
    pharos.signal("TERM");
    let (status, _) = pharos.wait_exit(Duration::from_secs(10));
    assert!(status.success());
}
