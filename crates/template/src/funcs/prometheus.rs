use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Funcs, arg_str, query_escape, want_args};
use crate::error::FuncError;
use crate::format::sprintf;
use crate::time::{GoDuration, GoTime};
use crate::value::{TemplateObject, Value};

/// One query result sample as templates see it: `.Labels` and `.Value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl TemplateObject for Sample {
    fn type_name(&self) -> &str {
        "*template.sample"
    }

    fn field_names(&self) -> &[&str] {
        &["Labels", "Value"]
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Labels" => Some(Value::string_map(self.labels.clone())),
            "Value" => Some(Value::Float(self.value)),
            _ => None,
        }
    }
}

/// Runs a PromQL instant query for the `query` template function.
pub type QueryFn = Arc<dyn Fn(&str) -> Result<Vec<Sample>, String> + Send + Sync>;

/// What the Prometheus template functions need from the server.
#[derive(Clone, Default)]
pub struct PrometheusContext {
    /// `--web.external-url`, returned by `externalURL`; its path is
    /// `pathPrefix`.
    pub external_url: String,
    /// Backs `query`; without it `query` fails with an error saying so.
    pub query: Option<QueryFn>,
}

impl std::fmt::Debug for PrometheusContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusContext")
            .field("external_url", &self.external_url)
            .field("query", &self.query.is_some())
            .finish()
    }
}

/// Prometheus' `convertToFloat`: floats, ints, numeric strings and
/// durations.
pub(crate) fn to_float(v: &Value) -> Result<f64, FuncError> {
    if let Some(d) = v.downcast::<GoDuration>() {
        return Ok(d.seconds());
    }
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::String(s) | Value::SafeHtml(s) => parse_go_float(s).ok_or_else(|| {
            FuncError::Call(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax"))
        }),
        other => Err(FuncError::Call(format!(
            "can't convert {} to float",
            other.type_name()
        ))),
    }
}

/// `strconv.ParseFloat` accepts what Rust does plus `inf`/`Inf`/`+Inf` and
/// underscores-free hex is rare enough to ignore.
fn parse_go_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if lower.contains("inf") || lower.contains("nan") {
        return None;
    }
    s.parse().ok()
}

fn g4(v: f64) -> String {
    sprintf("%.4g", &[Value::Float(v)])
}

fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", g4(v))
}

fn humanize_1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

pub(crate) fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        // Go's int64 conversion saturates differently, but such durations
        // are absurd either way.
        let d = v as i64;
        let (s, m, h, days) = (d % 60, d / 60 % 60, d / 3600 % 24, d / 86_400);
        if days != 0 {
            return format!("{sign}{days}d {h}h {m}m {s}s");
        }
        if h != 0 {
            return format!("{sign}{h}h {m}m {s}s");
        }
        if m != 0 {
            return format!("{sign}{m}m {s}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

/// Prometheus' `FloatToTime`: seconds to a UTC time at millisecond
/// precision.
fn float_to_time(v: f64) -> Result<GoTime, FuncError> {
    if v.is_nan() || v.is_infinite() {
        return Err("value is NaN or Inf".into());
    }
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            crate::format::format_float(v)
        )
        .into());
    }
    let ms = (ns as i64) / 1_000_000;
    Ok(GoTime::from_unix_millis(ms))
}

/// Prometheus duration syntax (`1h30m`, `5d`, `250ms`) in seconds.
fn parse_prom_duration(s: &str) -> Result<f64, FuncError> {
    let bad = || FuncError::Call(format!("not a valid duration string: {s:?}"));
    if s == "0" {
        return Ok(0.0);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let units: [(&str, u64); 8] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("ms", 1),
        ("m", 60_000),
        ("s", 1000),
        ("", 0),
    ];
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_rank = 0usize;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (rank, (unit, ms)) = units[..7]
            .iter()
            .enumerate()
            .find(|(_, (u, _))| rest.starts_with(u) && !(*u == "m" && rest.starts_with("ms")))
            .ok_or_else(bad)?;
        // Units must appear from largest to smallest, each at most once.
        if rank < last_rank || (rank == last_rank && total > 0) {
            return Err(bad());
        }
        last_rank = rank;
        rest = &rest[unit.len()..];
        total = n
            .checked_mul(*ms)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(|| FuncError::Call("duration out of range".into()))?;
    }
    Ok(total as f64 / 1000.0)
}

