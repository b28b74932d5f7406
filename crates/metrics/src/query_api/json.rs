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

/// Escapes the characters Go escapes beyond JSON's minimum. Runs of plain
/// characters are copied whole: label values rarely need any escape.
fn escape_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (esc, width): (&str, usize) = match b {
            b'"' => ("\\\"", 1),
            b'\\' => ("\\\\", 1),
            b'\n' => ("\\n", 1),
            b'\r' => ("\\r", 1),
            b'\t' => ("\\t", 1),
            b'<' => ("\\u003c", 1),
            b'>' => ("\\u003e", 1),
            b'&' => ("\\u0026", 1),
            // U+2028 and U+2029 are E2 80 A8 / E2 80 A9 in UTF-8
            0xE2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xA8) => {
                ("\\u2028", 3)
            }
            0xE2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xA9) => {
                ("\\u2029", 3)
            }
            0..0x20 => ("", 1),
            _ => {
                i += 1;
                continue;
            }
        };
        // `i` is always on an ASCII byte or a lead byte: a char boundary
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(esc);
        }
        i += width;
        start = i;
    }
    out.push_str(&s[start..]);
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
    let mut a = Ascii::new();
    a.value(v);
    let mut out = String::with_capacity(a.len);
    a.push_to(&mut out);
    out
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
    let mut a = Ascii::new();
    a.ts(t);
    a.push_to(out);
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

