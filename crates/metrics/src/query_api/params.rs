//! Request parameters as Prometheus reads them: Go's `r.ParseForm` merge of
//! a form body and the URL query, `parseTime`, `parseDuration` and
//! `match[]` selectors.

use axum::body::{Body, to_bytes};
use axum::extract::FromRequest;
use http::{Request, header};
use pharos_core::error::ErrorClass;
use pharos_model::Matcher;
use promql_parser::parser::{Expr, VectorSelector};

use super::json::ApiErr;

/// Go's `http.maxFormSize`: bigger form bodies are refused.
pub const MAX_FORM_BODY: usize = 10 << 20;

/// `time.Unix(math.MinInt64/1000+62135596801, 0)` in milliseconds: the
/// default start of label and series lookups.
pub const MIN_TIME_MS: i64 = -9_223_309_901_257_974_000;
/// `time.Unix(math.MaxInt64/1000-62135596801, 999999999)` in milliseconds.
pub const MAX_TIME_MS: i64 = 9_223_309_901_257_974_999;
/// How Go formats those two, which clients (promtool, client_golang) send.
pub const MIN_TIME_TEXT: &str = "-292273086-05-16T16:47:06Z";
pub const MAX_TIME_TEXT: &str = "292277025-08-18T07:12:54.999999999Z";

/// Form values in Go's order: body values first, then the URL query, so
/// the first value of a name is what `r.FormValue` returns.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn from_parts(query: Option<&str>, body: Option<&[u8]>) -> Self {
        let mut v: Vec<(String, String)> = Vec::new();
        if let Some(b) = body {
            v.extend(form_urlencoded::parse(b).into_owned());
        }
        if let Some(q) = query {
            v.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Self(v)
    }

    /// The first value of `name`, or "" like Go's `FormValue`.
    pub fn value(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiErr;

    async fn from_request(req: Request<Body>, _state: &S) -> Result<Self, Self::Rejection> {
        let query = req.uri().query().map(str::to_owned);
        // Go reads the body only for form content types, ignoring parameters
        // such as charset
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        let has_body = matches!(
            *req.method(),
            http::Method::POST | http::Method::PUT | http::Method::PATCH
        );
        let body = if is_form && has_body {
            Some(
                to_bytes(req.into_body(), MAX_FORM_BODY)
                    .await
                    .map_err(|_| {
                        ApiErr::new(
                            ErrorClass::BadRequest,
                            "error parsing form values: http: POST too large",
                        )
                    })?,
            )
        } else {
            None
        };
        Ok(Self::from_parts(query.as_deref(), body.as_deref()))
    }
}

/// Go's `%q` for the ASCII-ish strings error messages quote.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.ParseFloat` for decimal input: Rust's parser plus digit
/// separators (`1_000`), which Go allows between digits. Hex floats
/// (`0x1p4`) are not accepted.
fn parse_go_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.trim() != s {
        return None;
    }
    if s.contains('_') {
        let b = s.as_bytes();
        let ok = b.iter().enumerate().all(|(i, c)| {
            *c != b'_'
                || (i > 0
                    && b[i - 1].is_ascii_digit()
                    && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        });
        return if ok {
            s.replace('_', "").parse::<f64>().ok()
        } else {
            None
        };
    }
    s.parse::<f64>().ok()
}

/// `parseTime`: float seconds (rounded to the millisecond) or RFC 3339,
/// plus the min/max sentinels; milliseconds since the epoch.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Some(f) = parse_go_float(s) {
        let secs = f.trunc();
        let frac_ms = ((f - secs) * 1000.0).round();
        // `as` saturates where Go's conversions would wrap; only absurd
        // inputs (beyond ±2^63 ms) differ
        return Ok((secs as i64)
            .saturating_mul(1000)
            .saturating_add(frac_ms as i64));
    }
    if let Some(t) = parse_rfc3339(s) {
        return Ok(t);
    }
    match s {
        MIN_TIME_TEXT => Ok(MIN_TIME_MS),
        MAX_TIME_TEXT => Ok(MAX_TIME_MS),
        _ => Err(format!("cannot parse {} to a valid timestamp", go_quote(s))),
    }
}

