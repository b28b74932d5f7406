use super::*;
use axum::body::Body;
use http::Request;
use pharos_server::testing::{Answer, get as get_path, post, send};

fn app(api: &AlertsApi) -> Router {
    router(api.clone())
}

async fn delete(app: Router, path: &str) -> Answer {
    send(app, Request::delete(path).body(Body::empty()).unwrap()).await
}

fn in_ms(offset: Millis) -> String {
    format_ms(now_ms() + offset)
}

const H: Millis = 3_600_000;

fn api_with(yaml: &str) -> (AlertsApi, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alertmanager.yml");
    std::fs::write(&path, yaml).unwrap();
    let cfg = AlertsConfig {
        config_file: Some(path),
        // Never the default ./data: snapshots would leak between tests.
        local_path: dir.path().join("data"),
        ..AlertsConfig::default()
    };
    (AlertsApi::from_config(&cfg).unwrap(), dir)
}

const CONFIG: &str = r#"
route:
  receiver: team
  group_by: [alertname]
  routes:
    - matchers: [severity="critical"]
      receiver: pager
      continue: true
receivers: [{name: team}, {name: pager}]
inhibit_rules:
  - source_matchers: [severity=critical]
    target_matchers: [severity=warning]
    equal: [alertname]
"#;

#[tokio::test]
async fn post_and_list_alerts_with_defaults() {
    let api = AlertsApi::default();
    let body = r#"[{"labels":{"alertname":"Test","severity":"critical","empty":""},"annotations":{"summary":"s"},"generatorURL":"http://g"}]"#;
    let r = post(app(&api), "/api/v2/alerts", body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = get_path(app(&api), "/api/v2/alerts").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    let a = &v[0];
    assert_eq!(
        a["labels"],
        json!({"alertname": "Test", "severity": "critical"})
    );
    assert_eq!(a["annotations"]["summary"], "s");
    assert_eq!(a["generatorURL"], "http://g");
    assert_eq!(a["receivers"], json!([{"name": "default"}]));
    assert_eq!(
        a["status"],
        json!({"inhibitedBy": [], "mutedBy": [], "silencedBy": [], "state": "active"})
    );
    let labels: LabelSet = [("alertname", "Test"), ("severity", "critical")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        a["fingerprint"],
        format!("{:016x}", crate::store::fingerprint(&labels))
    );
    // No endsAt: resolve_timeout (5m) from now, marked as derived.
    let starts = parse_rfc3339(a["startsAt"].as_str().unwrap()).unwrap();
    let ends = parse_rfc3339(a["endsAt"].as_str().unwrap()).unwrap();
    assert_eq!(ends - starts, 300_000);
    assert!(api.inner.alerts.all()[0].timeout);
}

#[tokio::test]
async fn invalid_alerts_are_rejected_but_valid_ones_kept() {
    let api = AlertsApi::default();
    let body = format!(
        r#"[{{"labels":{{}}}},{{"labels":{{"alertname":"Ok"}}}},{{"labels":{{"alertname":"Bad"}},"startsAt":"{}","endsAt":"{}"}},{{"labels":{{"1x":"y"}}}}]"#,
        in_ms(H),
        in_ms(0)
    );
    let r = post(app(&api), "/api/v2/alerts", body).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!(
            "at least one label pair required; start time must be before end time; invalid label set: invalid name \"1x\""
        )
    );
    let v = get_path(app(&api), "/api/v2/alerts").await.json();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["labels"]["alertname"], "Ok");

    let r = post(app(&api), "/api/v2/alerts", "{").await;
    assert_eq!(r.status, 400);
    let r = post(
        app(&api),
        "/api/v2/alerts",
        r#"[{"labels":{"a":"b"},"startsAt":"yesterday"}]"#,
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(r.json()["message"].as_str().unwrap().contains("date-time"));
}

#[tokio::test]
async fn resolved_alerts_are_hidden() {
    let api = AlertsApi::default();
    let body = format!(
        r#"[{{"labels":{{"alertname":"Old"}},"startsAt":"{}","endsAt":"{}"}}]"#,
        in_ms(-2 * H),
        in_ms(-H)
    );
    assert_eq!(post(app(&api), "/api/v2/alerts", body).await.status, 200);
    assert_eq!(
        get_path(app(&api), "/api/v2/alerts").await.json(),
        json!([])
    );
    api.gc(now_ms());
    assert!(api.inner.alerts.is_empty());
}

