//! What Grafana's Alertmanager data source (implementation "Prometheus")
//! sends, in the order it sends it: feature discovery, the health check
//! that must tell us apart from Mimir, the alert list and groups of the
//! alerting UI with its filters, and silence create / read / expire.
//! Also: silences and the notification log kept in the object store come
//! back on a replica started with an empty disk.

mod common;

use std::time::{Duration, SystemTime};

use common::{post_alerts, rfc3339, serve};
use pharos_alerts::{AlertsApi, AlertsConfig};
use serde_json::{Value, json};

const CONFIG: &str = "route:\n  receiver: team\n  group_by: [alertname]\n  group_wait: 1h\n  routes:\n    - receiver: db\n      matchers: ['service=\"db\"']\nreceivers:\n  - name: team\n  - name: db\n";

fn router_with(dir: &std::path::Path) -> AlertsApi {
    let file = dir.join("alertmanager.yml");
    if !file.exists() {
        std::fs::write(&file, CONFIG).unwrap();
    }
    AlertsApi::from_config(&AlertsConfig {
        config_file: Some(file),
        local_path: dir.join("data"),
        ..AlertsConfig::default()
    })
    .unwrap()
}

async fn get(c: &reqwest::Client, url: String) -> (u16, String) {
    let r = c.get(&url).send().await.unwrap();
    let code = r.status().as_u16();
    (code, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_alertmanager_datasource_calls() {
    let dir = tempfile::tempdir().unwrap();
    let base = serve(router_with(dir.path())).await;
    let c = reqwest::Client::new();

    // Feature discovery: Grafana reads the Prometheus build-info endpoint
    // and only turns Mimir behaviour on if it says "Grafana Mimir".
    let (code, body) = get(&c, format!("{base}/api/v1/status/buildinfo")).await;
    assert!(
        code != 200 || !body.contains("Grafana Mimir"),
        "{code} {body}"
    );

    // Health check, implementation "prometheus": a 200 on the Mimir path
    // makes Grafana report a misconfiguration, so it must not answer...
    let (code, _) = get(&c, format!("{base}/alertmanager/api/v2/status")).await;
    assert_eq!(code, 404, "the Mimir-shaped status path must not exist");
    // ...and the plain path must, with the config Grafana shows read-only.
    let (code, body) = get(&c, format!("{base}/api/v2/status")).await;
    assert_eq!(code, 200, "{body}");
    let status: Value = serde_json::from_str(&body).unwrap();
    let original = status["config"]["original"].as_str().unwrap();
    let shown: serde_yaml::Value = serde_yaml::from_str(original).unwrap();
    assert_eq!(shown["route"]["receiver"].as_str(), Some("team"));
    assert!(status["versionInfo"]["version"].is_string(), "{status}");
    assert!(status["uptime"].is_string(), "{status}");

    // Alerts arrive (from a Prometheus or a Grafana rule).
    let ends = rfc3339(SystemTime::now() + Duration::from_secs(3600));
    post_alerts(
        &base,
        &json!([
            {"labels": {"alertname": "DiskFull", "service": "db", "instance": "a"}, "endsAt": ends},
            {"labels": {"alertname": "DiskFull", "service": "db", "instance": "b"}, "endsAt": ends},
            {"labels": {"alertname": "HighLatency", "service": "web"}, "annotations": {"summary": "slow"}, "endsAt": ends},
        ]),
    )
    .await;

    // The alert list view: groups, then alerts with the UI's filters.
    let (code, body) = get(
        &c,
        format!("{base}/api/v2/alerts/groups?silenced=false&inhibited=false&active=true"),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let groups: Value = serde_json::from_str(&body).unwrap();
    let mut seen: Vec<(String, usize)> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["receiver"]["name"].as_str().unwrap().to_owned(),
                g["alerts"].as_array().unwrap().len(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(seen, vec![("db".to_owned(), 2), ("team".to_owned(), 1)]);

    let filter = "alertname%3D%22DiskFull%22";
    let (code, body) = get(
        &c,
        format!("{base}/api/v2/alerts?silenced=false&inhibited=false&active=true&filter={filter}"),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let alerts: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(alerts.as_array().unwrap().len(), 2, "{alerts}");
    for a in alerts.as_array().unwrap() {
        assert_eq!(a["status"]["state"], "active", "{a}");
        assert_eq!(a["receivers"][0]["name"], "db", "{a}");
        assert!(a["fingerprint"].as_str().unwrap().len() == 16, "{a}");
    }

    // The receivers list of the contact-points page.
    let (code, body) = get(&c, format!("{base}/api/v2/receivers")).await;
    assert_eq!(code, 200, "{body}");
    let names: Vec<String> = serde_json::from_str::<Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"db".to_owned()) && names.contains(&"team".to_owned()));

    // "Silence" from the UI: Grafana posts matchers with isEqual, no id.
    let now = SystemTime::now();
    let silence = json!({
        "matchers": [
            {"name": "alertname", "value": "DiskFull", "isRegex": false, "isEqual": true},
            {"name": "instance", "value": "a|b", "isRegex": true, "isEqual": true}
        ],
        "startsAt": rfc3339(now),
        "endsAt": rfc3339(now + Duration::from_secs(7200)),
        "createdBy": "admin",
        "comment": "maintenance window"
    });
    let r = c
        .post(format!("{base}/api/v2/silences"))
        .json(&silence)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let id = r.json::<Value>().await.unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_owned();

    // The silences page and the silenced alerts.
    let (code, body) = get(&c, format!("{base}/api/v2/silences")).await;
    assert_eq!(code, 200, "{body}");
    let listed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed[0]["id"], id.as_str(), "{listed}");
    assert_eq!(listed[0]["status"]["state"], "active", "{listed}");
    let silenced =
        pharos_alerts_wait(&c, &base, "silenced=true&inhibited=false&active=false", 2).await;
    for a in silenced.as_array().unwrap() {
        assert_eq!(a["status"]["silencedBy"][0], id.as_str(), "{a}");
    }

    // Expire from the UI, then read it back by id.
    let r = c
        .delete(format!("{base}/api/v2/silence/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (code, body) = get(&c, format!("{base}/api/v2/silence/{id}")).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"]["state"],
        "expired"
    );
    let (code, _) = get(
        &c,
        format!("{base}/api/v2/silence/00000000-0000-0000-0000-000000000000"),
    )
    .await;
    assert_eq!(code, 404);
}

/// Polls the alert list with `query` until it holds `n` alerts.
async fn pharos_alerts_wait(c: &reqwest::Client, base: &str, query: &str, n: usize) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let (_, body) = get(c, format!("{base}/api/v2/alerts?{query}")).await;
        last = serde_json::from_str(&body).unwrap();
        if last.as_array().map(Vec::len) == Some(n) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("expected {n} alerts for {query}: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_come_back_from_the_object_store_on_an_empty_disk() {
    let store = pharos_storage::ObjectStorage::memory().scoped("alerts");
    let first = tempfile::tempdir().unwrap();
    let api = router_with(first.path());
    assert_eq!(api.attach_object_store(store.clone()).await, 0);
    let base = serve(api.clone()).await;
    let now = SystemTime::now();
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v2/silences"))
        .json(&json!({
            "matchers": [{"name": "alertname", "value": "DiskFull", "isRegex": false}],
            "startsAt": rfc3339(now),
            "endsAt": rfc3339(now + Duration::from_secs(3600)),
            "createdBy": "ops", "comment": "kept"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let id = r.json::<Value>().await.unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_owned();
    // The last snapshot at stop is copied before stop returns.
    let a = api.clone();
    tokio::task::spawn_blocking(move || a.stop()).await.unwrap();
    let copied = store.get("silences.json").await.unwrap();
    assert!(
        String::from_utf8_lossy(&copied).contains(&id),
        "snapshot in the object store names the silence"
    );

    // A new replica, new empty disk, same object store.
    let second = tempfile::tempdir().unwrap();
    std::fs::copy(
        first.path().join("alertmanager.yml"),
        second.path().join("alertmanager.yml"),
    )
    .unwrap();
    let api2 = router_with(second.path());
    assert!(api2.attach_object_store(store.clone()).await >= 1);
    let base2 = serve(api2.clone()).await;
    let listed: Value = reqwest::get(format!("{base2}/api/v2/silence/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["comment"], "kept", "{listed}");
    assert_eq!(listed["status"]["state"], "active", "{listed}");

    // A broken object in the store is reported, not fatal, and nothing
    // is taken from it.
    store
        .put("silences.json", axum::body::Bytes::from_static(b"{broken"))
        .await
        .unwrap();
    let third = tempfile::tempdir().unwrap();
    std::fs::copy(
        first.path().join("alertmanager.yml"),
        third.path().join("alertmanager.yml"),
    )
    .unwrap();
    assert_eq!(
        router_with(third.path()).attach_object_store(store).await,
        0
    );
}
