//! OTLP metrics at `/api/v1/otlp/v1/metrics`, translated to Prometheus
//! series the way Prometheus 3 does by default: names and label names made
//! valid with underscores, unit and `_total` suffixes, `job`/`instance`
//! from `service.name`/`service.instance.id`, the other resource
//! attributes on `target_info`.

use std::collections::BTreeMap;
use std::io::Read as _;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, metric, number_data_point,
};
use pharos_core::error::ErrorClass;
use pharos_model::{Labels, Sample};
use pharos_proto::Message as _;
use pharos_server::{ApiError, ErrorFormat, Tenant};

use crate::ingest::Ingest;
use crate::remote_write::{Metadata, WriteBatch};

/// The data point flag meaning "no recorded value": a staleness marker.
const FLAG_NO_RECORDED_VALUE: u32 = 1;

/// What a request held besides its series.
#[derive(Debug, Default, PartialEq)]
pub struct Skipped {
    /// Delta-temporality sums and histograms, which Prometheus 3 drops too.
    pub delta: usize,
    /// Exponential histograms (native histograms are not stored yet).
    pub exponential: usize,
}

fn text_error(class: ErrorClass, msg: impl Into<String>) -> Response {
    ApiError::new(ErrorFormat::PlainText, class, msg).into_response()
}

pub async fn write(
    State(ing): State<Ingest>,
    tenant: Tenant,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |n: header::HeaderName| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let json = match h(header::CONTENT_TYPE)
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
    {
        "application/json" => true,
        "application/x-protobuf" | "application/protobuf" | "" => false,
        other => {
            return text_error(
                ErrorClass::UnsupportedMediaType,
                format!(
                    "unsupported content type {other:?}: send application/x-protobuf or application/json"
                ),
            );
        }
    };
    let raw = match h(header::CONTENT_ENCODING) {
        "" | "identity" => body.to_vec(),
        "gzip" => {
            let mut out = Vec::new();
            if let Err(e) = flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out) {
                return text_error(ErrorClass::BadRequest, format!("gzip: {e}"));
            }
            out
        }
        other => {
            return text_error(
                ErrorClass::UnsupportedMediaType,
                format!("unsupported content encoding {other:?}: use gzip or none"),
            );
        }
    };
    let req = if json {
        serde_json::from_slice::<ExportMetricsServiceRequest>(&raw).map_err(|e| e.to_string())
    } else {
        ExportMetricsServiceRequest::decode(raw.as_slice()).map_err(|e| e.to_string())
    };
    let req = match req {
        Ok(r) => r,
        Err(e) => {
            return text_error(
                ErrorClass::BadRequest,
                format!("cannot decode OTLP metrics request: {e}"),
            );
        }
    };
    let (batch, skipped) = translate(&req);
    if skipped.delta + skipped.exponential > 0 {
        tracing::debug!(
            delta = skipped.delta,
            exponential = skipped.exponential,
            "otlp metrics skipped"
        );
        ing.discarded
            .with(&["otlp_unsupported"])
            .add((skipped.delta + skipped.exponential) as f64);
    }
    let resp = crate::ingest::store_batch(&ing, tenant, batch, "otlp").await;
    if resp.status() != StatusCode::NO_CONTENT {
        return resp;
    }
    let reply = ExportMetricsServiceResponse::default();
    let (body, ctype) = if json {
        (
            serde_json::to_vec(&reply).unwrap_or_else(|_| b"{}".to_vec()),
            "application/json",
        )
    } else {
        (reply.encode_to_vec(), "application/x-protobuf")
    };
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