/// `[<seconds>,"<value>"]`, built on the stack and copied once.
fn push_point(out: &mut String, t: i64, v: f64) {
    let mut a = Ascii::new();
    a.byte(b'[');
    a.ts(t);
    a.bytes(b",\"");
    a.value(v);
    a.bytes(b"\"]");
    a.push_to(out);
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

/// Roughly the encoded size of a result, so a large matrix is written into
/// one allocation instead of a dozen doublings (each copying the body).
fn encoded_len_hint(v: &Value) -> usize {
    // `[1700000000.250,"12.25"],` is ~25 bytes; rates with 17 digits ~35
    const POINT: usize = 32;
    let labels = |l: &Labels| {
        2 + l
            .iter()
            .map(|lb| lb.name.len() + lb.value.len() + 6)
            .sum::<usize>()
    };
    64 + match v {
        Value::Scalar(..) => 0,
        Value::String(_, s) => s.len() + 2,
        Value::Vector(samples) => samples.iter().map(|(l, ..)| labels(l) + 24 + POINT).sum(),
        Value::Matrix(series) => series
            .iter()
            .map(|(l, samples)| labels(l) + 24 + samples.len() * POINT)
            .sum(),
    }
}

/// `{"resultType":...,"result":...}` of a query.
#[cfg(test)]
pub fn query_data(v: &Value) -> String {
    let mut out = String::with_capacity(encoded_len_hint(v));
    push_query_data(&mut out, v);
    out
}

/// The success answer of a query, its data written straight into the
/// envelope's buffer.
pub fn query_success(v: &Value) -> Response {
    const HEAD: &str = "{\"status\":\"success\",\"data\":";
    let mut out = String::with_capacity(HEAD.len() + encoded_len_hint(v) + 1);
    out.push_str(HEAD);
    push_query_data(&mut out, v);
    out.push('}');
    json_response(StatusCode::OK, out.into_bytes())
}

fn push_query_data(out: &mut String, v: &Value) {
    out.push_str("{\"resultType\":\"");
    out.push_str(v.type_name());
    out.push_str("\",\"result\":");
    match v {
        Value::Scalar(t, x) => {
            out.push('[');
            push_go_number(out, *t as f64 / 1000.0);
            out.push_str(",\"");
            out.push_str(&format_f(*x));
            out.push_str("\"]");
        }
        Value::String(t, s) => {
            out.push('[');
            push_go_number(out, *t as f64 / 1000.0);
            out.push(',');
            push_str(out, s);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push('[');
            for (i, (l, t, x)) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(out, l);
                out.push_str(",\"value\":");
                push_point(out, *t, *x);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push('[');
            push_matrix(out, series);
            out.push(']');
        }
    }
    out.push('}');
}

/// Above this many points a matrix is encoded by two threads.
const PARALLEL_POINTS: usize = 50_000;

/// The series of a matrix, comma-separated, in order. Large answers are cut
/// in two halves of about equal points; the second half is encoded into
/// its own buffer, on another worker where one is free, and appended.
fn push_matrix(out: &mut String, series: &[(Labels, Vec<Sample>)]) {
    let total: usize = series.iter().map(|(_, s)| s.len()).sum();
    if total > PARALLEL_POINTS && series.len() > 1 {
        let mut acc = 0;
        let cut = series
            .iter()
            .position(|(_, s)| {
                acc += s.len();
                acc * 2 >= total
            })
            .map_or(1, |i| (i + 1).clamp(1, series.len() - 1));
        let (head, tail) = series.split_at(cut);
        let tail_room = out.capacity().saturating_sub(out.len()) / 2;
        let ((), tail_text) = pharos_core::parallel::join(
            || push_series_list(out, head, false),
            || {
                let mut buf = String::with_capacity(tail_room);
                push_series_list(&mut buf, tail, true);
                buf
            },
        );
        out.push_str(&tail_text);
    } else {
        push_series_list(out, series, false);
    }
}

fn push_series_list(out: &mut String, series: &[(Labels, Vec<Sample>)], after_first: bool) {
    for (i, (l, samples)) in series.iter().enumerate() {
        if after_first || i > 0 {
            out.push(',');
        }
        push_series(out, l, samples);
    }
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
            let mut a = Ascii::new();
            a.value(e.value);
            a.bytes(b"\",\"timestamp\":");
            a.push_to(&mut out);
            push_ts(&mut out, e.t);
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push(']');
    out
}

/// A stack buffer for one number or point: the hot encoders fill it byte by
/// byte and copy it into the answer once, so no value gets its own `String`.
struct Ascii {
    buf: [u8; 96],
    len: usize,
}

impl Ascii {
    fn new() -> Self {
        Self {
            buf: [0; 96],
            len: 0,
        }
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        // the buffer holds the longest point with room to spare; a write
        // past it is dropped rather than panicking in a handler
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    #[inline]
    fn bytes(&mut self, s: &[u8]) {
        let end = self.len + s.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(s);
            self.len = end;
        }
    }

    fn zeros(&mut self, n: usize) {
        for _ in 0..n {
            self.byte(b'0');
        }
    }

    /// Decimal digits of `n`, most significant first, two at a time,
    /// straight into the buffer.
    fn u64(&mut self, mut n: u64) {
        const PAIRS: &[u8; 200] = b"\
            0001020304050607080910111213141516171819\
            2021222324252627282930313233343536373839\
            4041424344454647484950515253545556575859\
            6061626364656667686970717273747576777879\
            8081828384858687888990919293949596979899";
        let width = n.checked_ilog10().unwrap_or(0) as usize + 1;
        let Some(dst) = self.buf.get_mut(self.len..self.len + width) else {
            return;
        };
        self.len += width;
        let mut i = width;
        while n >= 100 {
            let p = (n % 100) as usize * 2;
            n /= 100;
            i -= 2;
            dst[i..i + 2].copy_from_slice(&PAIRS[p..p + 2]);
        }
        if n >= 10 {
            let p = n as usize * 2;
            dst[..2].copy_from_slice(&PAIRS[p..p + 2]);
        } else {
            dst[0] = b'0' + n as u8;
        }
    }

    /// `jsonutil.MarshalTimestamp`: milliseconds as seconds with three
    /// untrimmed fraction digits, none for whole seconds.
    fn ts(&mut self, t: i64) {
        let u = t.unsigned_abs();
        if t < 0 {
            self.byte(b'-');
        }
        self.u64(u / 1000);
        let frac = u % 1000;
        if frac != 0 {
            self.byte(b'.');
            self.byte(b'0' + (frac / 100) as u8);
            self.byte(b'0' + (frac / 10 % 10) as u8);
            self.byte(b'0' + (frac % 10) as u8);
        }
    }

    /// A sample value as `jsonutil.MarshalValue` writes it (see
    /// [`format_value`]).
    fn value(&mut self, v: f64) {
        if let Some(s) = format_special(v) {
            self.bytes(s.as_bytes());
            return;
        }
        // Counters and most gauges are whole numbers: below 2^53 every
        // integer is exact, so its shortest round-trip digits are the
        // integer's own and plain integer printing is exact.
        if v.trunc() == v && v.abs() < 9_007_199_254_740_992.0 {
            if v.is_sign_negative() {
                self.byte(b'-');
            }
            self.u64(v.abs() as u64);
            return;
        }
        let exp_form = !(1e-6..1e21).contains(&v.abs());
        // written in place; taken back if the layout needs changing
        let start = self.len;
        let written = {
            use serde_json::ser::{CompactFormatter, Formatter};
            let mut w: &mut [u8] = &mut self.buf[start..];
            let room = w.len();
            CompactFormatter
                .write_f64(&mut w, v)
                .ok()
                .map(|()| room - w.len())
        };
        let Some(written) = written else {
            self.value_via_fmt(v, exp_form);
            return;
        };
        let text = &self.buf[start..start + written];
        // Fractions in the fixed range come out of serde_json as plain
        // "123.456" / "0.00123": already Go's layout. A halfway tie needs
        // v = m*2^e with e == -(fraction digits + 1), so only then is the
        // slow check below worth running.
        if !exp_form && !text.ends_with(b".0") {
            // one pass: only digits, a sign and one point, counting the
            // digits after the point
            let mut frac_digits: Option<i64> = None;
            let mut plain = true;
            for &b in text {
                match (b, frac_digits.as_mut()) {
                    (b'0'..=b'9', Some(n)) => *n += 1,
                    (b'0'..=b'9' | b'-', None) => {}
                    (b'.', None) => frac_digits = Some(0),
                    _ => plain = false,
                }
            }
            if let (true, Some(frac_digits)) = (plain, frac_digits) {
                let (_, e) = odd_mantissa(v);
                if i64::from(e) != -frac_digits - 1 {
                    self.len += written;
                    return;
                }
            }
        }
        let mut d = Digits::default();
        if !d.shortest(v) || d.is_tie(v) {
            self.value_via_fmt(v, exp_form);
            return;
        }
        if v.is_sign_negative() {
            self.byte(b'-');
        }
        let digits = &d.buf[..d.len];
        if exp_form {
            // Go's 'e' with -1 precision: d.ddde±XX, at least two exponent digits
            self.bytes(&digits[..1]);
            if digits.len() > 1 {
                self.byte(b'.');
                self.bytes(&digits[1..]);
            }
            self.byte(b'e');
            let x = d.point - 1;
            self.byte(if x < 0 { b'-' } else { b'+' });
            let x = x.unsigned_abs();
            if x < 10 {
                self.byte(b'0');
            }
            self.u64(u64::from(x));
        } else if d.point <= 0 {
            self.bytes(b"0.");
            self.zeros(d.point.unsigned_abs() as usize);
            self.bytes(digits);
        } else {
            let point = d.point as usize;
            if digits.len() <= point {
                self.bytes(digits);
                self.zeros(point - digits.len());
            } else {
                self.bytes(&digits[..point]);
                self.byte(b'.');
                self.bytes(&digits[point..]);
            }
        }
    }

    /// The encoder this one replaced (`core::fmt`, allocating): used for
    /// halfway ties, where it and Ryu-style writers may pick different
    /// digits, and should serde_json's text ever be unreadable.
    #[cold]
    fn value_via_fmt(&mut self, v: f64, exp_form: bool) {
        let s = if exp_form {
            format_exp(v)
        } else {
            format!("{v}")
        };
        self.bytes(s.as_bytes());
    }

    fn push_to(&self, out: &mut String) {
        let bytes = &self.buf[..self.len];
        match std::str::from_utf8(bytes) {
            Ok(s) => out.push_str(s),
            // only ASCII is ever written; stay lossless-looking regardless
            Err(_) => out.push_str(&String::from_utf8_lossy(bytes)),
        }
    }
}

/// serde_json's float text (shortest round-trip digits, its own layout),
/// written on the stack.
fn float_text(v: f64) -> Option<([u8; 40], usize)> {
    use serde_json::ser::{CompactFormatter, Formatter};
    let mut text = [0u8; 40];
    let mut w: &mut [u8] = &mut text;
    CompactFormatter.write_f64(&mut w, v).ok()?;
    let len = 40 - w.len();
    Some((text, len))
}

/// `v == m * 2^e` with `m` odd (`m == 0` for zero).
fn odd_mantissa(v: f64) -> (u64, i32) {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    let (m, e) = if biased == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), biased - 1075)
    };
    if m == 0 {
        return (0, 0);
    }
    let tz = m.trailing_zeros();
    (m >> tz, e + tz as i32)
}