fn labels_of(v: &Value) -> Option<Value> {
    match v {
        Value::Object(o) => o.field("Labels"),
        Value::Map(m) => m.get("Labels").cloned(),
        _ => None,
    }
}

fn label_value(sample: &Value, name: &str) -> String {
    match labels_of(sample).as_ref().map(Value::resolved).as_deref() {
        Some(Value::Map(m)) => m
            .get(name)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn split_host_port(hp: &str) -> Option<(String, String)> {
    let (host, port) = if let Some(rest) = hp.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        (h, after.strip_prefix(':')?)
    } else {
        let (h, p) = hp.rsplit_once(':')?;
        if h.contains(':') {
            return None;
        }
        (h, p)
    };
    if port.contains(':') || port.contains('[') || port.contains(']') {
        return None;
    }
    Some((host.to_string(), port.to_string()))
}

fn url_path(u: &str) -> String {
    let after_scheme = u.split_once("://").map_or(u, |(_, r)| r);
    let path_start = after_scheme
        .find('/')
        .map(|i| &after_scheme[i..])
        .unwrap_or("");
    path_start
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The functions Prometheus offers in alerting-rule and console templates.
pub fn prometheus(ctx: PrometheusContext) -> Funcs {
    let mut f = Funcs::new();
    super::alertmanager::insert_common(&mut f);
    let num = |name: &'static str, h: fn(f64) -> String, f: &mut Funcs| {
        f.insert(name, move |a| {
            want_args(a, 1)?;
            Ok(Value::String(h(to_float(&a[0])?)))
        });
    };
    num("humanize", humanize, &mut f);
    num("humanize1024", humanize_1024, &mut f);
    num("humanizeDuration", humanize_duration, &mut f);
    num(
        "humanizePercentage",
        |v| sprintf("%.4g%%", &[Value::Float(v * 100.0)]),
        &mut f,
    );
    f.insert("humanizeTimestamp", |a| {
        want_args(a, 1)?;
        let v = to_float(&a[0])?;
        if v.is_nan() || v.is_infinite() {
            return Ok(Value::String(g4(v)));
        }
        Ok(Value::String(float_to_time(v)?.to_string()))
    });
    f.insert("toTime", |a| {
        want_args(a, 1)?;
        Ok(float_to_time(to_float(&a[0])?)?.into_value())
    });
    f.insert("parseDuration", |a| {
        want_args(a, 1)?;
        Ok(Value::Float(parse_prom_duration(arg_str(a, 0)?)?))
    });
    f.insert("title", |a| {
        want_args(a, 1)?;
        Ok(Value::String(strings_title(arg_str(a, 0)?)))
    });
    f.insert("first", |a| {
        want_args(a, 1)?;
        match &*a[0].resolved() {
            Value::List(l) => l
                .first()
                .cloned()
                .ok_or_else(|| "first() called on vector with no elements".into()),
            other => Err(FuncError::Type {
                expected: "template.queryResult".into(),
                got: other.type_name(),
            }),
        }
    });
    f.insert("label", |a| {
        want_args(a, 2)?;
        Ok(Value::String(label_value(&a[1], arg_str(a, 0)?)))
    });
    f.insert("value", |a| {
        want_args(a, 1)?;
        match &a[0] {
            Value::Object(o) => o.field("Value").ok_or_else(|| "value of non-sample".into()),
            Value::Map(m) => m
                .get("Value")
                .cloned()
                .ok_or_else(|| "value of non-sample".into()),
            other => Err(FuncError::Type {
                expected: "*template.sample".into(),
                got: other.type_name(),
            }),
        }
    });
    f.insert("strvalue", |a| {
        want_args(a, 1)?;
        Ok(Value::String(label_value(&a[0], "__value__")))
    });
    f.insert("sortByLabel", |a| {
        want_args(a, 2)?;
        let label = arg_str(a, 0)?;
        match &*a[1].resolved() {
            Value::List(l) => {
                let mut keyed: Vec<(String, Value)> = l
                    .iter()
                    .map(|s| (label_value(s, label), s.clone()))
                    .collect();
                keyed.sort_by(|x, y| x.0.cmp(&y.0));
                Ok(Value::List(keyed.into_iter().map(|(_, s)| s).collect()))
            }
            other => Err(FuncError::Type {
                expected: "template.queryResult".into(),
                got: other.type_name(),
            }),
        }
    });
    f.insert("args", |a| {
        Ok(Value::Map(
            a.iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v.clone()))
                .collect(),
        ))
    });
    f.insert("stripPort", |a| {
        want_args(a, 1)?;
        let hp = arg_str(a, 0)?;
        Ok(Value::String(
            split_host_port(hp).map_or_else(|| hp.to_string(), |(h, _)| h),
        ))
    });
    f.insert("stripDomain", |a| {
        want_args(a, 1)?;
        let hp = arg_str(a, 0)?;
        let (host, port) = split_host_port(hp).unwrap_or_else(|| (hp.to_string(), String::new()));
        if host.parse::<std::net::IpAddr>().is_ok() {
            return Ok(Value::String(hp.to_string()));
        }
        let short = host.split('.').next().unwrap_or_default().to_string();
        Ok(Value::String(if port.is_empty() {
            short
        } else if short.contains(':') {
            format!("[{short}]:{port}")
        } else {
            format!("{short}:{port}")
        }))
    });
    f.insert("graphLink", |a| {
        want_args(a, 1)?;
        Ok(Value::String(format!(
            "/graph?g0.expr={}&g0.tab=0",
            query_escape(arg_str(a, 0)?)
        )))
    });
    f.insert("tableLink", |a| {
        want_args(a, 1)?;
        Ok(Value::String(format!(
            "/graph?g0.expr={}&g0.tab=1",
            query_escape(arg_str(a, 0)?)
        )))
    });
    let url = ctx.external_url.clone();
    f.insert("externalURL", move |a| {
        want_args(a, 0)?;
        Ok(Value::String(url.clone()))
    });
    let prefix = url_path(&ctx.external_url);
    f.insert("pathPrefix", move |a| {
        want_args(a, 0)?;
        Ok(Value::String(prefix.clone()))
    });
    let query = ctx.query.clone();
    f.insert("query", move |a| {
        want_args(a, 1)?;
        let q = arg_str(a, 0)?;
        let Some(run) = &query else {
            return Err("query is not available in this context".into());
        };
        let samples = run(q).map_err(FuncError::Call)?;
        Ok(Value::List(
            samples.into_iter().map(Value::object).collect(),
        ))
    });
    f
}

