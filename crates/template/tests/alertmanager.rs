//! An Alertmanager-style notification template (subject, alert lists,
//! SortedPairs/Remove/Firing, dates, HTML email) rendered against the
//! `am` data model. The expected text was produced by Go's text/template and
//! html/template with equivalent Go types and data.

use pharos_template::am::{Alert, Alerts, Data, Kv};
use pharos_template::time::GoTime;
use pharos_template::{ExecOptions, Template, Value, funcs};

const TEMPLATE: &str = r#"{{ define "__subject" }}[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .GroupLabels.SortedPairs.Values | join " " }} {{ if gt (len .CommonLabels) (len .GroupLabels) }}({{ with .CommonLabels.Remove .GroupLabels.Names }}{{ .Values | join " " }}{{ end }}){{ end }}{{ end }}
{{ define "__alert_list" }}{{ range . }}Labels:
{{ range .Labels.SortedPairs }} - {{ .Name }} = {{ .Value }}
{{ end }}Annotations:
{{ range .Annotations.SortedPairs }} - {{ .Name }} = {{ .Value }}
{{ end }}{{ if .GeneratorURL }}Source: {{ .GeneratorURL }}
{{ end }}Started: {{ .StartsAt.Format "2006-01-02 15:04:05 MST" }}{{ if not .EndsAt.IsZero }} Ended: {{ date "Jan _2 15:04" .EndsAt }}{{ end }}
{{ end }}{{ end }}
{{ define "body" }}{{ template "__subject" . }}
{{ if gt (len .Alerts.Firing) 0 -}}
Alerts Firing:
{{ template "__alert_list" .Alerts.Firing }}
{{- end }}
{{- if gt (len .Alerts.Resolved) 0 }}
Alerts Resolved:
{{ template "__alert_list" .Alerts.Resolved }}
{{- end }}
{{- $first := "" }}{{ range $i, $a := .Alerts }}{{ if eq $i 0 }}{{ $first = $a.Fingerprint }}{{ end }}{{ end -}}
first={{ $first }} labels={{ .CommonLabels }} names={{ .CommonLabels.Names }} url={{ .ExternalURL }}/#/alerts?receiver={{ .Receiver | urlquery }}
{{ printf "%-8s|%5.1f%%|%q" .Status 12.345 .CommonAnnotations.summary }} {{ reReplaceAll "(\\w+):(\\d+)" "$1 port $2" "a:9100" }} {{ match "^High" .CommonLabels.alertname }} {{ .CommonLabels.missing }}|{{ index .CommonLabels "job" | title }}{{ end }}
{{ define "html" }}<h1>{{ template "__subject" . }}</h1>{{ range .Alerts }}<p title="{{ .Fingerprint }}">{{ .Annotations.description }}</p>{{ end }}<!-- hidden {{ .Receiver }} -->{{ "<b>x</b>" | safeHtml }}{{ end }}
"#;

const WANT_TEXT: &str = r#"[FIRING:2] HighCPU node (critical)
Alerts Firing:
Labels:
 - alertname = HighCPU
 - instance = a:9100
 - job = node
 - severity = critical
Annotations:
 - description = a is <hot> & 'busy'
 - runbook_url = http://rb
 - summary = CPU is high
Source: http://prom/graph?g0.expr=up
Started: 2023-11-14 22:13:20 UTC
Labels:
 - alertname = HighCPU
 - instance = b:9100
 - job = node
 - severity = critical
Annotations:
 - summary = CPU is high
Source: http://prom/x
Started: 2023-11-14 22:14:50 UTC

Alerts Resolved:
Labels:
 - alertname = HighCPU
 - instance = c:9100
 - job = node
 - severity = critical
Annotations:
 - summary = CPU is high
Started: 2023-11-14 22:13:20 UTC Ended: Nov 14 23:13
first=abc123 labels=alertname=HighCPU, job=node, severity=critical names=[alertname job severity] url=http://am.example:9093/#/alerts?receiver=team-x
firing  | 12.3%|"CPU is high" a port 9100 true |Node"#;

const WANT_HTML: &str = r#"<h1>[FIRING:2] HighCPU node (critical)</h1><p title="abc123">a is &lt;hot&gt; &amp; &#39;busy&#39;</p><p title="def456"></p><p title="0f0f"></p><b>x</b>"#;

fn kv(p: &[(&str, &str)]) -> Kv {
    p.iter().map(|(k, v)| (*k, *v)).collect()
}

fn alert(
    status: &str,
    instance: &str,
    annotations: Kv,
    starts: GoTime,
    ends: GoTime,
    url: &str,
    fp: &str,
) -> Alert {
    Alert {
        status: status.into(),
        labels: kv(&[
            ("alertname", "HighCPU"),
            ("job", "node"),
            ("instance", instance),
            ("severity", "critical"),
        ]),
        annotations,
        starts_at: starts,
        ends_at: ends,
        generator_url: url.into(),
        fingerprint: fp.into(),
    }
}