/// The shortest round-trip decimal digits of a finite non-zero float: the
/// value is `0.<buf[..len]> * 10^point`.
#[derive(Default)]
struct Digits {
    buf: [u8; 32],
    len: usize,
    point: i32,
}

impl Digits {
    /// Takes the digits from serde_json's float writer (zmij, a Ryu-style shortest writer), which are the
    /// same shortest, closest digits Go's `strconv` picks, and reads them
    /// back out of whichever layout it chose. Returns false if the text was
    /// not the expected shape.
    fn shortest(&mut self, v: f64) -> bool {
        let Some((text, written)) = float_text(v) else {
            return false;
        };
        let text = &text[..written];
        let (mantissa, exp) = match text.iter().position(|&b| b == b'e') {
            Some(i) => (&text[..i], &text[i + 1..]),
            None => (text, &b""[..]),
        };
        let mut seen_point = false;
        for &b in mantissa {
            match b {
                b'-' => {}
                b'.' => seen_point = true,
                b'0'..=b'9' => {
                    if self.len == 0 && b == b'0' {
                        // leading zeros: "0." before the digits, and the
                        // zeros after the point move it left
                        if seen_point {
                            self.point -= 1;
                        }
                        continue;
                    }
                    let Some(slot) = self.buf.get_mut(self.len) else {
                        return false;
                    };
                    *slot = b;
                    self.len += 1;
                    if !seen_point {
                        self.point += 1;
                    }
                }
                _ => return false,
            }
        }
        let (neg, exp_digits) = match exp.split_first() {
            Some((b'-', rest)) => (true, rest),
            Some((b'+', rest)) => (false, rest),
            _ => (false, exp),
        };
        let mut e: i32 = 0;
        for &b in exp_digits {
            if !b.is_ascii_digit() || e > 10_000 {
                return false;
            }
            e = e * 10 + i32::from(b - b'0');
        }
        self.point += if neg { -e } else { e };
        while self.len > 0 && self.buf[self.len - 1] == b'0' {
            self.len -= 1;
        }
        self.len > 0
    }

