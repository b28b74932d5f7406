//! Two `alert-router` processes in one gossip cluster, the same alerts
//! posted to both, one webhook receiver: one notification per group; and
//! when the replica whose turn it is to send is killed with SIGKILL in
//! the middle of a group's wait, the other one still sends it, once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::post;

use crate::support::{Proc, client, free_port, get_text, metric_value, wait_ready};

type Got = Arc<Mutex<Vec<serde_json::Value>>>;

/// A webhook receiver that keeps every payload.
async fn capture() -> (String, Got) {
    let got: Got = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: Bytes| {
            let g = g.clone();
            async move {
                if let Ok(v) = serde_json::from_slice(&body) {
                    g.lock().unwrap().push(v);
                }
                ""
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (url, got)
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

struct Replica {
    proc: Proc,
    base: String,
}

async fn replica(dir: &std::path::Path, config: &std::path::Path, me: u16, peer: u16) -> Replica {
    let (port, grpc) = (free_port(), free_port());
    std::fs::create_dir_all(dir).unwrap();
    let mut proc = Proc::start(
        "alert-router",
        &[
            &format!("--config.file={}", config.display()),
            &format!("--storage.path={}", dir.join("data").display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
            &format!("--cluster.listen-address=127.0.0.1:{me}"),
            &format!("--cluster.peer=127.0.0.1:{peer}"),
            "--cluster.peer-timeout=2s",
            &format!("--server.grpc-listen-port={grpc}"),
            &format!(
                "--storage.filesystem.path={}",
                dir.join("objects").display()
            ),
        ],
        dir,
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&mut proc, &format!("{base}/ready"), Duration::from_secs(20)).await;
    Replica { proc, base }
}

async fn status(c: &reqwest::Client, base: &str) -> serde_json::Value {
    match c.get(format!("{base}/api/v2/status")).send().await {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    }
}

/// This replica's `alertmanager_peer_position` from its `/metrics`.
async fn position(c: &reqwest::Client, base: &str) -> u32 {
    let text = get_text(c, &format!("{base}/metrics")).await;
    assert!(
        text.contains("alertmanager_peer_position "),
        "no alertmanager_peer_position in /metrics:\n{text}"
    );
    metric_value(&text, "alertmanager_peer_position ") as u32
}

async fn post_both(c: &reqwest::Client, bases: &[&str], alerts: &serde_json::Value) {
    for b in bases {
        let r = c
            .post(format!("{b}/api/v2/alerts"))
            .json(alerts)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{b}");
    }
}

fn sent_for(got: &Got, alertname: &str) -> usize {
    got.lock()
        .unwrap()
        .iter()
        .filter(|p| p["groupLabels"]["alertname"] == alertname && p["status"] == "firing")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_send_once_and_survive_a_kill_9() {
    let (hook, got) = capture().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 3s\n  group_interval: 10m\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: '{hook}'\n"
        ),
    )
    .unwrap();
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let a = replica(&dir.path().join("a"), &config, pa, pb).await;
    let b = replica(&dir.path().join("b"), &config, pb, pa).await;
    let c = client();

    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let (sa, sb) = (status(&c, &a.base).await, status(&c, &b.base).await);
        let formed = [&sa, &sb].iter().all(|s| {
            s["cluster"]["status"] == "ready"
                && s["cluster"]["peers"].as_array().map_or(0, Vec::len) == 2
        });
        if formed {
            break;
        }
        assert!(Instant::now() < end, "cluster did not form: {sa} / {sb}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Both replicas get the same group: one notification for the cluster.
    let one = serde_json::json!([
        {"labels": {"alertname": "One", "instance": "x"}},
        {"labels": {"alertname": "One", "instance": "y"}},
    ]);
    post_both(&c, &[&a.base, &b.base], &one).await;
    // group_wait 3 s + the second replica's 2 s turn + slack.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(sent_for(&got, "One"), 1, "{:?}", got.lock().unwrap());

    // The replica whose turn comes first is killed while the next group
    // waits; the other must notice nothing was sent and send it.
    let (pos_a, pos_b) = (position(&c, &a.base).await, position(&c, &b.base).await);
    assert_eq!(
        {
            let mut v = [pos_a, pos_b];
            v.sort();
            v
        },
        [0, 1]
    );
    let (mut first, second) = if pos_a == 0 { (a, b) } else { (b, a) };
    let two = serde_json::json!([{"labels": {"alertname": "Two", "instance": "x"}}]);
    let posted = Instant::now();
    post_both(&c, &[&first.base, &second.base], &two).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    first.proc.signal("KILL");
    let _ = first.proc.wait_exit(Duration::from_secs(5));

    let end = posted + Duration::from_secs(20);
    while sent_for(&got, "Two") == 0 && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        sent_for(&got, "Two"),
        1,
        "the survivor sends the group: {:?}",
        got.lock().unwrap()
    );
    let took = posted.elapsed();
    assert!(
        took < Duration::from_secs(12),
        "sent after {took:?}, expected about group_wait + one peer timeout"
    );
    // And only once, even after its next turn would have come.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sent_for(&got, "Two"), 1);
    assert_eq!(sent_for(&got, "One"), 1, "nothing re-sent after the kill");
    drop(second);
}