/// A time parameter with a default when absent, wrapped like upstream's
/// `parseTimeParam`.
pub fn time_param(p: &Params, name: &str, default: i64) -> Result<i64, ApiErr> {
    let v = p.value(name);
    if v.is_empty() {
        return Ok(default);
    }
    parse_time(v).map_err(|e| invalid_param(&format!("Invalid time value for '{name}': {e}"), name))
}

/// `invalid parameter "name": cause`, a 400 `bad_data`.
pub fn invalid_param(cause: &str, name: &str) -> ApiErr {
    ApiErr::new(
        ErrorClass::BadRequest,
        format!("invalid parameter {}: {cause}", go_quote(name)),
    )
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Go's `time.Parse(time.RFC3339Nano, s)`: `YYYY-MM-DDTHH:MM:SS[.frac]`
/// then `Z` or `±HH:MM`; milliseconds, fraction truncated.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (i64::from(num(0, 4)?), num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || sec > 59
    {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    // Go takes a comma as the decimal mark too, and at most nanoseconds
    if matches!(b.get(i), Some(b'.' | b',')) {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start || i - start > 9 {
            return None;
        }
        for (k, c) in b[start..i].iter().take(3).enumerate() {
            ms += i64::from(c - b'0') * [100, 10, 1][k];
        }
    }
    let offset_s: i64 = match b.get(i)? {
        b'Z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = i64::from(oh * 3600 + om * 60);
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + sec) - offset_s;
    Some(secs * 1000 + ms)
}

/// `parseDuration`: float seconds or a Prometheus duration (`5m`), in
/// nanoseconds like Go's `time.Duration`.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if let Some(f) = parse_go_float(s) {
        let ns = f * 1e9;
        if ns.is_nan() || ns > i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(format!(
                "cannot parse {} to a valid duration. It overflows int64",
                go_quote(s)
            ));
        }
        return Ok(ns as i64);
    }
    if let Ok(d) = s.parse::<pharos_config::Duration>()
        && let Ok(ns) = i64::try_from(d.as_std().as_nanos())
    {
        return Ok(ns);
    }
    Err(format!("cannot parse {} to a valid duration", go_quote(s)))
}

/// The model's matchers of a selector (the engine's conversion, errors as
/// text for the API's messages).
pub fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Matcher>, String> {
    pharos_promql::selector_matchers(vs).map_err(|e| e.to_string())
}

/// Upstream's `parser.ParseMetricSelector`: the text must be exactly one
/// vector selector.
pub fn parse_metric_selector(s: &str) -> Result<Vec<Matcher>, String> {
    let expr = pharos_promql::parse(s).map_err(|e| e.to_string())?;
    match expr {
        Expr::VectorSelector(vs)
            if vs.offset.is_none() && vs.at.is_none() && vs.matchers.or_matchers.is_empty() =>
        {
            selector_matchers(&vs)
        }
        _ => Err(format!(
            "parse error: expected a metric selector like up{{job=\"x\"}}, got {}",
            go_quote(s)
        )),
    }
}

/// `parseMatchersParam`: every set parsed, and each must select something
/// narrower than "all series".
pub fn parse_matchers_param(values: &[&str]) -> Result<Vec<Vec<Matcher>>, String> {
    let sets = values
        .iter()
        .map(|s| parse_metric_selector(s))
        .collect::<Result<Vec<_>, _>>()?;
    if sets
        .iter()
        .any(|set| set.iter().all(Matcher::matches_empty))
    {
        return Err("match[] must contain at least one non-empty matcher".into());
    }
    Ok(sets)
}