#[tokio::test]
async fn filters_silences_and_inhibition() {
    let (api, _dir) = api_with(CONFIG);
    let body = r#"[{"labels":{"alertname":"A","severity":"critical"}},{"labels":{"alertname":"A","severity":"warning"}},{"labels":{"alertname":"B","severity":"warning","team":"x"}}]"#;
    assert_eq!(post(app(&api), "/api/v2/alerts", body).await.status, 200);

    let all = get_path(app(&api), "/api/v2/alerts").await.json();
    assert_eq!(all.as_array().unwrap().len(), 3);
    let crit = all
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["severity"] == "critical")
        .unwrap();
    assert_eq!(crit["receivers"], json!([{"name": "pager"}]));
    let inhibited = all
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"] == json!({"alertname": "A", "severity": "warning"}))
        .unwrap();
    assert_eq!(inhibited["status"]["state"], "suppressed");
    assert_eq!(
        inhibited["status"]["inhibitedBy"],
        json!([crit["fingerprint"]])
    );

    let q = |s: &'static str| get_path(app(&api), s);
    let n = |v: Value| v.as_array().unwrap().len();
    assert_eq!(n(q("/api/v2/alerts?inhibited=false").await.json()), 2);
    assert_eq!(
        n(q("/api/v2/alerts?filter=severity%3D%22warning%22")
            .await
            .json()),
        2
    );
    assert_eq!(
        n(q("/api/v2/alerts?filter=severity=warning&filter=team=~x")
            .await
            .json()),
        1
    );
    assert_eq!(n(q("/api/v2/alerts?receiver=pag.*").await.json()), 1);
    assert_eq!(n(q("/api/v2/alerts?active=false").await.json()), 1);
    let r = q("/api/v2/alerts?filter=%3Dx").await;
    assert_eq!(
        (r.status.as_u16(), r.json()),
        (400, json!("bad matcher format: =x"))
    );
    assert_eq!(q("/api/v2/alerts?silenced=maybe").await.status, 400);
    assert_eq!(q("/api/v2/alerts?receiver=((").await.status, 400);

    // Silence B.
    let sil = format!(
        r#"{{"matchers":[{{"name":"alertname","value":"B","isRegex":false}}],"startsAt":"{}","endsAt":"{}","createdBy":"me","comment":"c"}}"#,
        in_ms(0),
        in_ms(H)
    );
    let r = post(app(&api), "/api/v2/silences", sil).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["silenceID"].as_str().unwrap().to_owned();
    let b = q("/api/v2/alerts?filter=alertname=B").await.json();
    assert_eq!(b[0]["status"]["silencedBy"], json!([id]));
    assert_eq!(b[0]["status"]["state"], "suppressed");
    assert_eq!(n(q("/api/v2/alerts?silenced=false").await.json()), 2);
}

