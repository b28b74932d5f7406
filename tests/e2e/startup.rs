//! The all-in-one and every role binary start, answer `/ready`,
//! `/metrics` and build info, and stop cleanly on SIGTERM.

use std::time::{Duration, Instant};

use crate::support::*;

const ROLES: [(&str, &str); 8] = [
    ("metrics-server", "metrics"),
    ("log-ingester", "logs"),
    ("log-querier", "logs"),
    ("trace-distributor", "traces"),
    ("trace-ingester", "traces"),
    ("trace-querier", "traces"),
    ("trace-compactor", "traces"),
    ("alert-router", "alerts"),
];

fn port_of(ports: &Ports, family: &str) -> u16 {
    ports
        .http()
        .iter()
        .find(|(n, _)| *n == family)
        .map(|(_, p)| *p)
        .expect("family port")
}

#[tokio::test]
async fn all_in_one_serves_every_role_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::new();
    let cfg = dir.path().join("pharos.yaml");
    std::fs::write(&cfg, config_yaml(&ports, dir.path(), "")).unwrap();
    let mut p = Proc::start(
        "pharos",
        &["--config.file", cfg.to_str().unwrap()],
        dir.path(),
    );
    let c = client();
    let promtool = promtool();
    for (name, port) in ports.http() {
        wait_ready(
            &mut p,
            &format!("http://127.0.0.1:{port}/ready"),
            Duration::from_secs(20),
        )
        .await;
        let r = c
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name} /metrics");
        let ctype = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
        let text = r.text().await.unwrap();
        assert!(
            text.contains("process_resident_memory_bytes "),
            "{name}: {text}"
        );
        assert!(text.contains("pharos_build_info{"), "{name}");
        // the readiness check listed the object store at least once
        assert!(
            !text.contains(
                r#"pharos_storage_operations_total{backend="filesystem",operation="list_dirs"} 0"#
            ) && text.contains(
                r#"pharos_storage_operations_total{backend="filesystem",operation="list_dirs"} "#
            ),
            "{name}: {text}"
        );
        if let Some(pt) = &promtool {
            promtool_check_metrics(pt, &text)
                .unwrap_or_else(|e| panic!("{name}: promtool: {e}\n{text}"));
        }
        let b: serde_json::Value = c
            .get(format!("http://127.0.0.1:{port}/status/buildinfo"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(b["version"], env!("CARGO_PKG_VERSION"), "{name}");
    }
    // request metrics count the calls just made, per listener and route
    let text = c
        .get(format!("http://127.0.0.1:{}/metrics", ports.logs))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"pharos_http_requests_total{listener="logs",method="GET",route="/ready",status_code="200"}"#),
        "{text}"
    );

    // the upstream shapes of what is reachable today
    let r = c
        .get(format!(
            "http://127.0.0.1:{}/api/v1/status/buildinfo",
            ports.metrics
        ))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["status"], "success");
    assert!(v["data"].get("features").is_none());
    let r = c
        .post(format!("http://127.0.0.1:{}/loki/api/v1/push", ports.logs))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 501);
    let r = c
        .post(format!("http://127.0.0.1:{}/loki/api/v1/push", ports.logs))
        .header("X-Scope-OrgID", "bad/tenant")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("unsupported character '/'")
    );
    let r = c
        .get(format!("http://127.0.0.1:{}/api/v1/alerts", ports.alerts))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    let r = c
        .get(format!("http://127.0.0.1:{}/api/echo", ports.traces))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "echo");

    // the object store and local directories were laid out under the tempdir
    assert!(dir.path().join("objects").is_dir());
    assert!(dir.path().join("local/metrics").is_dir());

    let start = Instant::now();
    p.signal("TERM");
    let (status, stderr) = p.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    // the config's graceful_shutdown_timeout is 5s
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "took {:?}",
        start.elapsed()
    );
    assert!(stderr.contains("received signal"), "{stderr}");
}

#[tokio::test]
async fn each_role_binary_starts_alone_with_the_same_config() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::new();
    let cfg = dir.path().join("pharos.yaml");
    std::fs::write(&cfg, config_yaml(&ports, dir.path(), "")).unwrap();
    let c = client();
    for (bin, family) in ROLES {
        let mut p = Proc::start(bin, &["-config.file", cfg.to_str().unwrap()], dir.path());
        let port = port_of(&ports, family);
        wait_ready(
            &mut p,
            &format!("http://127.0.0.1:{port}/ready"),
            Duration::from_secs(20),
        )
        .await;
        // a role binary serves only its own role's routes
        let text = c
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains(&format!("listener=\"{bin}\"")),
            "{bin}: {text}"
        );
        if bin == "trace-distributor" {
            wait_ready(
                &mut p,
                &format!("http://127.0.0.1:{}/ready", ports.otlp_http),
                Duration::from_secs(5),
            )
            .await;
        }
        p.signal("TERM");
        let (status, stderr) = p.wait_exit(Duration::from_secs(10));
        assert!(status.success(), "{bin} exit {status}; stderr:\n{stderr}");
    }
}

#[tokio::test]
async fn role_binary_refuses_another_roles_target() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proc::start("log-querier", &["-target=log-ingester"], dir.path());
    let (status, stderr) = p.wait_exit(Duration::from_secs(10));
    assert!(!status.success());
    assert!(
        stderr.contains("-target=log-ingester but this binary runs log-querier"),
        "{stderr}"
    );
}

/// What a newcomer sees: `pharos` with no config at all, upstream's ports.
#[tokio::test]
async fn default_ports_with_no_config() {
    let defaults = [9090u16, 3100, 3200, 9093, 9095, 4317, 4318];
    let busy: Vec<u16> = defaults
        .iter()
        .copied()
        .filter(|p| std::net::TcpListener::bind(("0.0.0.0", *p)).is_err())
        .collect();
    if !busy.is_empty() {
        assert!(
            std::env::var_os("CI").is_none(),
            "default ports busy in CI: {busy:?}"
        );
        eprintln!("SKIPPING default-port test: ports {busy:?} are in use on this machine");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proc::start("pharos", &[], dir.path());
    for port in [9090, 3100, 3200, 9093] {
        wait_ready(
            &mut p,
            &format!("http://127.0.0.1:{port}/ready"),
            Duration::from_secs(20),
        )
        .await;
    }
    // the default filesystem store is ./data
    assert!(dir.path().join("data").is_dir());
    p.signal("INT");
    let (status, stderr) = p.wait_exit(Duration::from_secs(35));
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
}
