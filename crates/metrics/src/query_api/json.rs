//! Response bodies byte-for-byte as Prometheus writes them: Go's JSON string
//! escaping (HTML characters too), its float formats and the hand-written
//! sample encoders of `web/api/v1`.

use std::fmt::Write as _;
use std::io;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use pharos_core::error::{Classify, ErrorClass};
use pharos_model::{Labels, Sample};
use pharos_promql::Value;
use serde::Serialize;

/// An error answered in Prometheus' envelope.
#[derive(Debug, Clone)]
pub struct ApiErr {
    pub class: ErrorClass,
    pub message: String,
}

impl ApiErr {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
        }
    }

    pub fn from_error<E: Classify + std::fmt::Display>(e: &E) -> Self {
        Self::new(e.class(), e.to_string())
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: &'static str,
    #[serde(rename = "errorType")]
    error_type: &'a str,
    error: &'a str,
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        let error_type = self.class.prometheus_error_type();
        // upstream's respondError picks the status from the error type:
        // a canceled query is a 503 there, not a 499
        let status = match self.class {
            ErrorClass::Canceled | ErrorClass::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ErrorClass::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ErrorClass::BadRequest
            | ErrorClass::Unprocessable
            | ErrorClass::NotFound
            | ErrorClass::Internal => self.class.http_status(),
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = to_go_json(&ErrorBody {
            status: "error",
            error_type,
            error: &self.message,
        });
        json_response(status, body)
    }
}

pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `{"status":"success","data":<data>}` around already-encoded data, with
/// `warnings` only when there are some.
pub fn success_raw(data: &str, warnings: &[String]) -> Response {
    let mut out = String::with_capacity(data.len() + 40);
    out.push_str("{\"status\":\"success\",\"data\":");
    out.push_str(data);
    if !warnings.is_empty() {
        out.push_str(",\"warnings\":[");
        for (i, w) in warnings.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_str(&mut out, w);
        }
        out.push(']');
    }
    out.push('}');
    json_response(StatusCode::OK, out.into_bytes())
}

pub fn success<T: Serialize>(data: &T) -> Response {
    let data = to_go_json(data);
    success_raw(&String::from_utf8_lossy(&data), &[])
}

/// serde_json output with Go's `encoding/json` string escaping.
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut s = String::with_capacity(fragment.len());
        escape_into(&mut s, fragment);
        writer.write_all(s.as_bytes())
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        char_escape: serde_json::ser::CharEscape,
    ) -> io::Result<()> {
        use serde_json::ser::CharEscape as C;
        let s = match char_escape {
            C::Quote => "\\\"".to_owned(),
            C::ReverseSolidus => "\\\\".to_owned(),
            C::Solidus => "/".to_owned(),
            C::LineFeed => "\\n".to_owned(),
            C::CarriageReturn => "\\r".to_owned(),
            C::Tab => "\\t".to_owned(),
            C::Backspace => "\\u0008".to_owned(),
            C::FormFeed => "\\u000c".to_owned(),
            C::AsciiControl(b) => format!("\\u{:04x}", b),
        };
        writer.write_all(s.as_bytes())
    }
}

pub fn to_go_json<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    // serializing plain data structs to a Vec cannot fail
    if let Err(e) = v.serialize(&mut ser) {
        tracing::error!(error = %e, "cannot encode response");
    }
    out
}

