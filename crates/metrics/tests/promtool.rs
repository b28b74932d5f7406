//! The query API over a real socket, talked to by the real `promtool`
//! (Prometheus 2.42's client) and by the requests Grafana's Prometheus data
//! source sends.

use std::process::Command;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use pharos_core::tenant::TenantId;
use pharos_metrics::query_api::{QueryApi, query_routes};
use pharos_metrics::reader::{MemReader, MetadataEntry};
use pharos_model::{Labels, Sample};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PROMTOOL: &str = "/usr/bin/promtool";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Ten minutes of `up` for two targets and a counter, ending now.
fn data(now: i64) -> Arc<MemReader> {
    let r = Arc::new(MemReader::new());
    let t = TenantId::anonymous();
    let start = now - 600_000;
    for (job, inst, v) in [
        ("prometheus", "localhost:9090", 1.0),
        ("node", "node:9100", 0.0),
    ] {
        r.add(
            &t,
            Labels::from_pairs([("__name__", "up"), ("job", job), ("instance", inst)]),
            (0..=40).map(|i| Sample::new(start + i * 15_000, v)),
        );
    }
    r.add(
        &t,
        Labels::from_pairs([
            ("__name__", "http_requests_total"),
            ("job", "prometheus"),
            ("code", "200"),
        ]),
        (0..=40).map(|i| Sample::new(start + i * 15_000, (i * 15) as f64)),
    );
    r.add_metadata(
        &t,
        "http_requests_total",
        MetadataEntry {
            kind: "counter".into(),
            help: "Total HTTP requests.".into(),
            unit: String::new(),
        },
    );
    r
}

async fn serve(reader: Arc<MemReader>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = query_routes(QueryApi::new(reader));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("server stopped: {e}");
        }
    });
    format!("http://{addr}")
}

async fn promtool(args: Vec<String>) -> String {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(PROMTOOL)
            .args(&args)
            .output()
            .expect("promtool runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "promtool failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn promtool_present() -> bool {
    if std::path::Path::new(PROMTOOL).exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{PROMTOOL} is required in CI (Debian package prometheus 2.42)");
    }
    eprintln!("!!! SKIPPING promtool tests: {PROMTOOL} not found !!!");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_queries() {
    if !promtool_present() {
        return;
    }
    // A whole second, passed as the evaluation time: with promtool's own
    // "now" the rate below depends on how late promtool starts.
    let now = now_ms() / 1000 * 1000;
    let url = serve(data(now)).await;
    let s = |v: &str| v.to_owned();
    let at = format!("--time={}", now / 1000);

    let out = promtool(vec![
        s("query"),
        s("instant"),
        at.clone(),
        url.clone(),
        s("up"),
    ])
    .await;
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("up{instance=\"localhost:9090\", job=\"prometheus\"} => 1 @["),
        "{out}"
    );
    assert!(
        lines[1].starts_with("up{instance=\"node:9100\", job=\"node\"} => 0 @["),
        "{out}"
    );

    let out = promtool(vec![
        s("query"),
        s("instant"),
        at.clone(),
        url.clone(),
        s("sum(rate(http_requests_total[2m]))"),
    ])
    .await;
    assert!(out.starts_with("{} => 1 @["), "{out}");

    let start = (now - 120_000) / 1000;
    let end = now / 1000;
    let out = promtool(vec![
        s("query"),
        s("range"),
        format!("--start={start}"),
        format!("--end={end}"),
        s("--step=30s"),
        url.clone(),
        s("up{job=\"node\"}"),
    ])
    .await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "up{instance=\"node:9100\", job=\"node\"} =>",
        "{out}"
    );
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(lines[1], format!("0 @[{start}]"));
    assert_eq!(lines[5], format!("0 @[{}]", start + 120));

    let out = promtool(vec![s("query"), s("series"), s("--match=up"), url.clone()]).await;
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "{__name__=\"up\", instance=\"localhost:9090\", job=\"prometheus\"}",
            "{__name__=\"up\", instance=\"node:9100\", job=\"node\"}",
        ]
    );

    let out = promtool(vec![s("query"), s("labels"), url.clone(), s("job")]).await;
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["node", "prometheus"]);
}

/// A one-shot HTTP/1.1 exchange, so the test speaks to the socket as an
/// outside client would.
async fn http(url: &str, method: &str, path: &str, form: Option<&str>) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let body = form.unwrap_or("");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if form.is_some() {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

fn data_of(status: u16, body: &str) -> serde_json::Value {
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["status"], "success", "{body}");
    v["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_datasource_calls() {
    let now = now_ms();
    let url = serve(data(now)).await;
    let end = now as f64 / 1000.0;
    let start = end - 300.0;

    // the health check Grafana runs when saving the data source
    let (st, body) = http(&url, "POST", "/api/v1/query", Some("query=1%2B1&time=4")).await;
    assert_eq!(
        data_of(st, &body),
        serde_json::json!({"resultType": "scalar", "result": [4, "2"]})
    );

    let form = format!("query=up&start={start}&end={end}&step=15");
    let (st, body) = http(&url, "POST", "/api/v1/query_range", Some(&form)).await;
    let d = data_of(st, &body);
    assert_eq!(d["resultType"], "matrix");
    let series = d["result"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(series[0]["metric"]["instance"], "localhost:9090");
    assert_eq!(series[0]["values"].as_array().unwrap().len(), 21);

    let form = format!("start={}&end={}", start as i64, end as i64);
    let (st, body) = http(&url, "POST", "/api/v1/labels", Some(&form)).await;
    assert_eq!(
        data_of(st, &body),
        serde_json::json!(["__name__", "code", "instance", "job"])
    );

    let path = format!(
        "/api/v1/label/__name__/values?start={}&end={}",
        start as i64, end as i64
    );
    let (st, body) = http(&url, "GET", &path, None).await;
    assert_eq!(
        data_of(st, &body),
        serde_json::json!(["http_requests_total", "up"])
    );

    let form = format!(
        "match%5B%5D=http_requests_total&start={}&end={}",
        start as i64, end as i64
    );
    let (st, body) = http(&url, "POST", "/api/v1/series", Some(&form)).await;
    assert_eq!(
        data_of(st, &body),
        serde_json::json!([{"__name__": "http_requests_total", "code": "200", "job": "prometheus"}])
    );

    let (st, body) = http(&url, "GET", "/api/v1/metadata", None).await;
    assert_eq!(
        data_of(st, &body)["http_requests_total"][0]["type"],
        "counter"
    );

    // Grafana sends exemplar ranges in milliseconds
    let form = format!(
        "query=rate(http_requests_total%5B5m%5D)&start={}&end={}",
        now - 300_000,
        now
    );
    let (st, body) = http(&url, "POST", "/api/v1/query_exemplars", Some(&form)).await;
    assert_eq!(data_of(st, &body), serde_json::json!([]));

    let (st, body) = http(&url, "GET", "/api/v1/query?query=sum(", None).await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("\"errorType\":\"bad_data\""), "{body}");
}