#[tokio::test]
async fn groups_follow_routes() {
    let (api, _dir) = api_with(CONFIG);
    let body = r#"[{"labels":{"alertname":"A","severity":"critical","job":"b"}},{"labels":{"alertname":"A","severity":"critical","job":"a"}},{"labels":{"alertname":"B"}}]"#;
    assert_eq!(post(app(&api), "/api/v2/alerts", body).await.status, 200);
    let v = get_path(app(&api), "/api/v2/alerts/groups").await.json();
    let groups = v.as_array().unwrap();
    assert_eq!(groups.len(), 2, "{v}");
    assert_eq!(groups[0]["labels"], json!({"alertname": "A"}));
    assert_eq!(groups[0]["receiver"], json!({"name": "pager"}));
    let jobs: Vec<&str> = groups[0]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["job"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["a", "b"]);
    assert_eq!(groups[1]["labels"], json!({"alertname": "B"}));
    assert_eq!(groups[1]["receiver"]["name"], "team");
    let v = get_path(app(&api), "/api/v2/alerts/groups?receiver=team")
        .await
        .json();
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn silence_api_lifecycle() {
    let api = AlertsApi::default();
    let mk = |start: Millis, end: Millis, id: &str| {
        format!(
            r#"{{"id":"{id}","matchers":[{{"name":"alertname","value":"T.*","isRegex":true,"isEqual":true}}],"startsAt":"{}","endsAt":"{}","createdBy":"me","comment":"c"}}"#,
            in_ms(start),
            in_ms(end)
        )
    };
    let r = post(app(&api), "/api/v2/silences", mk(-H, -1000, "")).await;
    assert_eq!(
        (r.status.as_u16(), r.json()),
        (
            400,
            json!("Failed to create silence: end time can't be in the past")
        )
    );
    let r = post(app(&api), "/api/v2/silences", mk(H, H, "")).await;
    assert_eq!(
        r.json(),
        json!("Failed to create silence: start time must be before end time")
    );
    let r = post(
        app(&api),
        "/api/v2/silences",
        mk(0, H, "5f3c9a3e-7d6c-4b1a-9f2e-0a1b2c3d4e5f"),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.json()),
        (404, json!("silence not found"))
    );
    let r = post(app(&api), "/api/v2/silences", r#"{"matchers":[]}"#).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["message"],
        "matchers in body should have at least 1 items"
    );
    let r = post(
        app(&api),
        "/api/v2/silences",
        r#"{"matchers":[{"name":"a","value":"b","isRegex":false}]}"#,
    )
    .await;
    assert_eq!(
        r.json(),
        json!({"code": 602, "message": "startsAt in body is required"})
    );

    let r = post(app(&api), "/api/v2/silences", mk(0, H, "")).await;
    let id = r.json()["silenceID"].as_str().unwrap().to_owned();
    let pending = post(app(&api), "/api/v2/silences", mk(H, 2 * H, ""))
        .await
        .json()["silenceID"]
        .as_str()
        .unwrap()
        .to_owned();
    let s = get_path(app(&api), &format!("/api/v2/silence/{id}"))
        .await
        .json();
    assert_eq!(s["status"]["state"], "active");
    assert_eq!(
        s["matchers"][0],
        json!({"isEqual": true, "isRegex": true, "name": "alertname", "value": "T.*"})
    );
    assert_eq!(s["createdBy"], "me");

    let list = get_path(app(&api), "/api/v2/silences").await.json();
    assert_eq!(list[0]["id"], json!(id));
    assert_eq!(list[1]["status"]["state"], "pending");
    let list = get_path(app(&api), "/api/v2/silences?filter=alertname%3D%22T.*%22")
        .await
        .json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let list = get_path(app(&api), "/api/v2/silences?filter=alertname=other")
        .await
        .json();
    assert_eq!(list, json!([]));

    assert_eq!(
        delete(app(&api), &format!("/api/v2/silence/{pending}"))
            .await
            .status,
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    let s = get_path(app(&api), &format!("/api/v2/silence/{pending}"))
        .await
        .json();
    assert_eq!(s["status"]["state"], "expired");
    let r = delete(app(&api), &format!("/api/v2/silence/{pending}")).await;
    assert_eq!(
        (r.status.as_u16(), r.json()),
        (500, json!(format!("silence {pending} already expired")))
    );

    let unknown = "5f3c9a3e-7d6c-4b1a-9f2e-0a1b2c3d4e5f";
    let r = get_path(app(&api), &format!("/api/v2/silence/{unknown}")).await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (404, ""));
    assert_eq!(
        delete(app(&api), &format!("/api/v2/silence/{unknown}"))
            .await
            .status,
        404
    );
    let r = get_path(app(&api), "/api/v2/silence/nope").await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["code"], 601);
}