    /// Whether `v` lies exactly halfway between these digits and a
    /// neighbour of the same length. serde_json then rounds to even while
    /// `core::fmt` (which the answers were written with before, and which
    /// the recorded tests pin) may pick the other one, e.g. 1e15+0.3 is
    /// ...0.25 exactly: serde_json says .2, `format!` says .3. Such values take the
    /// slow path so the output stays what it was.
    fn is_tie(&self, v: f64) -> bool {
        if self.len > 18 {
            return false;
        }
        let mut d: u64 = 0;
        for &b in &self.buf[..self.len] {
            d = d * 10 + u64::from(b - b'0');
        }
        let (m, e) = odd_mantissa(v);
        if m == 0 {
            return false;
        }
        // a midpoint is N * 10^q with N = 10d +- 5 odd, so it equals
        // m * 2^e only if e == q and the odd parts match
        let q = self.point - self.len as i32 - 1;
        if e != q {
            return false;
        }
        let pow5 = |k: u32| 5u128.checked_pow(k);
        let m = u128::from(m);
        [10 * u128::from(d) + 5, (10 * u128::from(d)).wrapping_sub(5)]
            .into_iter()
            .any(|n| {
                if q >= 0 {
                    pow5(q.unsigned_abs())
                        .and_then(|p| p.checked_mul(n))
                        .is_some_and(|x| x == m)
                } else {
                    pow5(q.unsigned_abs())
                        .and_then(|p| p.checked_mul(m))
                        .is_some_and(|x| x == n)
                }
            })
    }
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

#[cfg(test)]
mod golden {
    use super::*;