/// Go's deprecated `strings.Title`: upper-cases letters that follow a
/// separator and leaves everything else alone.
fn strings_title(s: &str) -> String {
    let mut prev_sep = true;
    s.chars()
        .map(|c| {
            let out = if prev_sep {
                super::alertmanager::map_case(&c.to_string(), true)
            } else {
                c.to_string()
            };
            prev_sep = if c.is_ascii() {
                !(c.is_ascii_alphanumeric() || c == '_')
            } else {
                c.is_whitespace()
            };
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanize_matches_prometheus() {
        assert_eq!(humanize(1234567.0), "1.235M");
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize(0.001234), "1.234m");
        assert_eq!(humanize(999.0), "999");
        assert_eq!(humanize_1024(1048576.0), "1Mi");
        assert_eq!(humanize_1024(1.0), "1");
        assert_eq!(humanize_duration(899.99), "14m 59s");
        assert_eq!(humanize_duration(0.0), "0s");
        assert_eq!(humanize_duration(90061.0), "1d 1h 1m 1s");
        assert_eq!(humanize_duration(1.5), "1.5s");
        assert_eq!(humanize_duration(0.0015), "1.5ms");
        assert_eq!(humanize_duration(-3600.0), "-1h 0m 0s");
    }

    #[test]
    fn durations_and_hosts() {
        assert_eq!(parse_prom_duration("1h30m").unwrap(), 5400.0);
        assert_eq!(parse_prom_duration("250ms").unwrap(), 0.25);
        assert!(parse_prom_duration("30m1h").is_err());
        assert!(parse_prom_duration("1x").is_err());
        assert_eq!(
            split_host_port("[::1]:9090"),
            Some(("::1".into(), "9090".into()))
        );
        assert_eq!(split_host_port("::1"), None);
        assert_eq!(url_path("http://h:9090/prom/x?y"), "/prom/x");
        assert_eq!(strings_title("hello wORLD-foo"), "Hello WORLD-Foo");
    }
}