/// Upstream's `parser.ExtractSelectors`: the matchers of every vector
/// selector in the expression, in order.
pub fn extract_selectors(e: &Expr, out: &mut Vec<Vec<Matcher>>) -> Result<(), String> {
    match e {
        Expr::VectorSelector(vs) => out.push(selector_matchers(vs)?),
        Expr::MatrixSelector(ms) => out.push(selector_matchers(&ms.vs)?),
        Expr::Aggregate(a) => {
            extract_selectors(&a.expr, out)?;
            if let Some(p) = &a.param {
                extract_selectors(p, out)?;
            }
        }
        Expr::Unary(u) => extract_selectors(&u.expr, out)?,
        Expr::Binary(b) => {
            extract_selectors(&b.lhs, out)?;
            extract_selectors(&b.rhs, out)?;
        }
        Expr::Paren(p) => extract_selectors(&p.expr, out)?,
        Expr::Subquery(s) => extract_selectors(&s.expr, out)?,
        Expr::Call(c) => {
            for a in &c.args.args {
                extract_selectors(a, out)?;
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
    Ok(())
}

/// Prometheus' label name syntax (`model.LabelNameRE`).
pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_like_prometheus() {
        assert_eq!(parse_time("1435781451.781"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("1.0006"), Ok(1001));
        assert_eq!(parse_time("-1.5"), Ok(-1500));
        assert_eq!(parse_time("4"), Ok(4000));
        // Grafana's milliseconds read as seconds: far future, no error
        assert_eq!(parse_time("1700000000000"), Ok(1_700_000_000_000_000));
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781Z"),
            Ok(1_435_781_451_781)
        );
        assert_eq!(
            parse_time("2015-07-01T22:10:51+02:00"),
            Ok(1_435_781_451_000)
        );
        assert_eq!(parse_time("1970-01-01T00:00:00.123456789Z"), Ok(123));
        assert_eq!(parse_time(MIN_TIME_TEXT), Ok(MIN_TIME_MS));
        assert_eq!(parse_time(MAX_TIME_TEXT), Ok(MAX_TIME_MS));
        assert_eq!(
            parse_time("abc"),
            Err("cannot parse \"abc\" to a valid timestamp".into())
        );
        assert!(parse_time("2015-02-30T00:00:00Z").is_err());
        assert_eq!(parse_time("2015-07-01T20:10:51,5Z"), Ok(1_435_781_451_500));
        assert!(parse_time("2015-07-01T20:10:51.7811111111Z").is_err());
        assert!(parse_time("2015-07-01t20:10:51Z").is_err());
        assert!(parse_time("2015-07-01T20:10:51+0200").is_err());
        assert!(parse_time("2015-07-01T24:00:00Z").is_err());
        assert_eq!(parse_time("1_000"), Ok(1_000_000));
        assert!(parse_time("1__0").is_err() && parse_time("_1").is_err());
        assert!(parse_time("2015-07-01 20:10:51Z").is_err());
        assert!(parse_time("").is_err());
    }

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(parse_duration("15"), Ok(15_000_000_000));
        assert_eq!(parse_duration("0.5"), Ok(500_000_000));
        assert_eq!(parse_duration("5m"), Ok(300_000_000_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("-1"), Ok(-1_000_000_000));
        assert!(
            parse_duration("1e30")
                .unwrap_err()
                .contains("overflows int64")
        );
        assert_eq!(
            parse_duration("5x"),
            Err("cannot parse \"5x\" to a valid duration".into())
        );
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn civil_round_trip() {
        for d in [-800_000, -1, 0, 1, 19_000, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }

    #[test]
    fn form_merges_body_before_query() {
        let p = Params::from_parts(Some("query=b&match[]=x"), Some(b"query=a&match%5B%5D=y"));
        assert_eq!(p.value("query"), "a");
        assert_eq!(p.all("match[]"), vec!["y", "x"]);
        assert_eq!(p.value("nope"), "");
    }

    #[test]
    fn selectors() {
        let m = parse_metric_selector("up{job=\"a\"}").unwrap();
        assert_eq!(m.len(), 2);
        assert!(parse_metric_selector("rate(up[5m])").is_err());
        assert!(parse_metric_selector("up[5m]").is_err());
        assert!(parse_matchers_param(&["{job=~\".*\"}"]).is_err());
        assert!(parse_matchers_param(&["{job=~\".+\"}"]).is_ok());
        let mut out = Vec::new();
        let e = pharos_promql::parse("sum(rate(a[5m])) / on() b + 1").unwrap();
        extract_selectors(&e, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert!(is_label_name("job_1") && !is_label_name("1job") && !is_label_name(""));
    }
}
