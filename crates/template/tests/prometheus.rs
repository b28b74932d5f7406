//! Prometheus alerting-rule and console template functions, driven the way
//! Prometheus drives them: `$labels`/`$value` prelude, `missingkey=zero`,
//! and a caller-provided query callback.

use std::collections::BTreeMap;
use std::sync::Arc;

use pharos_template::funcs::{PrometheusContext, Sample, prometheus};
use pharos_template::{ExecOptions, Template, Value};

fn expand(text: &str, ctx: PrometheusContext, value: f64) -> Result<String, String> {
    // Prometheus prepends these variable definitions to every rule template.
    let full = format!(
        "{{{{$labels := .Labels}}}}{{{{$externalLabels := .ExternalLabels}}}}{{{{$value := .Value}}}}{text}"
    );
    let data = Value::Map(BTreeMap::from([
        (
            "Labels".to_string(),
            Value::string_map([("instance", "node-1.example.com:9100"), ("job", "node")]),
        ),
        (
            "ExternalLabels".to_string(),
            Value::string_map([("dc", "eu")]),
        ),
        ("Value".to_string(), Value::Float(value)),
    ]));
    let t =
        Template::parse("__alert_HighLoad", &full, &prometheus(ctx)).map_err(|e| e.to_string())?;
    t.execute("__alert_HighLoad", &data, &ExecOptions::zero())
        .map_err(|e| e.to_string())
}

fn ctx_with_query() -> PrometheusContext {
    PrometheusContext {
        external_url: "https://prom.example.com/prometheus".into(),
        query: Some(Arc::new(|q: &str| {
            if q == "bad" {
                return Err("parse error: unexpected end of input".into());
            }
            Ok(["b", "c", "a"]
                .iter()
                .enumerate()
                .map(|(i, inst)| Sample {
                    labels: BTreeMap::from([
                        ("instance".to_string(), inst.to_string()),
                        ("__value__".to_string(), format!("{}", i * 10)),
                    ]),
                    value: 1234.5 * (i + 1) as f64,
                })
                .collect())
        })),
    }
}

#[test]
fn rule_annotation_idioms() {
    let ctx = PrometheusContext::default();
    assert_eq!(
        expand("{{ $labels.instance }} of {{ $labels.job }} has load {{ $value }} ({{ $value | humanize }}) {{ $labels.missing }}|{{ $externalLabels.dc }}", ctx.clone(), 1234567.0).unwrap(),
        "node-1.example.com:9100 of node has load 1.234567e+06 (1.235M) |eu"
    );
    assert_eq!(
        expand("{{ humanize1024 $value }} {{ humanizePercentage 0.1234567 }} {{ humanizeDuration 899.99 }} {{ humanize \"2048\" }} {{ humanizeDuration 0.25 }}", ctx.clone(), 1048576.0).unwrap(),
        "1Mi 12.35% 14m 59s 2.048k 250ms"
    );
    assert_eq!(
        expand("{{ humanizeTimestamp 1435065584.128 }}|{{ (toTime 1435065584.128).Format \"2006-01-02T15:04:05.000Z07:00\" }}|{{ (1435065584 | toTime).Unix }}", ctx.clone(), 0.0).unwrap(),
        "2015-06-23 13:19:44.128 +0000 UTC|2015-06-23T13:19:44.128Z|1435065584"
    );
    assert_eq!(
        expand("{{ $labels.instance | stripPort }} {{ $labels.instance | stripDomain }} {{ stripDomain \"10.0.0.1:80\" }} {{ title \"hello wORLD\" }} {{ toUpper \"a\" }}{{ toLower \"B\" }}", ctx.clone(), 0.0).unwrap(),
        "node-1.example.com node-1:9100 10.0.0.1:80 Hello WORLD Ab"
    );
    assert_eq!(
        expand("{{ reReplaceAll \"(.*):(\\\\d+)\" \"$1\" $labels.instance }} {{ match \"^node\" $labels.job }} {{ parseDuration \"1h30m\" }} {{ with args 1 \"x\" }}{{ .arg0 }}{{ .arg1 }}{{ .arg2 }}{{ end }}", ctx, 0.0).unwrap(),
        "node-1.example.com true 5400 1x"
    );
}

#[test]
fn query_functions_use_the_callback() {
    let ctx = ctx_with_query();
    assert_eq!(
        expand("{{ with query \"up\" }}{{ . | first | value | humanize }} {{ . | first | label \"instance\" }} {{ len . }}{{ end }}", ctx.clone(), 0.0).unwrap(),
        "1.234k b 3"
    );
    assert_eq!(
        expand("{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }}={{ .Value }}/{{ strvalue . }} {{ end }}", ctx.clone(), 0.0).unwrap(),
        "a=3703.5/20 b=1234.5/0 c=2469/10 "
    );
    assert_eq!(
        expand("{{ graphLink \"rate(x[5m]) > 1\" }} {{ tableLink \"up\" }} {{ externalURL }} {{ pathPrefix }}", ctx.clone(), 0.0).unwrap(),
        "/graph?g0.expr=rate%28x%5B5m%5D%29+%3E+1&g0.tab=0 /graph?g0.expr=up&g0.tab=1 https://prom.example.com/prometheus /prometheus"
    );
    let err = expand("{{ query \"bad\" }}", ctx.clone(), 0.0).unwrap_err();
    assert!(
        err.ends_with("error calling query: parse error: unexpected end of input"),
        "{err}"
    );
    let err = expand(
        "{{ query \"nothing\" | first }}",
        PrometheusContext::default(),
        0.0,
    )
    .unwrap_err();
    assert!(
        err.ends_with("error calling query: query is not available in this context"),
        "{err}"
    );
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let ctx = PrometheusContext::default();
    let err = expand("{{ humanize \"abc\" }}", ctx.clone(), 0.0).unwrap_err();
    assert!(
        err.ends_with(
            "error calling humanize: strconv.ParseFloat: parsing \"abc\": invalid syntax"
        ),
        "{err}"
    );
    let err = expand("{{ reReplaceAll \"(\" \"\" \"x\" }}", ctx.clone(), 0.0).unwrap_err();
    assert!(
        err.contains("error calling reReplaceAll: error parsing regexp"),
        "{err}"
    );
    let err = expand(
        "{{ toTime (humanize 0 | len | printf \"%d\") }}x{{ toTime 1e300 }}",
        ctx.clone(),
        0.0,
    )
    .unwrap_err();
    assert!(err.contains("overflows int64"), "{err}");
    assert_eq!(
        expand("{{ humanize $value }}", ctx, f64::NAN).unwrap(),
        "NaN"
    );
}