fn data() -> Value {
    let t0 = GoTime::from_unix(1_700_000_000, 0);
    Data {
        receiver: "team-x".into(),
        status: "firing".into(),
        external_url: "http://am.example:9093".into(),
        group_labels: kv(&[("alertname", "HighCPU"), ("job", "node")]),
        common_labels: kv(&[
            ("alertname", "HighCPU"),
            ("job", "node"),
            ("severity", "critical"),
        ]),
        common_annotations: kv(&[("summary", "CPU is high")]),
        alerts: Alerts(vec![
            alert(
                "firing",
                "a:9100",
                kv(&[
                    ("summary", "CPU is high"),
                    ("description", "a is <hot> & 'busy'"),
                    ("runbook_url", "http://rb"),
                ]),
                t0.clone(),
                GoTime::zero(),
                "http://prom/graph?g0.expr=up",
                "abc123",
            ),
            alert(
                "firing",
                "b:9100",
                kv(&[("summary", "CPU is high")]),
                GoTime::from_unix(1_700_000_090, 0),
                GoTime::zero(),
                "http://prom/x",
                "def456",
            ),
            alert(
                "resolved",
                "c:9100",
                kv(&[("summary", "CPU is high")]),
                t0,
                GoTime::from_unix(1_700_003_600, 0),
                "",
                "0f0f",
            ),
        ]),
    }
    .into_value()
}

fn set() -> Template {
    Template::parse("notify.tmpl", TEMPLATE, &funcs::alertmanager()).unwrap()
}

#[test]
fn text_notification_matches_go() {
    let got = set()
        .execute("body", &data(), &ExecOptions::zero())
        .unwrap();
    assert_eq!(got, WANT_TEXT);
}

#[test]
fn html_notification_matches_go_html_template() {
    let got = set()
        .execute("html", &data(), &ExecOptions::html())
        .unwrap();
    assert_eq!(got, WANT_HTML);
}

#[test]
fn subject_reflects_the_data() {
    let t = set();
    let opts = ExecOptions::zero();
    assert_eq!(
        t.execute("__subject", &data(), &opts).unwrap(),
        "[FIRING:2] HighCPU node (critical)"
    );
    let resolved = Data {
        status: "resolved".into(),
        group_labels: kv(&[("job", "api")]),
        common_labels: kv(&[("job", "api")]),
        ..Data::default()
    }
    .into_value();
    assert_eq!(
        t.execute("__subject", &resolved, &opts).unwrap(),
        "[RESOLVED] api "
    );
    // A user file overriding the subject wins, as with Alertmanager's
    // default templates followed by user templates.
    let mut t = t;
    t.add(
        "user.tmpl",
        "{{ define \"__subject\" }}custom {{ .Alerts | len }}{{ end }}",
    )
    .unwrap();
    assert_eq!(t.execute("__subject", &data(), &opts).unwrap(), "custom 3");
}

#[test]
fn missing_labels_are_empty_and_methods_reject_bad_arguments() {
    let t = Template::parse(
        "t",
        "[{{ .CommonLabels.nope }}][{{ .CommonLabels.Remove 3 }}]",
        &funcs::alertmanager(),
    )
    .unwrap();
    let err = t.execute("t", &data(), &ExecOptions::zero()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("template: t:1:"), "{msg}");
    assert!(
        msg.ends_with(
            "at <.CommonLabels.Remove>: wrong type for value; expected []string; got int"
        ),
        "{msg}"
    );
    // The missing label printed nothing before the failure.
    let ok = Template::parse("t", "[{{ .CommonLabels.nope }}]", &funcs::alertmanager()).unwrap();
    assert_eq!(
        ok.execute("t", &data(), &ExecOptions::zero()).unwrap(),
        "[]"
    );
}

#[test]
fn structs_print_like_go() {
    // Go's fmt output for the same Data value (struct fields in order,
    // String() methods for KV and time.Time).
    let want = r#"{team-x firing [{firing alertname=HighCPU, instance=a:9100, job=node, severity=critical description=a is <hot> & 'busy', runbook_url=http://rb, summary=CPU is high 2023-11-14 22:13:20 +0000 UTC 0001-01-01 00:00:00 +0000 UTC http://prom/graph?g0.expr=up abc123} {firing alertname=HighCPU, instance=b:9100, job=node, severity=critical summary=CPU is high 2023-11-14 22:14:50 +0000 UTC 0001-01-01 00:00:00 +0000 UTC http://prom/x def456} {resolved alertname=HighCPU, instance=c:9100, job=node, severity=critical summary=CPU is high 2023-11-14 22:13:20 +0000 UTC 2023-11-14 23:13:20 +0000 UTC  0f0f}] alertname=HighCPU, job=node alertname=HighCPU, job=node, severity=critical summary=CPU is high http://am.example:9093}"#;
    let t = Template::parse("t", "{{ . }}", &funcs::alertmanager()).unwrap();
    assert_eq!(t.execute("t", &data(), &ExecOptions::zero()).unwrap(), want);
}
