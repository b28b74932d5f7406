use super::*;

fn load(yaml: &str) -> Result<Config, String> {
    Config::load(yaml).map_err(|e| e.to_string())
}

const FULL: &str = r#"
global:
  smtp_smarthost: 'localhost:25'
  smtp_from: 'am@example.org'
  smtp_auth_password: hunter2
  slack_api_url: 'https://hooks.slack.com/services/T/B/s3cr3tpath'
route:
  receiver: team
  group_by: [alertname]
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      continue: true
    - match: {env: prod}
      match_re: {service: 'api|web'}
      group_by: ['...']
      group_wait: 10s
      mute_time_intervals: [offhours]
receivers:
  - name: team
    email_configs: [{to: 'team@example.org'}]
    slack_configs: [{channel: '#x'}]
  - name: pager
    webhook_configs: [{url: 'http://127.0.0.1:5001/hook?token=abc', max_alerts: 3}]
    pagerduty_configs: [{routing_key: 'rk-s3cr3t'}]
inhibit_rules:
  - source_matchers: [severity=critical]
    target_matchers: [severity=warning]
    equal: [alertname]
  - source_match: {a: b}
    target_match_re: {c: 'd.*'}
time_intervals:
  - name: offhours
    time_intervals: [{weekdays: ['monday:friday']}]
templates: ['tmpl/*.tmpl']
"#;

#[test]
fn parses_a_full_file_with_upstream_defaults() {
    let c = load(FULL).unwrap();
    assert_eq!(c.global.resolve_timeout, Duration::from_secs(300));
    assert!(c.global.smtp_require_tls);
    let team = &c.receivers[0];
    // Email inherits the global SMTP settings and does not send resolved.
    assert_eq!(team.email_configs[0].smarthost.0, "localhost:25");
    assert_eq!(team.email_configs[0].from, "am@example.org");
    assert_eq!(team.email_configs[0].require_tls, Some(true));
    assert!(!team.email_configs[0].send_resolved);
    assert!(!team.slack_configs[0].send_resolved);
    assert!(team.slack_configs[0].api_url.is_some());
    let pager = &c.receivers[1];
    assert!(pager.webhook_configs[0].send_resolved);
    assert_eq!(pager.webhook_configs[0].max_alerts, 3);
    assert!(pager.pagerduty_configs[0].send_resolved);
    assert_eq!(
        pager.pagerduty_configs[0].url.as_ref().unwrap().0,
        "https://events.pagerduty.com/v2/enqueue"
    );
    let r = c.root_route();
    assert_eq!(r.routes[0].matchers.0.len(), 1);
    assert!(r.routes[0].continue_matching);
    assert_eq!(r.routes[1].group_wait, Some(Duration::from_secs(10)));
    assert_eq!(c.inhibit_rules[1].all_target_matchers().len(), 1);
}

#[test]
fn masks_secrets_when_shown() {
    let shown = load(FULL).unwrap().to_masked_yaml();
    for secret in ["hunter2", "s3cr3t", "token=abc"] {
        assert!(!shown.contains(secret), "{secret} leaked:\n{shown}");
    }
    assert!(shown.contains("<secret>"), "{shown}");
    assert!(shown.contains("resolve_timeout: 5m"), "{shown}");
}

#[test]
fn unknown_keys_name_key_and_line() {
    let err = load("route:\n  receiver: a\nreceivers:\n  - name: a\n    foo: 1\n").unwrap_err();
    assert_eq!(
        err,
        "yaml: unmarshal errors: line 5: field foo not found in type config.plain"
    );
    let err =
        load("route:\n  receiver: a\n  group_wiat: 1m\nreceivers: [{name: a}]\n").unwrap_err();
    assert!(err.contains("line 3: field group_wiat not found"), "{err}");
}