    /// Awkward values and timestamps, encoded by the per-value `String`
    /// encoder before it was rewritten; the literal below is its output.
    pub(super) fn varied() -> (Value, Value) {
        let values = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            1e-300,
            -1e-300,
            1e21,
            -1e21,
            999_999_999_999_999_900_000.0,
            0.1 + 0.2,
            1.0,
            -42.0,
            9_007_199_254_740_993.0,
            123_456.789,
            1e-6,
            9.99e-7,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            1.0 / 3.0,
            2.0 / 3.0 * 1e10,
            0.000_012_5,
            1e15 + 0.3,
            12_345_678_901_234_567_890.0,
        ];
        let stamps = [
            0i64,
            1,
            -1,
            999,
            -999,
            1000,
            -1000,
            1_435_781_430_781,
            1_435_781_430_500,
            1_435_781_430_005,
            -1_435_781_430_050,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
            253_402_300_799_999,
        ];
        let mut series = Vec::new();
        for (k, chunk) in values.chunks(7).enumerate() {
            let l = Labels::from_pairs([
                ("__name__", "m"),
                ("esc", "<\"\\\n\t\u{1}\u{2028}é&>"),
                ("k", &k.to_string()),
            ]);
            let samples = chunk
                .iter()
                .enumerate()
                .map(|(i, v)| Sample::new(stamps[(i + k * 3) % stamps.len()], *v))
                .collect();
            series.push((l, samples));
        }
        series.push((Labels::from_pairs([("empty", "")]), Vec::new()));
        let vector = values
            .iter()
            .zip(stamps.iter().cycle())
            .map(|(v, t)| (Labels::from_pairs([("a", "b")]), *t, *v))
            .collect();
        (Value::Matrix(series), Value::Vector(vector))
    }

    const MATRIX: &str = r##"{"resultType":"matrix","result":[{"metric":{"__name__":"m","esc":"\u003c\"\\\n\t\u0001\u2028é\u0026\u003e","k":"0"},"values":[[0,"NaN"],[0.001,"+Inf"],[-0.001,"-Inf"],[0.999,"-0"],[-0.999,"0"],[1,"1e-300"],[-1,"-1e-300"]]},{"metric":{"__name__":"m","esc":"\u003c\"\\\n\t\u0001\u2028é\u0026\u003e","k":"1"},"values":[[0.999,"1e+21"],[-0.999,"-1e+21"],[1,"999999999999999900000"],[-1,"0.30000000000000004"],[1435781430.781,"1"],[1435781430.500,"-42"],[1435781430.005,"9007199254740992"]]},{"metric":{"__name__":"m","esc":"\u003c\"\\\n\t\u0001\u2028é\u0026\u003e","k":"2"},"values":[[-1,"123456.789"],[1435781430.781,"0.000001"],[1435781430.500,"9.99e-07"],[1435781430.005,"5e-324"],[-1435781430.050,"1.7976931348623157e+308"],[9223372036854775.807,"2.2250738585072014e-308"],[-9223372036854775.808,"0.3333333333333333"]]},{"metric":{"__name__":"m","esc":"\u003c\"\\\n\t\u0001\u2028é\u0026\u003e","k":"3"},"values":[[1435781430.005,"6666666666.666666"],[-1435781430.050,"0.0000125"],[9223372036854775.807,"1000000000000000.3"],[-9223372036854775.808,"12345678901234567000"]]},{"metric":{}}]}"##;

