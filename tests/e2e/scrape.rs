//! metrics-server scrapes a real node-exporter found through file SD, and
//! follows edits of the target file without a restart.

use std::time::{Duration, Instant};

use crate::support::*;

async fn targets(c: &reqwest::Client, port: u16) -> serde_json::Value {
    get_json(c, &format!("http://127.0.0.1:{port}/api/v1/targets")).await
}

/// Polls the targets API until `pred` holds.
async fn wait_targets(
    c: &reqwest::Client,
    port: u16,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_for(
        c,
        &format!("http://127.0.0.1:{port}/api/v1/targets"),
        what,
        pred,
    )
    .await
}

fn active(t: &serde_json::Value) -> Vec<(String, String)> {
    t["data"]["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"]["instance"].as_str().unwrap().to_owned(),
                a["health"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn node_exporter_via_file_sd_follows_edits() {
    let Some(exporter) = which("prometheus-node-exporter") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus-node-exporter not installed in CI"
        );
        eprintln!("SKIPPING: no prometheus-node-exporter");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ne_port = free_port();
    let _ne = Peer::spawn(
        &exporter,
        &[format!("--web.listen-address=127.0.0.1:{ne_port}")],
    );
    let ports = Ports::new();
    let targets_file = dir.path().join("targets.json");
    std::fs::write(
        &targets_file,
        format!(r#"[{{"targets": ["127.0.0.1:{ne_port}"], "labels": {{"env": "test"}}}}]"#),
    )
    .unwrap();
    let prom_yml = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_yml,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    file_sd_configs:\n      - files: ['{}']\n        refresh_interval: 1s\n",
            targets_file.display()
        ),
    )
    .unwrap();
    let mut yaml = config_yaml(&ports, dir.path(), "");
    yaml = yaml.replace(
        "metrics:\n",
        &format!("metrics:\n  config_file: {}\n", prom_yml.display()),
    );
    let cfg = dir.path().join("pharos.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let mut p = Proc::start(
        "metrics-server",
        &["--config.file", cfg.to_str().unwrap()],
        dir.path(),
    );
    wait_ready(
        &mut p,
        &format!("http://127.0.0.1:{}/ready", ports.metrics),
        Duration::from_secs(20),
    )
    .await;
    let c = client();
    let ne_instance = format!("127.0.0.1:{ne_port}");
    let t = wait_targets(&c, ports.metrics, "node-exporter up", |t| {
        active(t) == vec![(ne_instance.clone(), "up".into())]
    })
    .await;
    let a = &t["data"]["activeTargets"][0];
    assert_eq!(a["labels"]["job"], "node");
    assert_eq!(a["labels"]["env"], "test");
    assert_eq!(a["scrapePool"], "node");
    assert_eq!(
        a["scrapeUrl"],
        format!("http://127.0.0.1:{ne_port}/metrics")
    );

    // the scraped data is queryable: up == 1 and node-exporter's own series
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: serde_json::Value = c
            .get(format!("http://127.0.0.1:{}/api/v1/query", ports.metrics))
            .query(&[(
                "query",
                "up{job=\"node\"} == 1 and on(instance) node_exporter_build_info",
            )])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let r = v["data"]["result"].as_array().cloned().unwrap_or_default();
        if r.len() == 1 {
            assert_eq!(r[0]["metric"]["instance"], ne_instance.as_str());
            assert_eq!(r[0]["value"][1], "1");
            break;
        }
        assert!(Instant::now() < deadline, "up == 1 never answered: {v}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // add a second target: metrics-server's own /metrics
    let own = format!("127.0.0.1:{}", ports.metrics);
    std::fs::write(
        &targets_file,
        format!(r#"[{{"targets": ["{ne_instance}", "{own}"], "labels": {{"env": "test"}}}}]"#),
    )
    .unwrap();
    wait_targets(&c, ports.metrics, "second target added", |t| {
        let mut a = active(t);
        a.sort();
        let mut want = vec![
            (ne_instance.clone(), "up".to_string()),
            (own.clone(), "up".to_string()),
        ];
        want.sort();
        a == want
    })
    .await;

    // remove node-exporter; a broken file afterwards keeps the last good set
    std::fs::write(&targets_file, format!(r#"[{{"targets": ["{own}"]}}]"#)).unwrap();
    wait_targets(&c, ports.metrics, "node-exporter removed", |t| {
        active(t).iter().map(|x| x.0.clone()).collect::<Vec<_>>() == vec![own.clone()]
    })
    .await;
    std::fs::write(&targets_file, "[{not json").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let t = targets(&c, ports.metrics).await;
    assert_eq!(
        active(&t).iter().map(|x| x.0.clone()).collect::<Vec<_>>(),
        vec![own.clone()]
    );

    p.signal("TERM");
    let (status, _) = p.wait_exit(Duration::from_secs(10));
    assert!(status.success());
}

/// `metrics-server --config.file=prometheus.yml`, as a Prometheus compose
/// command or systemd unit passes it, scrapes what the file says.
#[tokio::test]
async fn metrics_server_accepts_a_prometheus_yml_as_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let prom_yml = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_yml,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"),
    )
    .unwrap();
    let grpc = free_port();
    let mut p = Proc::start(
        "metrics-server",
        &[
            &format!("--config.file={}", prom_yml.display()),
            &format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
            &format!("--server.grpc-listen-port={grpc}"),
            &format!(
                "--storage.filesystem.path={}",
                dir.path().join("objects").display()
            ),
            "--web.enable-lifecycle",
        ],
        dir.path(),
    );
    wait_ready(
        &mut p,
        &format!("http://127.0.0.1:{port}/ready"),
        Duration::from_secs(20),
    )
    .await;
    let c = client();
    wait_targets(&c, port, "self-scrape up", |t| {
        active(t) == vec![(format!("127.0.0.1:{port}"), "up".to_string())]
    })
    .await;
    p.signal("TERM");
    let (status, _) = p.wait_exit(Duration::from_secs(10));
    assert!(status.success());
}
