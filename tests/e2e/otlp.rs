//! The OpenTelemetry Python SDK exports metrics to metrics-server over
//! OTLP/HTTP; they come out under Prometheus 3's names.

use std::time::Duration;

use crate::support::*;

async fn query(c: &reqwest::Client, port: u16, q: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value = c
        .get(format!("http://127.0.0.1:{port}/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"]["result"].as_array().unwrap().clone()
}

#[tokio::test]
async fn opentelemetry_sdk_metrics_are_queryable() {
    let sdk = std::process::Command::new("python3")
        .args([
            "-c",
            "import opentelemetry.exporter.otlp.proto.http.metric_exporter",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !sdk {
        assert!(
            std::env::var_os("CI").is_none(),
            "OpenTelemetry SDK not installed in CI"
        );
        eprintln!("SKIPPING: python opentelemetry-exporter-otlp-proto-http not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::new();
    let cfg = dir.path().join("pharos.yaml");
    std::fs::write(&cfg, config_yaml(&ports, dir.path(), "")).unwrap();
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

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/e2e/clients/otlp_metrics.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(format!(
            "http://127.0.0.1:{}/api/v1/otlp/v1/metrics",
            ports.metrics
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let c = client();
    let port = ports.metrics;
    let orders = query(
        &c,
        port,
        r#"sum by (region) (orders_total{job="shop", instance="shop-1"})"#,
    )
    .await;
    let mut got: Vec<(String, String)> = orders
        .iter()
        .map(|r| {
            (
                r["metric"]["region"].as_str().unwrap().to_owned(),
                r["value"][1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![("eu".into(), "3".into()), ("us".into(), "4".into())]
    );
    let inflight = query(&c, port, r#"inflight_requests{job="shop"}"#).await;
    assert_eq!(inflight[0]["value"][1], "3");
    let count = query(&c, port, r#"checkout_duration_seconds_count{job="shop"}"#).await;
    assert_eq!(count[0]["value"][1], "4");
    let sum = query(&c, port, r#"checkout_duration_seconds_sum{job="shop"}"#).await;
    assert_eq!(sum[0]["value"][1], "3.45");
    let le = query(
        &c,
        port,
        r#"checkout_duration_seconds_bucket{job="shop", le="+Inf"}"#,
    )
    .await;
    assert_eq!(le[0]["value"][1], "4");
    let gauge = query(&c, port, r#"queue_depth{queue="mail"}"#).await;
    assert_eq!(gauge[0]["value"][1], "42");
    let info = query(&c, port, r#"target_info{job="shop", instance="shop-1"}"#).await;
    assert_eq!(info[0]["metric"]["deployment_environment"], "test");
    // metadata came along
    let md: serde_json::Value = c
        .get(format!(
            "http://127.0.0.1:{port}/api/v1/metadata?metric=orders_total"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(md["data"]["orders_total"][0]["type"], "counter", "{md}");
    assert_eq!(
        md["data"]["orders_total"][0]["help"], "Orders placed.",
        "{md}"
    );

    // bad input keeps the server serving
    let r = c
        .post(format!("http://127.0.0.1:{port}/api/v1/otlp/v1/metrics"))
        .header("content-type", "application/x-protobuf")
        .body(vec![0x0a, 0xff, 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .post(format!("http://127.0.0.1:{port}/api/v1/otlp/v1/metrics"))
        .header("content-type", "text/csv")
        .body("a,b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    p.signal("TERM");
    let (status, _) = p.wait_exit(Duration::from_secs(10));
    assert!(status.success());
}