    const VECTOR: &str = r##"{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[0,"NaN"]},{"metric":{"a":"b"},"value":[0.001,"+Inf"]},{"metric":{"a":"b"},"value":[-0.001,"-Inf"]},{"metric":{"a":"b"},"value":[0.999,"-0"]},{"metric":{"a":"b"},"value":[-0.999,"0"]},{"metric":{"a":"b"},"value":[1,"1e-300"]},{"metric":{"a":"b"},"value":[-1,"-1e-300"]},{"metric":{"a":"b"},"value":[1435781430.781,"1e+21"]},{"metric":{"a":"b"},"value":[1435781430.500,"-1e+21"]},{"metric":{"a":"b"},"value":[1435781430.005,"999999999999999900000"]},{"metric":{"a":"b"},"value":[-1435781430.050,"0.30000000000000004"]},{"metric":{"a":"b"},"value":[9223372036854775.807,"1"]},{"metric":{"a":"b"},"value":[-9223372036854775.808,"-42"]},{"metric":{"a":"b"},"value":[-9223372036854775.807,"9007199254740992"]},{"metric":{"a":"b"},"value":[253402300799.999,"123456.789"]},{"metric":{"a":"b"},"value":[0,"0.000001"]},{"metric":{"a":"b"},"value":[0.001,"9.99e-07"]},{"metric":{"a":"b"},"value":[-0.001,"5e-324"]},{"metric":{"a":"b"},"value":[0.999,"1.7976931348623157e+308"]},{"metric":{"a":"b"},"value":[-0.999,"2.2250738585072014e-308"]},{"metric":{"a":"b"},"value":[1,"0.3333333333333333"]},{"metric":{"a":"b"},"value":[-1,"6666666666.666666"]},{"metric":{"a":"b"},"value":[1435781430.781,"0.0000125"]},{"metric":{"a":"b"},"value":[1435781430.500,"1000000000000000.3"]},{"metric":{"a":"b"},"value":[1435781430.005,"12345678901234567000"]}]}"##;

    /// The per-value encoders as they were before the rewrite.
    fn old_value(v: f64) -> String {
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

    fn old_ts(t: i64) -> String {
        let u = t.unsigned_abs();
        let sign = if t < 0 { "-" } else { "" };
        match u % 1000 {
            0 => format!("{sign}{}", u / 1000),
            frac => format!("{sign}{}.{frac:03}", u / 1000),
        }
    }

    #[test]
    fn values_and_timestamps_match_the_old_encoder() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let check = |v: f64| assert_eq!(format_value(v), old_value(v), "{v:?} {:#x}", v.to_bits());
        for _ in 0..300_000 {
            let r = next();
            // any bit pattern, then the shapes real samples have: short
            // decimals, dyadic fractions (where halfway ties live) and
            // values near the 1e-6 / 1e21 switch
            check(f64::from_bits(r));
            check((r % 100_000_000) as f64 / 10f64.powi((r >> 40) as i32 % 12));
            check((r >> 11) as f64 / 2f64.powi((r % 64) as i32));
            check((r % 1_000_000) as f64 * 2f64.powi((r >> 50) as i32 % 40 - 20) + 1e15);
            check(f64::from_bits(
                1e21f64.to_bits().wrapping_add(r % 64).wrapping_sub(32),
            ));
            check(f64::from_bits(
                1e-6f64.to_bits().wrapping_add(r % 64).wrapping_sub(32),
            ));
            let t = r as i64 >> (r % 50);
            let mut s = String::new();
            push_ts(&mut s, t);
            assert_eq!(s, old_ts(t));
        }
        for k in 0..2000 {
            check(f64::from_bits(k));
            check(2f64.powi(k as i32 - 1074));
            check(10f64.powi(k as i32 % 700 - 350));
        }
    }