#[test]
fn upstream_validation_messages() {
    let base = "receivers: [{name: a}]\n";
    for (yaml, want) in [
        ("", "no route provided in config"),
        ("receivers: [{name: a}]", "no route provided in config"),
        (
            "route: {group_by: [x]}\nreceivers: [{name: a}]",
            "root route must specify a default receiver",
        ),
        (
            "route: {receiver: x}\nreceivers: [{name: a}]",
            "undefined receiver \"x\" used in route",
        ),
        (
            "route: {receiver: a, routes: [{receiver: b}]}\nreceivers: [{name: a}]",
            "undefined receiver \"b\" used in route",
        ),
        (
            "route: {receiver: a}\nreceivers: [{name: a}, {name: a}]",
            "notification config name \"a\" is not unique",
        ),
        (
            "route: {receiver: a, matchers: [x=y]}\nreceivers: [{name: a}]",
            "root route must not have any matchers",
        ),
        (
            "route: {receiver: a, match: {x: y}}\nreceivers: [{name: a}]",
            "root route must not have any matchers",
        ),
        (
            "route: {receiver: a, continue: true}\nreceivers: [{name: a}]",
            "cannot have continue in root route",
        ),
        (
            "route: {receiver: a}\nreceivers: [{name: a, email_configs: [{to: x@y}]}]",
            "no global SMTP smarthost set",
        ),
        (
            "global: {smtp_smarthost: 'h:25'}\nroute: {receiver: a}\nreceivers: [{name: a, email_configs: [{to: x@y}]}]",
            "no global SMTP from set",
        ),
        (
            "route: {receiver: a}\nreceivers: [{name: a, slack_configs: [{channel: x}]}]",
            "no global Slack API URL set either inline or in a file",
        ),
        (
            "route: {receiver: a}\nreceivers: [{name: a, webhook_configs: [{url: 'ftp://x'}]}]",
            "unsupported scheme \"ftp\" for URL",
        ),
        (
            "route: {receiver: a}\nreceivers: [{name: a, webhook_configs: [{}]}]",
            "one of url or url_file must be configured",
        ),
        (
            "route: {receiver: a}\nreceivers: [{}]",
            "missing name in receiver",
        ),
        (
            "route: {receiver: a, group_by: ['...', x]}\nreceivers: [{name: a}]",
            "cannot have wildcard group_by (`...`) and other other labels at the same time",
        ),
        (
            "route: {receiver: a, group_by: [x, x]}\nreceivers: [{name: a}]",
            "duplicated label \"x\" in group_by",
        ),
        (
            "route: {receiver: a, group_by: ['1x']}\nreceivers: [{name: a}]",
            "invalid label name \"1x\" in group_by list",
        ),
        (
            "route: {receiver: a, group_interval: 0s}\nreceivers: [{name: a}]",
            "group_interval cannot be zero",
        ),
        (
            "route: {receiver: a, routes: [{mute_time_intervals: [nope]}]}\nreceivers: [{name: a}]",
            "undefined time interval \"nope\" used in route",
        ),
        (
            "route: {receiver: a, mute_time_intervals: [x]}\nreceivers: [{name: a}]",
            "root route must not have any mute time intervals",
        ),
        (
            "route: {receiver: a}\nreceivers: [{name: a}]\ntime_intervals: [{name: t}, {name: t}]",
            "time interval \"t\" is not unique",
        ),
        (
            "route: {receiver: a, routes: [{matchers: ['x=\"a\"b']}]}\nreceivers: [{name: a}]",
            "matcher value contains unescaped double quote",
        ),
        (
            "route: {receiver: a, routes: [{match_re: {x: '(('}}]}\nreceivers: [{name: a}]",
            "error parsing regexp",
        ),
    ] {
        let err = load(yaml).unwrap_err();
        assert!(err.contains(want), "{yaml:?}: got {err:?}, want {want:?}");
        assert!(!err.contains('\n'), "{err:?} is not one line");
    }
    assert!(load(&format!("route: {{receiver: a}}\n{base}")).is_ok());
}

#[test]
fn default_config_is_valid() {
    let mut c = Config::default();
    c.validate().unwrap();
    assert_eq!(c.root_route().receiver, DEFAULT_RECEIVER);
    assert!(!c.receivers[0].has_integrations());
}

#[test]
fn load_file_resolves_templates_and_reports_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("am.yml");
    std::fs::write(&p, FULL).unwrap();
    let c = Config::load_file(&p).unwrap();
    assert_eq!(
        c.templates,
        vec![dir.path().join("tmpl/*.tmpl").display().to_string()]
    );
    let err = Config::load_file(&dir.path().join("nope.yml")).unwrap_err();
    assert!(err.to_string().contains("nope.yml"), "{err}");
}

#[test]
fn empty_sections_read_as_absent() {
    let c = load("global:\nroute:\n  receiver: a\n  routes:\ninhibit_rules:\nreceivers:\n  - name: a\n    webhook_configs:\ntemplates:\n").unwrap();
    assert_eq!(c.global.resolve_timeout, Duration::from_secs(300));
    assert!(c.inhibit_rules.is_empty());
    assert!(c.receivers[0].webhook_configs.is_empty());
}

#[test]
fn time_muting_uses_named_intervals() {
    let c = load("route: {receiver: a}\nreceivers: [{name: a}]\ntime_intervals: [{name: night, time_intervals: [{times: [{start_time: '00:00', end_time: '06:00'}]}]}]\nmute_time_intervals: [{name: old, time_intervals: [{years: ['1970']}]}]\n").unwrap();
    let night = vec!["night".to_owned()];
    let h = 3_600_000;
    assert!(c.time_muted(&night, &[], 86_400_000 + h));
    assert!(!c.time_muted(&night, &[], 86_400_000 + 7 * h));
    assert!(
        c.time_muted(&[], &night, 86_400_000 + 7 * h),
        "outside its active interval"
    );
    assert!(!c.time_muted(&[], &night, 86_400_000 + h));
    assert!(c.time_muted(&["old".to_owned()], &[], 0));
    assert!(c.time_interval("missing").is_none());
}