/// Escapes the characters Go escapes beyond JSON's minimum.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// A JSON string literal, escaped as Go does.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    escape_into(out, s);
    out.push('"');
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: shortest digits, exponent
/// with sign and at least two digits.
fn format_exp(v: f64) -> String {
    let s = format!("{v:e}");
    match s.split_once('e') {
        Some((mant, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mant}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

fn format_special(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("+Inf")
    } else if v == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`; Rust's `Display` prints the
/// same shortest round-trip digits without an exponent.
pub fn format_f(v: f64) -> String {
    match format_special(v) {
        Some(s) => s.to_owned(),
        None => format!("{v}"),
    }
}

/// Sample values as `jsonutil.MarshalValue` writes them: exponent form
/// below 1e-6 and from 1e21 on.
pub fn format_value(v: f64) -> String {
    if let Some(s) = format_special(v) {
        return s.to_owned();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        format_exp(v)
    } else {
        format!("{v}")
    }
}

/// A float64 as Go's `encoding/json` writes numbers (used for the float
/// timestamps of scalar and string results).
fn push_go_number(out: &mut String, v: f64) {
    let a = v.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format_exp(v);
        // encoding/json trims e-07 to e-7 but keeps e+21
        match s.find("e-0") {
            Some(i) => {
                out.push_str(&s[..i + 2]);
                out.push_str(&s[i + 3..]);
            }
            None => out.push_str(&s),
        }
    } else {
        let _ = write!(out, "{v}");
    }
}

/// `jsonutil.MarshalTimestamp`: milliseconds as seconds with up to three
/// (zero-padded, untrimmed) fraction digits.
pub fn push_ts(out: &mut String, t: i64) {
    let u = t.unsigned_abs();
    if t < 0 {
        out.push('-');
    }
    let _ = write!(out, "{}", u / 1000);
    let frac = u % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

pub fn push_labels(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, lb) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, &lb.name);
        out.push(':');
        push_str(out, &lb.value);
    }
    out.push('}');
}

fn push_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    push_ts(out, t);
    out.push_str(",\"");
    out.push_str(&format_value(v));
    out.push_str("\"]");
}

fn push_series(out: &mut String, l: &Labels, samples: &[Sample]) {
    out.push_str("{\"metric\":");
    push_labels(out, l);
    if !samples.is_empty() {
        out.push_str(",\"values\":[");
        for (i, s) in samples.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_point(out, s.t, s.v);
        }
        out.push(']');
    }
    out.push('}');
}

/// `{"resultType":...,"result":...}` of a query.
pub fn query_data(v: &Value) -> String {
    let mut out = String::new();
    out.push_str("{\"resultType\":\"");
    out.push_str(v.type_name());
    out.push_str("\",\"result\":");
    match v {
        Value::Scalar(t, x) => {
            out.push('[');
            push_go_number(&mut out, *t as f64 / 1000.0);
            out.push_str(",\"");
            out.push_str(&format_f(*x));
            out.push_str("\"]");
        }
        Value::String(t, s) => {
            out.push('[');
            push_go_number(&mut out, *t as f64 / 1000.0);
            out.push(',');
            push_str(&mut out, s);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push('[');
            for (i, (l, t, x)) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(&mut out, l);
                out.push_str(",\"value\":");
                push_point(&mut out, *t, *x);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push('[');
            for (i, (l, samples)) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_series(&mut out, l, samples);
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

/// `/api/v1/query_exemplars` data.
pub fn exemplars_data(series: &[crate::reader::ExemplarSeries]) -> String {
    let mut out = String::from("[");
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"seriesLabels\":");
        push_labels(&mut out, &s.series_labels);
        out.push_str(",\"exemplars\":[");
        for (j, e) in s.exemplars.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str("{\"labels\":");
            push_labels(&mut out, &e.labels);
            out.push_str(",\"value\":\"");
            out.push_str(&format_value(e.value));
            out.push_str("\",\"timestamp\":");
            push_ts(&mut out, e.t);
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_format_like_go() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(1e-7), "1e-07");
        assert_eq!(format_value(-2.5e21), "-2.5e+21");
        assert_eq!(format_value(1e20), "100000000000000000000");
        assert_eq!(format_value(123456.789), "123456.789");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_f(1e21), "1000000000000000000000");
        assert_eq!(format_f(1e-7), "0.0000001");
    }

    #[test]
    fn timestamps_format_like_go() {
        let ts = |t| {
            let mut s = String::new();
            push_ts(&mut s, t);
            s
        };
        assert_eq!(ts(1_435_781_430_781), "1435781430.781");
        assert_eq!(ts(1_435_781_430_500), "1435781430.500");
        assert_eq!(ts(1_435_781_430_005), "1435781430.005");
        assert_eq!(ts(4000), "4");
        assert_eq!(ts(-1500), "-1.500");
        let mut s = String::new();
        push_go_number(&mut s, 1e-7);
        assert_eq!(s, "1e-7");
    }

    #[test]
    fn strings_escape_like_go() {
        let mut s = String::new();
        push_str(&mut s, "a<b>&\"\\\n\u{1}\u{2028}é");
        assert_eq!(s, r#""a\u003cb\u003e\u0026\"\\\n\u0001\u2028é""#);
        let v = to_go_json(&serde_json::json!({"k": "<\u{8}>"}));
        assert_eq!(
            String::from_utf8(v).unwrap(),
            r#"{"k":"\u003c\u0008\u003e"}"#
        );
    }

    #[test]
    fn results_encode_like_prometheus() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let m = Value::Matrix(vec![(l.clone(), vec![Sample::new(1_435_781_430_781, 1.0)])]);
        assert_eq!(
            query_data(&m),
            r#"{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a"},"values":[[1435781430.781,"1"]]}]}"#
        );
        assert_eq!(
            query_data(&Value::Scalar(4000, 2.0)),
            r#"{"resultType":"scalar","result":[4,"2"]}"#
        );
        assert_eq!(
            query_data(&Value::Vector(vec![(l, 1500, f64::NAN)])),
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[1.500,"NaN"]}]}"#
        );
        assert_eq!(
            query_data(&Value::String(1500, "x".into())),
            r#"{"resultType":"string","result":[1.5,"x"]}"#
        );
    }
}