    /// A matrix answer as the old code wrote it, point by point.
    pub(super) fn old_matrix(series: &[(Labels, Vec<Sample>)]) -> String {
        let mut out = String::from("{\"resultType\":\"matrix\",\"result\":[");
        for (i, (l, samples)) in series.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"metric\":");
            push_labels(&mut out, l);
            if !samples.is_empty() {
                out.push_str(",\"values\":[");
                for (j, s) in samples.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    out.push('[');
                    let u = s.t.unsigned_abs();
                    if s.t < 0 {
                        out.push('-');
                    }
                    let _ = write!(out, "{}", u / 1000);
                    if u % 1000 != 0 {
                        let _ = write!(out, ".{:03}", u % 1000);
                    }
                    out.push_str(",\"");
                    out.push_str(&old_value(s.v));
                    out.push_str("\"]");
                }
                out.push(']');
            }
            out.push('}');
        }
        out.push_str("]}");
        out
    }

    #[test]
    fn large_matrix_split_across_threads_keeps_order_and_bytes() {
        let (Value::Matrix(small), _) = varied() else {
            unreachable!()
        };
        // uneven series sizes, empty ones, and enough points to go parallel
        let mut series = Vec::new();
        for k in 0..37usize {
            let (l, base) = &small[k % small.len()];
            let mut l = l.clone();
            l.set("k", &k.to_string());
            let n = (k * 211) % 3000;
            let samples: Vec<Sample> = (0..n)
                .map(|i| {
                    let b = base.get(i % base.len().max(1)).copied();
                    let v = b.map_or(i as f64 * 0.1, |b| b.v * (i % 5) as f64 + (i as f64) / 7.0);
                    Sample::new(
                        1_700_000_000_000 + (i * 15_001) as i64 - (k as i64) * 999_999,
                        v,
                    )
                })
                .collect();
            series.push((l, samples));
        }
        let points: usize = series.iter().map(|(_, s)| s.len()).sum();
        assert!(points > PARALLEL_POINTS);
        let want = old_matrix(&series);
        assert_eq!(query_data(&Value::Matrix(series)), want);
    }

    #[test]
    fn escaping_matches_the_old_encoder() {
        fn old_escape(s: &str) -> String {
            let mut out = String::new();
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
            out
        }
        let alphabet: Vec<char> =
            "ab\"\\\n\r\t<>&\u{0}\u{1f}\u{7f}é€\u{2027}\u{2028}\u{2029}\u{202a}😀"
                .chars()
                .collect();
        let mut seed = 0x1234_5678_9abc_def1u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let s: String = (0..seed % 12)
                .map(|i| alphabet[((seed >> (i * 5)) % alphabet.len() as u64) as usize])
                .collect();
            let mut got = String::new();
            escape_into(&mut got, &s);
            assert_eq!(got, old_escape(&s), "{s:?}");
        }
    }

    #[test]
    fn matrix_and_vector_match_the_recorded_encoding() {
        let (m, v) = varied();
        assert_eq!(query_data(&m), MATRIX);
        assert_eq!(query_data(&v), VECTOR);
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use std::time::Instant;

    /// `cargo test --release -p pharos-metrics --lib encode_bench -- --ignored --nocapture`
    #[test]
    #[ignore = "timing, run in release by hand"]
    fn encode_bench() {
        // a query_range answer: 100 series x 1440 steps, with counter-like
        // integers, rates (full 17-digit floats) and short decimals
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let series: Vec<(Labels, Vec<Sample>)> = (0..100)
            .map(|s| {
                let l = Labels::from_pairs([
                    ("__name__", "http_requests_total"),
                    ("instance", &format!("host-{s}:9100")),
                    ("job", "node"),
                ]);
                let pts = (0..1440i64)
                    .map(|i| {
                        let t = 1_700_000_000_000 + i * 15_000 + (s as i64 % 3) * 250;
                        let r = next();
                        let v = match s % 3 {
                            0 => (r % 1_000_000) as f64,
                            1 => (r >> 11) as f64 / (1u64 << 53) as f64 * 1234.5,
                            _ => (r % 10_000) as f64 / 100.0,
                        };
                        Sample::new(t, v)
                    })
                    .collect();
                (l, pts)
            })
            .collect();
        let points = 100.0 * 1440.0;
        let time = |name: &str, f: &dyn Fn() -> String| {
            let mut runs: Vec<f64> = (0..31)
                .map(|_| {
                    let start = Instant::now();
                    let out = f();
                    let ns = start.elapsed().as_nanos() as f64;
                    std::hint::black_box(out);
                    ns
                })
                .collect();
            runs.sort_by(f64::total_cmp);
            println!(
                "{name}: median {:.2} ms = {:.1} ns/point (best {:.1}), {} bytes",
                runs[15] / 1e6,
                runs[15] / points,
                runs[0] / points,
                f().len()
            );
        };
        time("old per-value String encoder", &|| {
            super::golden::old_matrix(&series)
        });
        time("new, one thread", &|| {
            let mut out = String::with_capacity(series.len() * 1440 * 32);
            push_series_list(&mut out, &series, false);
            out
        });
        let m = Value::Matrix(series.clone());
        time("new query_data (2 threads above 50k points)", &|| {
            query_data(&m)
        });
    }
}