#[tokio::test]
async fn status_receivers_and_reload() {
    let (api, dir) = api_with(
        "global: {slack_api_url: 'https://hooks.example/T/SECRET'}\nroute: {receiver: a}\nreceivers: [{name: a, slack_configs: [{channel: x}]}]\n",
    );
    let v = get_path(app(&api), "/api/v2/status").await.json();
    assert_eq!(v["cluster"], json!({"peers": [], "status": "disabled"}));
    let original = v["config"]["original"].as_str().unwrap();
    assert!(!original.contains("SECRET"), "{original}");
    assert!(original.contains("slack_api_url: <secret>"), "{original}");
    assert!(parse_rfc3339(v["uptime"].as_str().unwrap()).is_some());
    assert_eq!(v["versionInfo"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        get_path(app(&api), "/api/v2/receivers").await.json(),
        json!([{"name": "a"}])
    );

    // State survives a reload; a broken file keeps the old config.
    let body = r#"[{"labels":{"alertname":"Keep"}}]"#;
    assert_eq!(post(app(&api), "/api/v2/alerts", body).await.status, 200);
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        "route: {receiver: b}\nreceivers: [{name: b}, {name: c}]\n",
    )
    .unwrap();
    assert_eq!(post(app(&api), "/-/reload", "").await.status, 200);
    assert_eq!(
        get_path(app(&api), "/api/v2/receivers").await.json(),
        json!([{"name": "b"}, {"name": "c"}])
    );
    let a = get_path(app(&api), "/api/v2/alerts").await.json();
    assert_eq!(a[0]["receivers"], json!([{"name": "b"}]));
    std::fs::write(dir.path().join("alertmanager.yml"), "route: {}\n").unwrap();
    let r = post(app(&api), "/-/reload", "").await;
    assert_eq!(r.status, 500);
    assert!(
        r.body
            .contains("failed to reload config: root route must specify a default receiver"),
        "{}",
        r.body
    );
    assert_eq!(
        get_path(app(&api), "/api/v2/receivers")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn misc_routes() {
    let api = AlertsApi::default();
    let a = get_path(app(&api), "/api/v1/alerts").await;
    assert_eq!(a.status, 410);
    assert!(a.json().as_str().unwrap().contains("v2 API"));
    assert_eq!(get_path(app(&api), "/-/healthy").await.body, "OK");
    assert_eq!(get_path(app(&api), "/-/ready").await.status, 200);
    let r = get_path(app(&api), "/api/v2/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "path /api/v2/nope was not found");
    assert!(
        AlertsApi::from_config(&AlertsConfig {
            config_file: Some("/nonexistent/am.yml".into()),
            ..AlertsConfig::default()
        })
        .is_err()
    );
    let r = send(
        app(&api),
        Request::get("/api/v2/alerts")
            .header("X-Scope-OrgID", "team-a")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 501);
}

#[test]
fn decodes_queries() {
    assert_eq!(decode("a%3D%22b+c%22%"), "a=\"b c\"%");
    assert_eq!(decode("%e2%9c%93%zz"), "✓%zz");
}

#[tokio::test]
async fn metrics_count_alerts_silences_and_reloads() {
    let (api, dir) = api_with(CONFIG);
    let registry = Registry::new();
    api.register_metrics(&registry);
    api.register_metrics(&registry);
    let body = format!(
        r#"[{{"labels":{{"alertname":"A","severity":"critical"}}}},{{"labels":{{"alertname":"A","severity":"warning"}}}},{{"labels":{{"alertname":"R"}},"startsAt":"{}","endsAt":"{}"}},{{"labels":{{}}}}]"#,
        in_ms(-2 * H),
        in_ms(-H)
    );
    assert_eq!(post(app(&api), "/api/v2/alerts", body).await.status, 400);
    let text = registry.render();
    for line in [
        "alertmanager_alerts_received_total{status=\"firing\",version=\"v2\"} 3",
        "alertmanager_alerts_received_total{status=\"resolved\",version=\"v2\"} 1",
        "alertmanager_alerts_invalid_total{version=\"v2\"} 1",
        "alertmanager_alerts{state=\"active\"} 1",
        "alertmanager_alerts{state=\"suppressed\"} 1",
        "alertmanager_silences{state=\"active\"} 0",
        "alertmanager_config_last_reload_successful 1",
    ] {
        assert!(text.contains(line), "{line} missing in\n{text}");
    }
    assert_eq!(text.matches("# TYPE alertmanager_alerts gauge").count(), 1);
    std::fs::write(dir.path().join("alertmanager.yml"), "nope: 1\n").unwrap();
    assert!(api.reload().is_err());
    assert!(
        registry
            .render()
            .contains("alertmanager_config_last_reload_successful 0")
    );
}
