//! The dispatcher task and the webhook integration end to end: alerts go
//! in through the API, notifications come out at a real HTTP server.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{capture_server, post_alerts, rfc3339, serve};
use pharos_alerts::{AlertsApi, AlertsConfig};
use serde_json::json;

fn write_config(dir: &std::path::Path, yaml: &str) -> AlertsConfig {
    let file = dir.join("alertmanager.yml");
    std::fs::write(&file, yaml).unwrap();
    AlertsConfig {
        config_file: Some(file),
        local_path: dir.join("data"),
        ..AlertsConfig::default()
    }
}

fn names(body: &serde_json::Value) -> Vec<(String, String)> {
    body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"]["instance"].as_str().unwrap_or("").to_owned(),
                a["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_groups_retries_repeats_and_resolves_once() {
    let (hook, cap) = capture_server().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 300ms
  group_interval: 700ms
  repeat_interval: 2s
receivers:
  - name: hook
    webhook_configs:
      - url: '{hook}/hook'
        http_config:
          basic_auth: {{username: u, password: p}}
"#
        ),
    );
    let api = AlertsApi::from_config(&cfg).unwrap();
    let registry = pharos_server::Registry::new();
    api.register_metrics(&registry);
    let base = serve(api.clone()).await;
    // The first attempt fails with a 500: it must be retried.
    cap.replies.lock().unwrap().push_back(500);
    let start = Instant::now();
    let firing = |inst: &str| json!({"labels": {"alertname": "Disk", "instance": inst}, "annotations": {"summary": "s"}});
    post_alerts(&base, &json!([firing("a"), firing("b")])).await;
    // Silenced alerts are left out of notifications.
    let silence = json!({
        "matchers": [{"name": "instance", "value": "c", "isRegex": false}],
        "startsAt": rfc3339(SystemTime::now()),
        "endsAt": rfc3339(SystemTime::now() + Duration::from_secs(3600)),
        "createdBy": "t", "comment": "quiet",
    });
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v2/silences"))
        .json(&silence)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    post_alerts(&base, &json!([firing("c")])).await;

    let got = cap.wait_for("/hook", 2, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 2, "a 500 then the retry: {got:?}");
    let first = &got[1];
    let waited = first.at - start;
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(2500),
        "group_wait plus one back-off: {waited:?}"
    );
    assert_eq!(first.authorization.as_deref(), Some("Basic dTpw"));
    let b = &first.body;
    assert_eq!(b["version"], "4");
    assert_eq!(b["status"], "firing");
    assert_eq!(b["receiver"], "hook");
    assert_eq!(b["groupKey"], "{}:{alertname=\"Disk\"}");
    assert_eq!(b["groupLabels"], json!({"alertname": "Disk"}));
    assert_eq!(
        names(b),
        [("a".into(), "firing".into()), ("b".into(), "firing".into())],
        "c is silenced"
    );
    let metrics = registry.render();
    assert!(
        metrics
            .contains("alertmanager_notification_requests_failed_total{integration=\"webhook\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("alertmanager_notifications_total{integration=\"webhook\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("alertmanager_notification_latency_seconds_bucket{integration=\"webhook\"")
    );
    assert!(
        metrics.contains("alertmanager_dispatcher_aggregation_groups 1"),
        "{metrics}"
    );

    // Nothing changes: the next notification is the repeat, after
    // repeat_interval rounded up to a group interval.
    let got = cap.wait_for("/hook", 3, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 3);
    let gap = got[2].at - got[1].at;
    assert!(
        gap >= Duration::from_millis(1900) && gap < Duration::from_millis(3600),
        "repeat after ~2s: {gap:?}"
    );
    assert_eq!(names(&got[2].body).len(), 2);

    // Resolve b: told once with b resolved, then b leaves the group.
    let now = rfc3339(SystemTime::now());
    post_alerts(
        &base,
        &json!([{"labels": {"alertname": "Disk", "instance": "b"}, "endsAt": now}]),
    )
    .await;
    let got = cap.wait_for("/hook", 4, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 4);
    assert_eq!(
        names(&got[3].body),
        [
            ("a".into(), "firing".into()),
            ("b".into(), "resolved".into())
        ]
    );
    let groups: serde_json::Value = reqwest::get(format!("{base}/api/v2/alerts/groups"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: Vec<&str> = groups[0]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["instance"].as_str().unwrap())
        .collect();
    assert!(!listed.contains(&"b"), "resolved and notified: {groups}");
    // Resolve everything: one resolved notification, then silence.
    post_alerts(
        &base,
        &json!([
            {"labels": {"alertname": "Disk", "instance": "a"}, "endsAt": now},
            {"labels": {"alertname": "Disk", "instance": "c"}, "endsAt": now},
        ]),
    )
    .await;
    let got = cap.wait_for("/hook", 5, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 5);
    assert_eq!(got[4].body["status"], "resolved");
    assert_eq!(names(&got[4].body), [("a".into(), "resolved".into())]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(cap.on("/hook").len(), 5, "resolved is sent once");

    api.shutdown().await;
    assert!(dir.path().join("data/silences.json").is_file());
    assert!(dir.path().join("data/nflog.json").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_silences_and_does_not_resend() {
    let (hook, cap) = capture_server().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 200ms
  group_interval: 500ms
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs: [{{url: '{hook}/hook', http_config: {{authorization: {{credentials: tok}}}}}}]
"#
        ),
    );
    let api = AlertsApi::from_config(&cfg).unwrap();
    let base = serve(api.clone()).await;
    let alert = json!([{"labels": {"alertname": "Up", "instance": "x"}}]);
    post_alerts(&base, &alert).await;
    let got = cap.wait_for("/hook", 1, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].authorization.as_deref(), Some("Bearer tok"));
    let silence = json!({
        "matchers": [{"name": "alertname", "value": "Other", "isRegex": false}],
        "startsAt": rfc3339(SystemTime::now()),
        "endsAt": rfc3339(SystemTime::now() + Duration::from_secs(3600)),
        "createdBy": "t", "comment": "kept",
    });
    let id: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/api/v2/silences"))
        .json(&silence)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The synchronous stop a shutdown hook calls.
    api.stop();

    // A new process on the same disk: the silence is back, and the firing
    // alert Prometheus re-sends is not notified again.
    let api2 = AlertsApi::from_config(&cfg).unwrap();
    let base2 = serve(api2.clone()).await;
    let sils: serde_json::Value = reqwest::get(format!("{base2}/api/v2/silences"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sils[0]["id"], id["silenceID"], "{sils}");
    assert_eq!(sils[0]["comment"], "kept");
    post_alerts(&base2, &alert).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(cap.on("/hook").len(), 1, "already notified before restart");
    // Its resolution still goes out: the log remembered it was firing.
    let now = rfc3339(SystemTime::now());
    post_alerts(
        &base2,
        &json!([{"labels": {"alertname": "Up", "instance": "x"}, "endsAt": now}]),
    )
    .await;
    let got = cap.wait_for("/hook", 2, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].body["status"], "resolved");
    api2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_are_not_retried_and_snapshots_run_on_a_timer() {
    let (hook, cap) = capture_server().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "route: {{receiver: hook, group_wait: 100ms, group_interval: 10s}}\nreceivers: [{{name: hook, webhook_configs: [{{url: '{hook}/hook'}}]}}]\n"
        ),
    );
    let api = AlertsApi::from_config_with_maintenance(&cfg, Duration::from_millis(300)).unwrap();
    let base = serve(api.clone()).await;
    cap.replies.lock().unwrap().push_back(400);
    post_alerts(&base, &json!([{"labels": {"alertname": "A"}}])).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        cap.on("/hook").len(),
        1,
        "a 4xx is final until the next flush"
    );
    assert!(
        dir.path().join("data/nflog.json").is_file(),
        "periodic snapshot without shutdown"
    );
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_rebuilds_groups_but_keeps_the_log() {
    let (hook, cap) = capture_server().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = |group_by: &str| {
        format!(
            "route: {{receiver: hook, group_by: [{group_by}], group_wait: 100ms, group_interval: 400ms, repeat_interval: 1h}}\nreceivers: [{{name: hook, webhook_configs: [{{url: '{hook}/hook'}}]}}]\n"
        )
    };
    let cfg = write_config(dir.path(), &yaml("alertname"));
    let api = AlertsApi::from_config(&cfg).unwrap();
    let base = serve(api.clone()).await;
    post_alerts(&base, &json!([{"labels": {"alertname": "A", "team": "x"}}])).await;
    assert_eq!(
        cap.wait_for("/hook", 1, Duration::from_secs(3)).await.len(),
        1
    );
    // Same grouping after the reload: already notified, nothing new.
    api.reload().unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(cap.on("/hook").len(), 1, "the log survived the reload");
    // Grouping by another label makes a new group key: notified anew.
    std::fs::write(cfg.config_file.as_ref().unwrap(), yaml("team")).unwrap();
    api.reload().unwrap();
    let got = cap.wait_for("/hook", 2, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].body["groupKey"], "{}:{team=\"x\"}");
    let groups = api.groups();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].group_key, "{}:{team=\"x\"}");
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_messages_reach_the_incoming_webhook() {
    let (hook, cap) = capture_server().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "global: {{slack_api_url: '{hook}/slack'}}\nroute: {{receiver: s, group_by: [alertname], group_wait: 100ms, group_interval: 10s}}\nreceivers: [{{name: s, slack_configs: [{{channel: '#ops', send_resolved: true}}]}}]\n"
        ),
    );
    let api = AlertsApi::from_config(&cfg).unwrap();
    let base = serve(api.clone()).await;
    post_alerts(
        &base,
        &json!([{"labels": {"alertname": "Hot", "zone": "b"}}]),
    )
    .await;
    let got = cap.wait_for("/slack", 1, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1);
    let b = &got[0].body;
    assert_eq!(b["channel"], "#ops");
    assert_eq!(b["attachments"][0]["title"], "[FIRING:1] Hot (b)");
    assert_eq!(b["attachments"][0]["color"], "danger");
    api.shutdown().await;
}