/// Translates a request into series and metadata.
pub fn translate(req: &ExportMetricsServiceRequest) -> (WriteBatch, Skipped) {
    let mut series: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    let mut metadata = Vec::new();
    let mut skipped = Skipped::default();
    for rm in &req.resource_metrics {
        let attrs = rm
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or(&[]);
        let get = |k: &str| {
            attrs
                .iter()
                .find(|a| a.key == k)
                .map(|a| value_string(a.value.as_ref()))
        };
        let job = match (get("service.namespace"), get("service.name")) {
            (Some(ns), Some(name)) if !ns.is_empty() => format!("{ns}/{name}"),
            (_, Some(name)) => name,
            _ => String::new(),
        };
        let instance = get("service.instance.id").unwrap_or_default();
        let base = |extra: &[(String, String)]| {
            let mut pairs: Vec<(String, String)> = extra.to_vec();
            pairs.push(("job".into(), job.clone()));
            pairs.push(("instance".into(), instance.clone()));
            pairs
        };
        let mut newest = 0i64;
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                newest = newest.max(translate_metric(
                    m,
                    &base,
                    &mut series,
                    &mut metadata,
                    &mut skipped,
                ));
            }
        }
        // target_info carries the resource attributes the series do not
        let info: Vec<(String, String)> = attrs
            .iter()
            .filter(|a| {
                !matches!(
                    a.key.as_str(),
                    "service.name" | "service.namespace" | "service.instance.id"
                )
            })
            .map(|a| (label_name(&a.key), value_string(a.value.as_ref())))
            .collect();
        if !info.is_empty() && newest > 0 {
            let mut pairs = base(&info);
            pairs.push(("__name__".into(), "target_info".into()));
            series
                .entry(Labels::from_pairs(pairs))
                .or_default()
                .push(Sample::new(newest, 1.0));
        }
    }
    let batch = WriteBatch {
        series: series
            .into_iter()
            .map(|(l, mut s)| {
                s.sort_by_key(|x| x.t);
                (l, s)
            })
            .collect(),
        metadata,
        histograms: skipped.exponential,
        exemplars: 0,
    };
    (batch, skipped)
}

/// Returns the newest timestamp written (ms), 0 for none.
/// Adds a resource's `job` and `instance` to a data point's labels.
type WithResource<'a> = &'a dyn Fn(&[(String, String)]) -> Vec<(String, String)>;

fn translate_metric(
    m: &Metric,
    base: WithResource<'_>,
    out: &mut BTreeMap<Labels, Vec<Sample>>,
    metadata: &mut Vec<Metadata>,
    skipped: &mut Skipped,
) -> i64 {
    let mut newest = 0;
    let mut push = |name: &str,
                    attrs: &[KeyValue],
                    extra: Option<(&str, String)>,
                    t_nanos: u64,
                    v: f64,
                    flags: u32| {
        let mut pairs: Vec<(String, String)> = attrs
            .iter()
            .map(|a| (label_name(&a.key), value_string(a.value.as_ref())))
            .collect();
        if let Some((k, val)) = extra {
            pairs.push((k.to_owned(), val));
        }
        let mut pairs = base(&pairs);
        pairs.push(("__name__".into(), name.to_owned()));
        let t = (t_nanos / 1_000_000) as i64;
        newest = newest.max(t);
        let s = if flags & FLAG_NO_RECORDED_VALUE != 0 {
            Sample::stale(t)
        } else {
            Sample::new(t, v)
        };
        out.entry(Labels::from_pairs(pairs)).or_default().push(s);
    };
    let Some(data) = &m.data else { return 0 };
    let cumulative = AggregationTemporality::Cumulative as i32;
    let (kind, name) = match data {
        metric::Data::Gauge(g) => {
            let name = metric_name(&m.name, &m.unit, Kind::Gauge);
            for p in &g.data_points {
                push(
                    &name,
                    &p.attributes,
                    None,
                    p.time_unix_nano,
                    number(p.value.as_ref()),
                    p.flags,
                );
            }
            ("gauge", name)
        }
        metric::Data::Sum(s) => {
            if s.aggregation_temporality != cumulative && s.is_monotonic {
                skipped.delta += s.data_points.len();
                return 0;
            }
            let kind = if s.is_monotonic {
                Kind::Counter
            } else {
                Kind::Gauge
            };
            let name = metric_name(&m.name, &m.unit, kind);
            for p in &s.data_points {
                push(
                    &name,
                    &p.attributes,
                    None,
                    p.time_unix_nano,
                    number(p.value.as_ref()),
                    p.flags,
                );
            }
            (if s.is_monotonic { "counter" } else { "gauge" }, name)
        }
        metric::Data::Histogram(h) => {
            if h.aggregation_temporality != cumulative {
                skipped.delta += h.data_points.len();
                return 0;
            }
            let name = metric_name(&m.name, &m.unit, Kind::Histogram);
            for p in &h.data_points {
                let mut cum = 0u64;
                for (i, c) in p.bucket_counts.iter().enumerate() {
                    cum += c;
                    let le = p
                        .explicit_bounds
                        .get(i)
                        .map(|b| fmt_bound(*b))
                        .unwrap_or_else(|| "+Inf".into());
                    push(
                        &format!("{name}_bucket"),
                        &p.attributes,
                        Some(("le", le)),
                        p.time_unix_nano,
                        cum as f64,
                        p.flags,
                    );
                }
                if p.bucket_counts.len() <= p.explicit_bounds.len() {
                    push(
                        &format!("{name}_bucket"),
                        &p.attributes,
                        Some(("le", "+Inf".into())),
                        p.time_unix_nano,
                        p.count as f64,
                        p.flags,
                    );
                }
                if let Some(sum) = p.sum {
                    push(
                        &format!("{name}_sum"),
                        &p.attributes,
                        None,
                        p.time_unix_nano,
                        sum,
                        p.flags,
                    );
                }
                push(
                    &format!("{name}_count"),
                    &p.attributes,
                    None,
                    p.time_unix_nano,
                    p.count as f64,
                    p.flags,
                );
            }
            ("histogram", name)
        }
        metric::Data::Summary(s) => {
            let name = metric_name(&m.name, &m.unit, Kind::Summary);
            for p in &s.data_points {
                for q in &p.quantile_values {
                    push(
                        &name,
                        &p.attributes,
                        Some(("quantile", fmt_bound(q.quantile))),
                        p.time_unix_nano,
                        q.value,
                        p.flags,
                    );
                }
                push(
                    &format!("{name}_sum"),
                    &p.attributes,
                    None,
                    p.time_unix_nano,
                    p.sum,
                    p.flags,
                );
                push(
                    &format!("{name}_count"),
                    &p.attributes,
                    None,
                    p.time_unix_nano,
                    p.count as f64,
                    p.flags,
                );
            }
            ("summary", name)
        }
        metric::Data::ExponentialHistogram(h) => {
            skipped.exponential += h.data_points.len();
            return 0;
        }
    };
    metadata.push(Metadata {
        metric: name,
        kind,
        help: m.description.clone(),
        unit: m.unit.clone(),
    });
    newest
}

