use super::*;
use crate::config::Config;

const T0: Millis = 1_700_000_000_000;

fn labels(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn alert(pairs: &[(&str, &str)], end: Millis) -> Alert {
    Alert {
        labels: labels(pairs),
        annotations: labels(&[("summary", "disk <full>")]),
        starts_at: T0,
        ends_at: end,
        generator_url: "http://prom/graph".into(),
        updated_at: T0,
        timeout: false,
    }
}

fn data(alerts: Vec<Alert>) -> NotifyData {
    NotifyData::new(
        "team",
        "{}:{alertname=\"Disk\"}",
        &labels(&[("alertname", "Disk")]),
        alerts,
        "http://am.example:9093",
        T0 + 1000,
    )
}

#[test]
fn default_subject_counts_firing_and_lists_values() {
    let t = Templates::defaults().unwrap();
    let d = data(vec![
        alert(
            &[("alertname", "Disk"), ("env", "prod"), ("host", "a")],
            T0 + 60_000,
        ),
        alert(
            &[("alertname", "Disk"), ("env", "prod"), ("host", "b")],
            T0 + 500,
        ),
    ]);
    let subject = t
        .text(
            r#"{{ template "email.default.subject" . }}"#,
            &d.template_value(),
        )
        .unwrap();
    // One still firing, one resolved; env is common beyond the group
    // labels, host is not common.
    assert_eq!(subject, "[FIRING:1] Disk (prod)");
    let all_resolved = data(vec![alert(&[("alertname", "Disk")], T0)]);
    let subject = t
        .text(
            r#"{{ template "__subject" . }}"#,
            &all_resolved.template_value(),
        )
        .unwrap();
    assert_eq!(subject, "[RESOLVED] Disk");
}

#[test]
fn default_bodies_list_alerts_and_escape_html() {
    let t = Templates::defaults().unwrap();
    let d = data(vec![
        alert(&[("alertname", "Disk"), ("host", "a")], T0 + 60_000),
        alert(&[("alertname", "Disk"), ("host", "b")], T0),
    ]);
    let v = d.template_value();
    let text = t
        .text(r#"{{ template "email.default.text" . }}"#, &v)
        .unwrap();
    assert!(text.contains("1 firing:"), "{text}");
    assert!(text.contains(" - host = a"), "{text}");
    assert!(text.contains("1 resolved:"), "{text}");
    assert!(text.contains("http://am.example:9093/#/alerts?receiver=team"));
    let html = t
        .html(r#"{{ template "email.default.html" . }}"#, &v)
        .unwrap();
    assert!(html.contains("disk &lt;full&gt;"), "escaped: {html}");
    assert!(html.contains("<h3>1 resolved</h3>"), "{html}");
}

#[test]
fn user_templates_override_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.tmpl"),
        r#"{{ define "__subject" }}custom {{ .Receiver }}{{ end }}"#,
    )
    .unwrap();
    let t = Templates::load(&["*.tmpl".into()], Some(dir.path())).unwrap();
    let out = t
        .text(
            r#"{{ template "email.default.subject" . }}"#,
            &data(vec![]).template_value(),
        )
        .unwrap();
    assert_eq!(out, "custom team");
    std::fs::write(dir.path().join("bad.tmpl"), "{{ if }").unwrap();
    assert!(matches!(
        Templates::load(&["*.tmpl".into()], Some(dir.path())),
        Err(TemplateLoadError::Parse { .. })
    ));
}

fn webhook(yaml_extra: &str) -> webhook::Webhook {
    let cfg = Config::load(&format!(
        "route: {{receiver: r}}\nreceivers: [{{name: r, webhook_configs: [{{url: 'http://127.0.0.1:1/'{yaml_extra}}}]}}]\n"
    ))
    .unwrap();
    webhook::Webhook::new(
        &cfg.receivers[0].webhook_configs[0],
        &cfg.global.http_config,
    )
    .unwrap()
}

#[test]
fn webhook_payload_is_version_4_and_truncates() {
    let d = data(vec![
        alert(&[("alertname", "Disk"), ("host", "a")], T0 + 60_000),
        alert(&[("alertname", "Disk"), ("host", "b")], T0),
    ]);
    let p = webhook("").payload(&d);
    assert_eq!(p["version"], "4");
    assert_eq!(p["status"], "firing");
    assert_eq!(p["receiver"], "team");
    assert_eq!(p["groupKey"], "{}:{alertname=\"Disk\"}");
    assert_eq!(p["truncatedAlerts"], 0);
    assert_eq!(p["commonLabels"], serde_json::json!({"alertname": "Disk"}));
    assert_eq!(
        p["commonAnnotations"],
        serde_json::json!({"summary": "disk <full>"})
    );
    assert_eq!(p["externalURL"], "http://am.example:9093");
    let a = &p["alerts"];
    assert_eq!(a[0]["status"], "firing");
    assert_eq!(a[1]["status"], "resolved");
    assert_eq!(a[0]["startsAt"], "2023-11-14T22:13:20Z");
    assert_eq!(
        a[0]["endsAt"], "0001-01-01T00:00:00Z",
        "not reached: hidden"
    );
    assert_eq!(a[1]["endsAt"], "2023-11-14T22:13:20Z");
    assert_eq!(a[0]["generatorURL"], "http://prom/graph");
    assert_eq!(
        a[0]["fingerprint"],
        format!("{:016x}", d.alerts[0].fingerprint())
    );
    let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 10, "{keys:?}");
    let p = webhook(", max_alerts: 1").payload(&d);
    assert_eq!(p["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(p["truncatedAlerts"], 1);
}

#[test]
fn go_time_trims_fraction() {
    assert_eq!(go_time_json(0), "1970-01-01T00:00:00Z");
    assert_eq!(go_time_json(1500), "1970-01-01T00:00:01.5Z");
    assert_eq!(go_time_json(1_230), "1970-01-01T00:00:01.23Z");
}

#[test]
fn backoff_grows_and_is_capped() {
    assert_eq!(backoff(0, 0.5), Duration::from_millis(500));
    assert_eq!(backoff(1, 0.5), Duration::from_millis(750));
    assert!(backoff(2, 0.0) < backoff(2, 1.0));
    assert_eq!(backoff(100, 0.5), Duration::from_secs(60));
    assert_eq!(
        flush_timeout(Duration::from_secs(1)),
        Duration::from_secs(10)
    );
    assert_eq!(
        flush_timeout(Duration::from_secs(300)),
        Duration::from_secs(300)
    );
}

#[test]
fn email_message_has_default_headers_and_both_bodies() {
    let cfg = Config::load(
        "global: {smtp_smarthost: 'localhost:25', smtp_from: 'am@example.org'}\nroute: {receiver: r}\nreceivers: [{name: r, email_configs: [{to: 'a@example.org, b@example.org', headers: {x-team: '{{ .Receiver }}'}}]}]\n",
    )
    .unwrap();
    let t = Arc::new(Templates::defaults().unwrap());
    let e = email::Email::new(&cfg.receivers[0].email_configs[0], t).unwrap();
    let d = data(vec![alert(&[("alertname", "Disk")], T0 + 60_000)]);
    let raw = String::from_utf8(e.message(&d).unwrap().formatted()).unwrap();
    assert!(raw.contains("Subject: [FIRING:1] Disk"), "{raw}");
    assert!(raw.contains("From: am@example.org"), "{raw}");
    assert!(raw.contains("a@example.org, b@example.org"), "{raw}");
    assert!(raw.contains("X-Team: team"), "{raw}");
    assert!(raw.contains("\r\nDate: "), "{raw}");
    assert!(raw.contains("\r\nMessage-ID: <"), "{raw}");
    assert!(raw.contains("multipart/alternative"), "{raw}");
    assert!(
        raw.contains("text/plain") && raw.contains("text/html"),
        "{raw}"
    );
}

#[test]
fn notifiers_cover_every_integration_and_refuse_unbuilt_kinds() {
    let cfg = Config::load(
        "route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{url: 'http://x/'}], discord_configs: [{webhook_url: 'https://d/x'}]}]\n",
    )
    .unwrap();
    let t = Arc::new(Templates::defaults().unwrap());
    let n = Notifiers::build(&cfg, &t).unwrap();
    let is = crate::dispatch::integrations(&cfg.receivers[0]);
    assert!(matches!(n.get(&is[0]).as_deref(), Some(Sender::Webhook(_))));
    assert!(matches!(n.get(&is[1]).as_deref(), Some(Sender::Discord(_))));
    let cfg = Config::load(
        "route: {receiver: r}\nreceivers: [{name: r, pushover_configs: [{user_key: u, token: t}]}]\n",
    )
    .unwrap();
    let n = Notifiers::build(&cfg, &t).unwrap();
    let is = crate::dispatch::integrations(&cfg.receivers[0]);
    let pushover = n.get(&is[0]).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let err = rt
        .block_on(pushover.send(&data(vec![]), Duration::from_secs(1)))
        .unwrap_err();
    assert_eq!(err, NotifyError::Unsupported("pushover"));
}

#[test]
fn slack_payload_renders_defaults_and_fields() {
    let cfg = Config::load(
        r#"
route: {receiver: r}
receivers:
  - name: r
    slack_configs:
      - api_url: 'http://127.0.0.1:1/slack'
        channel: '#ops'
        fields: [{title: 'Env', value: '{{ .CommonLabels.env }}'}]
        short_fields: true
        actions: [{type: button, text: 'Runbook', url: 'http://rb/{{ .GroupLabels.alertname }}'}]
"#,
    )
    .unwrap();
    let t = Arc::new(Templates::defaults().unwrap());
    let s = slack::Slack::new(
        &cfg.receivers[0].slack_configs[0],
        &cfg.global.http_config,
        t,
    )
    .unwrap();
    let d = data(vec![alert(
        &[("alertname", "Disk"), ("env", "prod")],
        T0 + 60_000,
    )]);
    let p = s.payload(&d).unwrap();
    assert_eq!(p["channel"], "#ops");
    assert_eq!(p["username"], "Alertmanager");
    assert!(p.get("icon_emoji").is_none(), "empty fields are left out");
    let a = &p["attachments"][0];
    assert_eq!(a["title"], "[FIRING:1] Disk (prod)");
    assert_eq!(
        a["title_link"],
        "http://am.example:9093/#/alerts?receiver=team"
    );
    assert_eq!(a["color"], "danger");
    assert_eq!(
        a["fallback"],
        "[FIRING:1] Disk (prod) | http://am.example:9093/#/alerts?receiver=team"
    );
    assert_eq!(a["text"], "");
    assert_eq!(
        a["mrkdwn_in"],
        serde_json::json!(["fallback", "pretext", "text"])
    );
    assert_eq!(
        a["fields"],
        serde_json::json!([{"title": "Env", "value": "prod", "short": true}])
    );
    assert_eq!(a["actions"][0]["url"], "http://rb/Disk");
    assert_eq!(a["actions"][0]["type"], "button");
}

#[test]
fn pagerduty_and_opsgenie_key_events_by_the_group_key_hash() {
    // SHA-256("abc"), the FIPS 180-2 test vector.
    assert_eq!(
        pagerduty::dedup_key("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let cfg = Config::load(
        "route: {receiver: r}\nreceivers: [{name: r, opsgenie_configs: [{api_key: k, api_url: 'http://og/', update_alerts: true}], pagerduty_configs: [{routing_key: rk, url: 'http://pd/'}]}]\n",
    )
    .unwrap();
    let t = Arc::new(Templates::defaults().unwrap());
    let og = opsgenie::OpsGenie::new(
        &cfg.receivers[0].opsgenie_configs[0],
        &cfg.global.http_config,
        t.clone(),
    )
    .unwrap();
    let firing = data(vec![alert(&[("alertname", "Disk")], T0 + 60_000)]);
    let alias = pagerduty::dedup_key(&firing.group_key);
    let paths: Vec<String> = og
        .requests(&firing)
        .unwrap()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        paths,
        [
            "POST v2/alerts".to_owned(),
            format!("PUT v2/alerts/{alias}/message?identifierType=alias"),
            format!("PUT v2/alerts/{alias}/description?identifierType=alias"),
        ]
    );
    let resolved = data(vec![alert(&[("alertname", "Disk")], T0)]);
    let r = og.requests(&resolved).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0].path,
        format!("v2/alerts/{alias}/close?identifierType=alias")
    );
    let pd = pagerduty::PagerDuty::new(
        &cfg.receivers[0].pagerduty_configs[0],
        &cfg.global.http_config,
        t,
    )
    .unwrap();
    let ev = pd.payload(&resolved, "rk").unwrap();
    assert_eq!(ev["event_action"], "resolve");
    assert_eq!(ev["dedup_key"], alias);
    assert_eq!(ev["payload"]["custom_details"]["num_resolved"], "1");
}

#[test]
fn msteams_message_card() {
    let cfg: crate::config::MsTeamsConfig = serde_yaml::from_str(
        "webhook_url: 'https://example.invalid/hook'\ntitle: 'T {{ .Status }}'\n",
    )
    .unwrap();
    let t = Arc::new(Templates::defaults().unwrap());
    let m = msteams::MsTeams::new(&cfg, &crate::config::HttpClientConfig::default(), t).unwrap();
    let firing = m
        .payload(&data(vec![alert(&[("alertname", "Disk")], 0)]))
        .unwrap();
    assert_eq!(firing["@context"], "http://schema.org/extensions");
    assert_eq!(firing["type"], "MessageCard");
    assert_eq!(firing["title"], "T firing");
    assert_eq!(firing["themeColor"], "8C1A1A");
    let text = firing["text"].as_str().unwrap();
    assert!(
        text.contains("# Alerts Firing:") && text.contains("alertname = Disk"),
        "{text}"
    );
    assert!(
        firing["summary"].as_str().unwrap().contains("FIRING"),
        "{firing}"
    );
    let resolved = m
        .payload(&data(vec![alert(&[("alertname", "Disk")], T0)]))
        .unwrap();
    assert_eq!(resolved["themeColor"], "2DC72D");
}
