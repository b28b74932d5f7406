//! Two replicas in one cluster: gossip over real UDP sockets on loopback,
//! the same webhook receiver, the same alerts posted to both. A group
//! must notify once per cluster, a replica that stops mid-group must not
//! take the notification with it, and silences must travel.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{capture_server, post_alerts, rfc3339};
use pharos_alerts::{AlertsApi, AlertsConfig};
use serde_json::{Value, json};

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Replica {
    api: AlertsApi,
    base: String,
    server: tokio::task::JoinHandle<()>,
}

async fn replica(dir: &std::path::Path, config: &std::path::Path, me: u16, peer: u16) -> Replica {
    let cfg = AlertsConfig {
        config_file: Some(config.to_owned()),
        local_path: dir.to_owned(),
        cluster_listen_address: format!("127.0.0.1:{me}"),
        peers: vec![format!("localhost:{peer}")],
        peer_timeout: pharos_config::Duration::from_secs(1),
        ..AlertsConfig::default()
    };
    let api = AlertsApi::from_config(&cfg).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = pharos_alerts::router(api.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Replica { api, base, server }
}

async fn status(base: &str) -> Value {
    reqwest::get(format!("{base}/api/v2/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until `cond` holds, polling, at most `within`.
async fn eventually<F, Fut>(within: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + within;
    while Instant::now() < end {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn group_names(got: &[common::Captured]) -> Vec<String> {
    let mut v: Vec<String> = got
        .iter()
        .map(|c| {
            c.body["groupLabels"]["alertname"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_notify_once_fail_over_and_share_silences() {
    let (hook, cap) = capture_server().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1500ms\n  group_interval: 10m\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: '{hook}/hook'\n"
        ),
    )
    .unwrap();
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let a = replica(&dir.path().join("a"), &config, pa, pb).await;
    let b = replica(&dir.path().join("b"), &config, pb, pa).await;

    // Both see each other and are ready.
    let joined = eventually(Duration::from_secs(10), || async {
        let (sa, sb) = (status(&a.base).await, status(&b.base).await);
        [sa, sb].iter().all(|s| {
            s["cluster"]["status"] == "ready"
                && s["cluster"]["peers"].as_array().map_or(0, Vec::len) == 2
        })
    })
    .await;
    assert!(joined, "cluster did not form: {}", status(&a.base).await);
    let sa = status(&a.base).await;
    let name_a = sa["cluster"]["name"].as_str().unwrap().to_owned();
    let peers: Vec<&str> = sa["cluster"]["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["address"].as_str().unwrap())
        .collect();
    assert!(
        peers.contains(&format!("127.0.0.1:{pa}").as_str()),
        "{peers:?}"
    );
    assert!(
        peers.contains(&format!("127.0.0.1:{pb}").as_str()),
        "{peers:?}"
    );
    assert_ne!(name_a, status(&b.base).await["cluster"]["name"]);
    let registry = pharos_server::Registry::new();
    b.api.register_metrics(&registry);
    let text = registry.render();
    assert!(text.contains("alertmanager_cluster_enabled 1"), "{text}");
    assert!(text.contains("alertmanager_cluster_members 2"), "{text}");

    // The same three groups posted to both replicas: one notification
    // each, from whichever replica comes first.
    let alerts = json!([
        {"labels": {"alertname": "One", "instance": "x"}},
        {"labels": {"alertname": "One", "instance": "y"}},
        {"labels": {"alertname": "Two", "instance": "x"}},
        {"labels": {"alertname": "Three", "instance": "x"}},
    ]);
    post_alerts(&a.base, &alerts).await;
    post_alerts(&b.base, &alerts).await;
    let got = cap.wait_for("/hook", 3, Duration::from_secs(6)).await;
    assert_eq!(group_names(&got), ["One", "Three", "Two"]);
    // The later replica waited one peer timeout (1s) and found the log
    // entries of the first; give it time to (wrongly) send anyway.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        group_names(&cap.on("/hook")),
        ["One", "Three", "Two"],
        "each group notified exactly once"
    );
    let one = cap
        .on("/hook")
        .into_iter()
        .find(|c| c.body["groupLabels"]["alertname"] == "One")
        .unwrap();
    assert_eq!(one.body["alerts"].as_array().unwrap().len(), 2);
    // Each group's log entry crossed between the replicas once.
    let text = registry.render();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let updates = value("alertmanager_cluster_messages_received_total{msg_type=\"update\"}")
        + value("alertmanager_cluster_messages_sent_total{msg_type=\"update\"}");
    assert_eq!(updates, 3.0, "{text}");

    // A silence made on A shows up on B.
    let silence = json!({
        "matchers": [{"name": "alertname", "value": "Quiet", "isRegex": false}],
        "startsAt": rfc3339(SystemTime::now()),
        "endsAt": rfc3339(SystemTime::now() + Duration::from_secs(3600)),
        "createdBy": "ha", "comment": "shared",
    });
    let created: Value = reqwest::Client::new()
        .post(format!("{}/api/v2/silences", a.base))
        .json(&silence)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["silenceID"].as_str().unwrap().to_owned();
    let on_b = eventually(Duration::from_secs(5), || {
        let url = format!("{}/api/v2/silence/{id}", b.base);
        async move {
            match reqwest::get(url).await {
                Ok(r) if r.status().is_success() => {
                    let v: Value = r.json().await.unwrap_or(Value::Null);
                    v["comment"] == "shared" && v["status"]["state"] == "active"
                }
                _ => false,
            }
        }
    })
    .await;
    assert!(on_b, "silence {id} created on A never reached B");
    // The shared silence mutes on B too.
    post_alerts(
        &b.base,
        &json!([{"labels": {"alertname": "Quiet", "instance": "x"}}]),
    )
    .await;

    // A new group reaches both, then A stops before group_wait ends: B
    // must still notify it, exactly once.
    let four = json!([{"labels": {"alertname": "Four", "instance": "x"}}]);
    post_alerts(&a.base, &four).await;
    post_alerts(&b.base, &four).await;
    a.api.shutdown().await;
    a.server.abort();
    let got = cap.wait_for("/hook", 4, Duration::from_secs(8)).await;
    assert_eq!(group_names(&got), ["Four", "One", "Three", "Two"]);
    let after_stop = status(&b.base).await;
    assert_eq!(
        after_stop["cluster"]["peers"].as_array().map(Vec::len),
        Some(1),
        "A left the cluster: {after_stop}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        group_names(&cap.on("/hook")),
        ["Four", "One", "Three", "Two"],
        "the silenced group stayed quiet and nothing was sent twice"
    );
    b.api.shutdown().await;
    b.server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_joins_later_gets_the_existing_state() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(&config, "route: {receiver: r}\nreceivers: [{name: r}]\n").unwrap();
    let (pa, pb) = (free_udp_port(), free_udp_port());
    // A starts alone: its peer is not there yet, so it keeps knocking.
    let a = replica(&dir.path().join("a"), &config, pa, pb).await;
    assert_eq!(status(&a.base).await["cluster"]["status"], "settling");
    let silence = json!({
        "matchers": [{"name": "team", "value": "db", "isRegex": false}],
        "startsAt": rfc3339(SystemTime::now()),
        "endsAt": rfc3339(SystemTime::now() + Duration::from_secs(3600)),
        "createdBy": "ha", "comment": "before B",
    });
    let created: Value = reqwest::Client::new()
        .post(format!("{}/api/v2/silences", a.base))
        .json(&silence)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["silenceID"].as_str().unwrap().to_owned();
    let b = replica(&dir.path().join("b"), &config, pb, pa).await;
    let on_b = eventually(Duration::from_secs(8), || {
        let url = format!("{}/api/v2/silence/{id}", b.base);
        async move {
            match reqwest::get(url).await {
                Ok(r) if r.status().is_success() => r
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["comment"] == "before B"),
                _ => false,
            }
        }
    })
    .await;
    assert!(
        on_b,
        "the full state push on join did not bring silence {id}"
    );
    assert_eq!(status(&b.base).await["cluster"]["status"], "ready");
    for r in [a, b] {
        r.api.shutdown().await;
        r.server.abort();
    }
}