fn number(v: Option<&number_data_point::Value>) -> f64 {
    match v {
        Some(number_data_point::Value::AsDouble(d)) => *d,
        Some(number_data_point::Value::AsInt(i)) => *i as f64,
        None => 0.0,
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`, as `le`/`quantile` labels are written.
fn fmt_bound(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn value_string(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => format!("{d}"),
        Some(any_value::Value::BytesValue(b)) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<String> = a
                .values
                .iter()
                .map(|x| format!("{:?}", value_string(Some(x))))
                .collect();
            format!("[{}]", items.join(","))
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            let items: Vec<String> = kv
                .values
                .iter()
                .map(|x| format!("{:?}:{:?}", x.key, value_string(x.value.as_ref())))
                .collect();
            format!("{{{}}}", items.join(","))
        }
        _ => String::new(),
    }
}

/// Label names: every invalid character becomes `_`; a leading digit gets
/// a `key_` prefix.
pub fn label_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    }
    out
}

/// How an OTLP metric maps to a Prometheus type, for its name suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Histogram,
    Summary,
}

fn unit_word(u: &str) -> Option<&'static str> {
    Some(match u {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        _ => return None,
    })
}

fn per_unit_word(u: &str) -> Option<&'static str> {
    Some(match u {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

fn sanitize_word(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The Prometheus name of an OTLP metric: the name's words joined by `_`,
/// then the unit (`seconds`, `bytes`, `X_per_Y`) unless already there, then
/// `_total` for counters or `_ratio` for unit `1` gauges.
pub fn metric_name(name: &str, unit: &str, kind: Kind) -> String {
    let mut words: Vec<String> = name
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    // counters get exactly one trailing "total"
    if kind == Kind::Counter {
        while words.last().is_some_and(|w| w == "total") {
            words.pop();
        }
    }
    // unit annotations in braces ({requests}) carry no unit
    let unit = unit.split('{').next().unwrap_or("").trim();
    let (main, per) = match unit.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (unit, None),
    };
    let main = unit_word(main)
        .map(str::to_owned)
        .unwrap_or_else(|| sanitize_word(main));
    if !main.is_empty() && main != "1" && !words.contains(&main) {
        words.push(main);
    }
    if let Some(per) = per.filter(|p| !p.is_empty()) {
        let per = per_unit_word(per)
            .map(str::to_owned)
            .unwrap_or_else(|| sanitize_word(per));
        if !words.windows(2).any(|w| w[0] == "per" && w[1] == per) {
            words.push("per".into());
            words.push(per);
        }
    }
    match kind {
        Kind::Counter => words.push("total".into()),
        Kind::Gauge if unit == "1" && !words.iter().any(|w| w == "ratio") => {
            words.push("ratio".into())
        }
        _ => {}
    }
    let mut out = words.join("_");
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Histogram, HistogramDataPoint, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn names_follow_prometheus_3() {
        assert_eq!(
            metric_name("http.server.duration", "s", Kind::Histogram),
            "http_server_duration_seconds"
        );
        assert_eq!(
            metric_name("http.server.requests", "{requests}", Kind::Counter),
            "http_server_requests_total"
        );
        assert_eq!(
            metric_name("requests_total", "1", Kind::Counter),
            "requests_total"
        );
        assert_eq!(
            metric_name("system.memory.usage", "By", Kind::Gauge),
            "system_memory_usage_bytes"
        );
        assert_eq!(
            metric_name("cpu.utilization", "1", Kind::Gauge),
            "cpu_utilization_ratio"
        );
        assert_eq!(
            metric_name("net.io", "By/s", Kind::Gauge),
            "net_io_bytes_per_second"
        );
        assert_eq!(
            metric_name("latency_seconds", "s", Kind::Gauge),
            "latency_seconds"
        );
        assert_eq!(label_name("http.method"), "http_method");
        assert_eq!(label_name("2xx"), "key_2xx");
    }

    #[test]
    fn translates_resources_counters_and_histograms() {
        let t = 1_700_000_000_000_000_000u64;
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", "shop"),
                        kv("service.instance.id", "i-1"),
                        kv("host.name", "h1"),
                    ],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        Metric {
                            name: "orders".into(),
                            unit: "1".into(),
                            data: Some(metric::Data::Sum(Sum {
                                data_points: vec![NumberDataPoint {
                                    attributes: vec![kv("region", "eu")],
                                    time_unix_nano: t,
                                    value: Some(number_data_point::Value::AsInt(7)),
                                    ..Default::default()
                                }],
                                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                                is_monotonic: true,
                            })),
                            ..Default::default()
                        },
                        Metric {
                            name: "queue".into(),
                            data: Some(metric::Data::Gauge(Gauge {
                                data_points: vec![NumberDataPoint {
                                    time_unix_nano: t,
                                    value: Some(number_data_point::Value::AsDouble(2.5)),
                                    flags: 0,
                                    ..Default::default()
                                }],
                            })),
                            ..Default::default()
                        },
                        Metric {
                            name: "latency".into(),
                            unit: "ms".into(),
                            data: Some(metric::Data::Histogram(Histogram {
                                data_points: vec![HistogramDataPoint {
                                    time_unix_nano: t,
                                    count: 3,
                                    sum: Some(30.0),
                                    bucket_counts: vec![1, 2, 0],
                                    explicit_bounds: vec![5.0, 10.0],
                                    ..Default::default()
                                }],
                                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                            })),
                            ..Default::default()
                        },
                        Metric {
                            name: "deltas".into(),
                            data: Some(metric::Data::Sum(Sum {
                                data_points: vec![NumberDataPoint::default()],
                                aggregation_temporality: AggregationTemporality::Delta as i32,
                                is_monotonic: true,
                            })),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let (batch, skipped) = translate(&req);
        assert_eq!(
            skipped,
            Skipped {
                delta: 1,
                exponential: 0
            }
        );
        let got: BTreeMap<String, Vec<f64>> = batch
            .series
            .iter()
            .map(|(l, s)| (l.to_string(), s.iter().map(|x| x.v).collect()))
            .collect();
        let ms = (t / 1_000_000) as i64;
        assert!(batch.series.iter().all(|(_, s)| s[0].t == ms));
        let want = [
            (
                r#"{__name__="orders_total", instance="i-1", job="shop", region="eu"}"#,
                7.0,
            ),
            (r#"{__name__="queue", instance="i-1", job="shop"}"#, 2.5),
            (
                r#"{__name__="latency_milliseconds_bucket", instance="i-1", job="shop", le="5"}"#,
                1.0,
            ),
            (
                r#"{__name__="latency_milliseconds_bucket", instance="i-1", job="shop", le="10"}"#,
                3.0,
            ),
            (
                r#"{__name__="latency_milliseconds_bucket", instance="i-1", job="shop", le="+Inf"}"#,
                3.0,
            ),
            (
                r#"{__name__="latency_milliseconds_sum", instance="i-1", job="shop"}"#,
                30.0,
            ),
            (
                r#"{__name__="latency_milliseconds_count", instance="i-1", job="shop"}"#,
                3.0,
            ),
            (
                r#"{__name__="target_info", host_name="h1", instance="i-1", job="shop"}"#,
                1.0,
            ),
        ];
        for (k, v) in want {
            assert_eq!(got.get(k), Some(&vec![v]), "{k} in {got:#?}");
        }
        assert_eq!(got.len(), want.len(), "{got:#?}");
        assert!(
            batch
                .metadata
                .iter()
                .any(|m| m.metric == "orders_total" && m.kind == "counter")
        );
    }
}
