//! Rules in metrics-server fire on scraped node-exporter data and reach
//! both alert-router and a real Alertmanager 0.25 with the same labels and
//! annotations; changing the rule resolves them in both.

use std::time::Duration;

use crate::support::*;

const RULE: &str = r#"groups:
  - name: node
    interval: 1s
    rules:
      - alert: HighCPUUsage
        expr: 100 - (avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[1m])) * 100) > THRESHOLD
        for: 3s
        labels:
          severity: warning
        annotations:
          summary: "High CPU usage on {{ $labels.instance }}"
          description: "CPU usage is above THRESHOLD%"
"#;

/// Labels and annotations of the active alerts an Alertmanager API lists.
fn am_alerts(v: &serde_json::Value) -> Vec<(serde_json::Value, serde_json::Value)> {
    let mut out: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["labels"].clone(), a["annotations"].clone()))
        .collect();
    out.sort_by_key(|x| x.0.to_string());
    out
}

#[tokio::test]
async fn alert_fires_reaches_both_alertmanagers_and_resolves() {
    let (Some(exporter), Some(am)) = (
        which("prometheus-node-exporter"),
        which("prometheus-alertmanager"),
    ) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "node-exporter/alertmanager not installed in CI"
        );
        eprintln!("SKIPPING: node-exporter or alertmanager missing");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ne_port = free_port();
    let _ne = Peer::spawn(
        &exporter,
        &[format!("--web.listen-address=127.0.0.1:{ne_port}")],
    );
    let am_port = free_port();
    let am_yml = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_yml,
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )
    .unwrap();
    let _real_am = Peer::spawn(
        &am,
        &[
            format!("--config.file={}", am_yml.display()),
            format!("--storage.path={}", dir.path().join("am").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=".into(),
        ],
    );

    let ports = Ports::new();
    let rules = dir.path().join("cpu.rules.yml");
    std::fs::write(&rules, RULE.replace("THRESHOLD", "-1")).unwrap();
    let prom_yml = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_yml,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - cpu.rules.yml\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{}', '127.0.0.1:{am_port}']\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n",
            ports.alerts
        ),
    )
    .unwrap();
    let yaml = config_yaml(&ports, dir.path(), "").replace(
        "metrics:\n",
        &format!("metrics:\n  config_file: {}\n", prom_yml.display()),
    );
    let cfg = dir.path().join("pharos.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let mut p = Proc::start(
        "pharos",
        &[
            "--config.file",
            cfg.to_str().unwrap(),
            "-target=metrics-server,alert-router",
        ],
        dir.path(),
    );
    wait_ready(
        &mut p,
        &format!("http://127.0.0.1:{}/ready", ports.metrics),
        Duration::from_secs(20),
    )
    .await;
    wait_ready(
        &mut p,
        &format!("http://127.0.0.1:{}/ready", ports.alerts),
        Duration::from_secs(20),
    )
    .await;
    let c = client();
    let prom_alerts = format!("http://127.0.0.1:{}/api/v1/alerts", ports.metrics);

    // pending first, then firing
    wait_for(&c, &prom_alerts, "pending", |v| {
        v["data"]["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["state"] == "pending"))
    })
    .await;
    wait_for(&c, &prom_alerts, "firing", |v| {
        v["data"]["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["state"] == "firing"))
    })
    .await;
    let rules_api = get_json(
        &c,
        &format!("http://127.0.0.1:{}/api/v1/rules?type=alert", ports.metrics),
    )
    .await;
    assert_eq!(
        rules_api["data"]["groups"][0]["rules"][0]["health"], "ok",
        "{rules_api}"
    );

    // both Alertmanagers hold the same alert
    let ours_url = format!("http://127.0.0.1:{}/api/v2/alerts", ports.alerts);
    let theirs_url = format!("http://127.0.0.1:{am_port}/api/v2/alerts");
    let ours = wait_for(&c, &ours_url, "alert-router got the alert", |v| {
        v.as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let theirs = wait_for(&c, &theirs_url, "alertmanager got the alert", |v| {
        v.as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert_eq!(am_alerts(&ours), am_alerts(&theirs));
    let (labels, annotations) = &am_alerts(&ours)[0];
    assert_eq!(labels["alertname"], "HighCPUUsage");
    assert_eq!(labels["instance"], format!("127.0.0.1:{ne_port}"));
    assert_eq!(labels["severity"], "warning");
    assert_eq!(
        annotations["summary"],
        format!("High CPU usage on 127.0.0.1:{ne_port}")
    );
    // ALERTS series are written
    let v = get_json(
        &c,
        &format!("http://127.0.0.1:{}/api/v1/query?query=ALERTS%7Balertname%3D%22HighCPUUsage%22%2Calertstate%3D%22firing%22%7D", ports.metrics),
    )
    .await;
    assert_eq!(v["data"]["result"].as_array().map(Vec::len), Some(1), "{v}");

    // the condition clears: both see the alert resolved
    std::fs::write(&rules, RULE.replace("THRESHOLD", "1000")).unwrap();
    let r = c
        .post(format!("http://127.0.0.1:{}/-/reload", ports.metrics))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    wait_for(&c, &prom_alerts, "no alert in metrics-server", |v| {
        v["data"]["alerts"].as_array().is_some_and(|a| a.is_empty())
    })
    .await;
    wait_for(&c, &ours_url, "resolved in alert-router", |v| {
        v.as_array().is_some_and(|a| a.is_empty())
    })
    .await;
    wait_for(&c, &theirs_url, "resolved in alertmanager", |v| {
        v.as_array().is_some_and(|a| a.is_empty())
    })
    .await;

    p.signal("TERM");
    let (status, _) = p.wait_exit(Duration::from_secs(15));
    assert!(status.success());
}

/// `alert-router --config.file=alertmanager.yml` with Alertmanager's own
/// flags, then amtool reads its config and routing tree.
#[tokio::test]
async fn alert_router_takes_alertmanager_flags_and_amtool_reads_it() {
    let Some(amtool) = which("amtool") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "amtool not installed in CI"
        );
        eprintln!("SKIPPING: no amtool");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let am_yml = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_yml,
        "route:\n  receiver: team\n  routes:\n    - receiver: pager\n      matchers: ['severity=\"critical\"']\nreceivers:\n  - name: team\n  - name: pager\n",
    )
    .unwrap();
    let (mut p, port) = start_alert_router(&am_yml, dir.path()).await;
    let url = format!("--alertmanager.url=http://127.0.0.1:{port}");
    let out = std::process::Command::new(&amtool)
        .args([
            url.as_str(),
            "config",
            "routes",
            "test",
            "severity=critical",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.trim(), "pager");
    let out = std::process::Command::new(&amtool)
        .args([url.as_str(), "config", "routes", "show"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("receiver: team") && text.contains("receiver: pager"),
        "{text}"
    );
    p.signal("TERM");
    let (status, _) = p.wait_exit(Duration::from_secs(10));
    assert!(status.success());
}

/// A pending alert's `for` timer survives a restart: after it the alert is
/// pending with the same `activeAt` instead of starting over.
#[tokio::test]
async fn pending_for_state_is_restored_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::new();
    let rules = dir.path().join("up.rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: SelfUp\n        expr: up{job=\"self\"} == 1\n        for: 20m\n",
    )
    .unwrap();
    let prom_yml = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_yml,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [up.rules.yml]\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            ports.metrics
        ),
    )
    .unwrap();
    let yaml = config_yaml(&ports, dir.path(), "").replace(
        "metrics:\n",
        &format!("metrics:\n  config_file: {}\n", prom_yml.display()),
    );
    let cfg = dir.path().join("pharos.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let c = client();
    let alerts = format!("http://127.0.0.1:{}/api/v1/alerts", ports.metrics);
    let active_at = |v: &serde_json::Value| -> Option<String> {
        v["data"]["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["state"] == "pending")
            .and_then(|a| a["activeAt"].as_str().map(str::to_owned))
    };

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
    let v = wait_for(&c, &alerts, "pending before restart", |v| {
        active_at(v).is_some()
    })
    .await;
    let before = active_at(&v).unwrap();
    // stay pending long enough that the restored timer is clearly older
    // than the restart
    tokio::time::sleep(Duration::from_secs(8)).await;
    p.signal("TERM");
    let (status, _) = p.wait_exit(Duration::from_secs(15));
    assert!(status.success());

    let restarted = secs_of_day_now();
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
    // Prometheus' RestoreForState: the time pending before the restart
    // counts, the outage does not, so activeAt lands before the restart
    // (without restoring it would be after it). Restoration happens once
    // the rule has been evaluated after start.
    let pending_before = rfc3339_secs_of_day(&before);
    let v = wait_for(&c, &alerts, "pending with the restored timer", |v| {
        active_at(v).is_some_and(|a| rfc3339_secs_of_day(&a) < restarted - 3.0)
    })
    .await;
    let restored = rfc3339_secs_of_day(&active_at(&v).unwrap());
    assert!(restored >= pending_before, "{restored} < {pending_before}");
    p.signal("TERM");
    let (status, _) = p.wait_exit(Duration::from_secs(15));
    assert!(status.success());
}

/// Seconds since UTC midnight of an RFC3339 timestamp (the test runs well
/// within one day).
fn rfc3339_secs_of_day(s: &str) -> f64 {
    let time = s.split('T').nth(1).unwrap().trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next().unwrap().parse().unwrap();
    let m: f64 = parts.next().unwrap().parse().unwrap();
    let sec: f64 = parts.next().unwrap().parse().unwrap();
    h * 3600.0 + m * 60.0 + sec
}

fn secs_of_day_now() -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    now % 86_400.0
}

/// The shipped deploy/alertmanager.yml passes amtool's check-config, and
/// alert-router routes with it as amtool says Alertmanager would.
#[tokio::test]
async fn shipped_alertmanager_config_checks_and_routes() {
    let Some(amtool) = which("amtool") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "amtool not installed in CI"
        );
        eprintln!("SKIPPING: no amtool");
        return;
    };
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/alertmanager.yml");
    let out = std::process::Command::new(&amtool)
        .arg("check-config")
        .arg(&shipped)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let dir = tempfile::tempdir().unwrap();
    let (mut p, port) = start_alert_router(&shipped, dir.path()).await;
    let url = format!("--alertmanager.url=http://127.0.0.1:{port}");
    for (labels, want) in [
        (
            &["severity=critical", "team=payments"][..],
            "pagerduty,slack-payments",
        ),
        (&["severity=warning"][..], "email-oncall"),
        (&["severity=critical"][..], "pagerduty"),
    ] {
        let out = std::process::Command::new(&amtool)
            .args([url.as_str(), "config", "routes", "test"])
            .args(labels)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.trim(),
            want,
            "{labels:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    p.signal("TERM");
    let (status, _) = p.wait_exit(Duration::from_secs(10));
    assert!(status.success());
}

/// `alert-router` with Alertmanager's own flags on free loopback ports,
/// ready to answer.
async fn start_alert_router(config: &std::path::Path, dir: &std::path::Path) -> (Proc, u16) {
    let (port, grpc) = (free_port(), free_port());
    let mut p = Proc::start(
        "alert-router",
        &[
            &format!("--config.file={}", config.display()),
            &format!("--storage.path={}", dir.join("data").display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
            "--cluster.listen-address=",
            &format!("--server.grpc-listen-port={grpc}"),
            &format!(
                "--storage.filesystem.path={}",
                dir.join("objects").display()
            ),
        ],
        dir,
    );
    wait_ready(
        &mut p,
        &format!("http://127.0.0.1:{port}/ready"),
        Duration::from_secs(20),
    )
    .await;
    (p, port)
}
