//! Parsers for the Prometheus text format 0.0.4 and OpenMetrics 1.0 text.
//!
//! Both parse a whole scrape body at once, as Prometheus does: a single bad
//! line fails the scrape, so there is no use in yielding the good prefix.
//! Names and label values without escapes borrow from the body; only escaped
//! values are copied.

use std::borrow::Cow;
use std::fmt;

/// The wire format of a scrape body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`, also the fallback for unknown types.
    PromText,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// Picks the parser for a response's `Content-Type`, as Prometheus 2.42
    /// does: OpenMetrics only when announced, the text format otherwise.
    pub fn from_content_type(content_type: Option<&str>) -> Self {
        let media = content_type
            .and_then(|c| c.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase());
        match media.as_deref() {
            Some("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::PromText,
        }
    }
}

/// A metric family's type from `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl MetricType {
    /// The name `/api/v1/targets/metadata` reports (Prometheus' `textparse`
    /// names; the text format's `untyped` is `unknown` there).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    fn parse(word: &str, format: Format) -> Option<Self> {
        Some(match (word, format) {
            ("counter", _) => MetricType::Counter,
            ("gauge", _) => MetricType::Gauge,
            ("histogram", _) => MetricType::Histogram,
            ("summary", _) => MetricType::Summary,
            ("untyped", Format::PromText) => MetricType::Unknown,
            ("unknown", Format::OpenMetrics) => MetricType::Unknown,
            ("gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            ("info", Format::OpenMetrics) => MetricType::Info,
            ("stateset", Format::OpenMetrics) => MetricType::StateSet,
            _ => return None,
        })
    }
}

/// What `# TYPE`, `# HELP` and `# UNIT` said about one metric family.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub name: String,
    pub kind: MetricType,
    pub help: String,
    pub unit: String,
}

/// An OpenMetrics exemplar attached to a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar<'a> {
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    pub value: f64,
    /// Milliseconds since the epoch, when the exemplar carries a timestamp.
    pub timestamp_ms: Option<i64>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample<'a> {
    pub name: &'a str,
    /// In the order written; duplicates are rejected by the parser.
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    pub value: f64,
    /// Milliseconds since the epoch (OpenMetrics' float seconds converted).
    pub timestamp_ms: Option<i64>,
    pub exemplar: Option<Exemplar<'a>>,
    /// 1-based line of the sample, for errors reported later (limits).
    pub line: usize,
}

/// A parsed scrape body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition<'a> {
    pub samples: Vec<ParsedSample<'a>>,
    /// One entry per family that had any metadata line, in first-seen order.
    pub metadata: Vec<Metadata>,
}

/// Why a body was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses raw bytes; invalid UTF-8 is an error naming its line.
pub fn parse_bytes(body: &[u8], format: Format) -> Result<Exposition<'_>, ParseError> {
    match std::str::from_utf8(body) {
        Ok(text) => parse(text, format),
        Err(err) => {
            let good = &body[..err.valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            Err(ParseError {
                line,
                message: "invalid UTF-8".into(),
            })
        }
    }
}

/// Parses a scrape body in `format`.
pub fn parse(text: &str, format: Format) -> Result<Exposition<'_>, ParseError> {
    let mut out = Exposition::default();
    let mut seen_eof = false;
    // The newline ending the last line does not start another one.
    let body = text.strip_suffix('\n').unwrap_or(text);
    let lines = if body.is_empty() {
        0
    } else {
        body.split('\n').count()
    };
    for (index, raw) in body.split('\n').take(lines).enumerate() {
        let line = index + 1;
        let err = |message: String| ParseError { line, message };
        if seen_eof {
            return Err(err("unexpected data after # EOF".into()));
        }
        match format {
            Format::PromText => prom_line(raw, line, &mut out).map_err(err)?,
            Format::OpenMetrics => {
                if raw == "# EOF" {
                    seen_eof = true;
                    continue;
                }
                om_line(raw, line, &mut out).map_err(err)?
            }
        }
    }
    if format == Format::OpenMetrics && !seen_eof {
        let line = lines.max(1);
        return Err(ParseError {
            line,
            message: "data does not end with # EOF".into(),
        });
    }
    Ok(out)
}

fn metadata_entry<'m>(out: &'m mut Vec<Metadata>, name: &str) -> &'m mut Metadata {
    // Families are few and usually consecutive: look from the back.
    let pos = out.iter().rposition(|m| m.name == name);
    let idx = match pos {
        Some(i) => i,
        None => {
            out.push(Metadata {
                name: name.to_owned(),
                kind: MetricType::Unknown,
                help: String::new(),
                unit: String::new(),
            });
            out.len() - 1
        }
    };
    &mut out[idx]
}

fn prom_line<'a>(raw: &'a str, line: usize, out: &mut Exposition<'a>) -> Result<(), String> {
    let trimmed = raw.trim_start_matches([' ', '\t']);
    if trimmed.is_empty() {
        return Ok(());
    }
    if let Some(comment) = trimmed.strip_prefix('#') {
        let comment = comment.trim_start_matches([' ', '\t']);
        let (word, rest) = split_blank(comment);
        match word {
            "HELP" | "TYPE" if !rest.is_empty() => {
                let (name, text) = split_blank(rest);
                check_metric_name(name)?;
                if word == "HELP" {
                    let help = unescape_help(text, false);
                    metadata_entry(&mut out.metadata, name).help = help;
                } else {
                    let text = text.trim_end_matches([' ', '\t']);
                    let kind = MetricType::parse(text, Format::PromText)
                        .ok_or_else(|| format!("invalid metric type \"{text}\""))?;
                    metadata_entry(&mut out.metadata, name).kind = kind;
                }
            }
            // Any other comment, including a bare `# HELP`, is ignored.
            _ => {}
        }
        return Ok(());
    }
    let mut cur = Cursor::new(trimmed);
    let name = cur.metric_name()?;
    cur.skip_blanks();
    let labels = if cur.peek() == Some(b'{') {
        cur.bump();
        let labels = cur.label_set(true, true)?;
        cur.skip_blanks();
        labels
    } else {
        Vec::new()
    };
    if cur.at_end() {
        return Err(format!("expected value after metric name \"{name}\""));
    }
    let value = parse_value(cur.word())?;
    cur.skip_blanks();
    let timestamp_ms = if cur.at_end() {
        None
    } else {
        let word = cur.word();
        let ts = word
            .parse::<i64>()
            .map_err(|_| format!("invalid timestamp \"{word}\""))?;
        cur.skip_blanks();
        Some(ts)
    };
    if !cur.at_end() {
        return Err(format!("unexpected \"{}\" after sample", cur.rest()));
    }
    out.samples.push(ParsedSample {
        name,
        labels,
        value,
        timestamp_ms,
        exemplar: None,
        line,
    });
    Ok(())
}

fn om_line<'a>(raw: &'a str, line: usize, out: &mut Exposition<'a>) -> Result<(), String> {
    if raw.is_empty() {
        return Err("empty lines are not allowed in OpenMetrics".into());
    }
    if let Some(comment) = raw.strip_prefix("# ") {
        let (word, rest) = comment.split_once(' ').unwrap_or((comment, ""));
        if !matches!(word, "HELP" | "TYPE" | "UNIT") {
            return Err(format!("invalid comment \"{raw}\""));
        }
        let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
        check_metric_name(name)?;
        let entry = metadata_entry(&mut out.metadata, name);
        match word {
            "HELP" => entry.help = unescape_help(text, true),
            "UNIT" => entry.unit = text.to_owned(),
            _ => {
                entry.kind = MetricType::parse(text, Format::OpenMetrics)
                    .ok_or_else(|| format!("invalid metric type \"{text}\""))?;
            }
        }
        return Ok(());
    }
    if raw.starts_with('#') {
        return Err(format!("invalid comment \"{raw}\""));
    }
    let mut cur = Cursor::new(raw);
    let name = cur.metric_name()?;
    let labels = if cur.peek() == Some(b'{') {
        cur.bump();
        cur.label_set(false, false)?
    } else {
        Vec::new()
    };
    cur.expect_space()?;
    let value = parse_value(cur.om_word())?;
    let mut timestamp_ms = None;
    let mut exemplar = None;
    if !cur.at_end() {
        cur.expect_space()?;
        if cur.peek() != Some(b'#') {
            timestamp_ms = Some(om_timestamp(cur.om_word())?);
            if !cur.at_end() {
                cur.expect_space()?;
            }
        }
        if !cur.at_end() {
            exemplar = Some(cur.exemplar()?);
        }
    }
    if !cur.at_end() {
        return Err(format!("unexpected \"{}\" after sample", cur.rest()));
    }
    out.samples.push(ParsedSample {
        name,
        labels,
        value,
        timestamp_ms,
        exemplar,
        line,
    });
    Ok(())
}

/// OpenMetrics timestamps are float seconds; Prometheus keeps milliseconds.
fn om_timestamp(word: &str) -> Result<i64, String> {
    let secs: f64 = word
        .parse()
        .map_err(|_| format!("invalid timestamp \"{word}\""))?;
    if !secs.is_finite() {
        return Err(format!("invalid timestamp \"{word}\""));
    }
    let ms = (secs * 1000.0).round();
    if ms.abs() >= 9.2e18 {
        return Err(format!("timestamp \"{word}\" out of range"));
    }
    Ok(ms as i64)
}

fn split_blank(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim_start_matches([' ', '\t'])),
        None => (s, ""),
    }
}

/// Go's `strconv.ParseFloat` accepts what Rust's parser accepts for the
/// values exporters write (`NaN`, `+Inf`, `-Inf`, exponents) but Rust also
/// accepts `infinity` spelled out, as Go does.
fn parse_value(word: &str) -> Result<f64, String> {
    if word.is_empty() {
        return Err("expected a value".into());
    }
    word.parse::<f64>()
        .map_err(|_| format!("invalid value \"{word}\""))
}

fn is_name_start(b: u8, colon: bool) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || (colon && b == b':')
}

fn is_name_char(b: u8, colon: bool) -> bool {
    is_name_start(b, colon) || b.is_ascii_digit()
}

fn check_metric_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && is_name_start(bytes[0], true)
        && bytes.iter().all(|b| is_name_char(*b, true));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid metric name \"{name}\""))
    }
}

/// HELP text escapes: `\\` and `\n` in both formats, `\"` in OpenMetrics.
/// Unknown escapes stay as written, as Prometheus leaves them.
fn unescape_help(text: &str, om: bool) -> String {
    if !text.contains('\\') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if om => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn bump(&mut self) {
        self.pos += 1;
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        // Only ASCII bytes satisfy the predicates used, so `pos` stays on a
        // char boundary.
        self.s.get(start..self.pos).unwrap_or("")
    }

    fn metric_name(&mut self) -> Result<&'a str, String> {
        match self.peek() {
            Some(b) if is_name_start(b, true) => Ok(self.take_while(|b| is_name_char(b, true))),
            _ => Err(format!(
                "invalid metric name at \"{}\"",
                snippet(self.rest())
            )),
        }
    }

    /// A value or timestamp in the text format, ended by a blank.
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b' ' || b == b'\t' {
                break;
            }
            self.advance_char();
        }
        self.s.get(start..self.pos).unwrap_or("")
    }

    /// A value or timestamp in OpenMetrics, ended by a single space.
    fn om_word(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b' ' {
                break;
            }
            self.advance_char();
        }
        self.s.get(start..self.pos).unwrap_or("")
    }

    fn advance_char(&mut self) {
        let len = self.rest().chars().next().map(char::len_utf8).unwrap_or(1);
        self.pos += len;
    }

    fn expect_space(&mut self) -> Result<(), String> {
        if self.peek() == Some(b' ') {
            self.pos += 1;
            if self.peek() == Some(b' ') {
                return Err("OpenMetrics allows a single space between fields".into());
            }
            Ok(())
        } else if self.at_end() {
            Err("unexpected end of line".into())
        } else {
            Err(format!("expected a space at \"{}\"", snippet(self.rest())))
        }
    }

    /// Reads `name="value", ...}` after the opening brace.
    fn label_set(
        &mut self,
        blanks: bool,
        trailing_comma: bool,
    ) -> Result<Vec<(&'a str, Cow<'a, str>)>, String> {
        let mut labels: Vec<(&'a str, Cow<'a, str>)> = Vec::new();
        loop {
            if blanks {
                self.skip_blanks();
            }
            if self.peek() == Some(b'}') {
                if !labels.is_empty() && !trailing_comma && self.s.as_bytes()[self.pos - 1] == b','
                {
                    return Err("trailing comma in label set".into());
                }
                self.bump();
                return Ok(labels);
            }
            let name = match self.peek() {
                Some(b) if is_name_start(b, false) => self.take_while(|b| is_name_char(b, false)),
                None => return Err("unexpected end of line in label set".into()),
                _ => {
                    return Err(format!(
                        "invalid label name at \"{}\"",
                        snippet(self.rest())
                    ));
                }
            };
            if blanks {
                self.skip_blanks();
            }
            if self.peek() != Some(b'=') {
                return Err(format!("expected \"=\" after label name \"{name}\""));
            }
            self.bump();
            if blanks {
                self.skip_blanks();
            }
            let value = self.quoted()?;
            if labels.iter().any(|(n, _)| *n == name) {
                return Err(format!("duplicate label name \"{name}\""));
            }
            labels.push((name, value));
            if blanks {
                self.skip_blanks();
            }
            match self.peek() {
                Some(b',') => self.bump(),
                Some(b'}') => {}
                None => return Err("unexpected end of line in label set".into()),
                _ => {
                    return Err(format!(
                        "expected \",\" or \"}}\" at \"{}\"",
                        snippet(self.rest())
                    ));
                }
            }
        }
    }

    /// A double-quoted label value. `\\`, `\"` and `\n` are unescaped;
    /// other escapes stay verbatim as in Prometheus.
    fn quoted(&mut self) -> Result<Cow<'a, str>, String> {
        if self.peek() != Some(b'"') {
            return Err(format!(
                "expected a quoted label value at \"{}\"",
                snippet(self.rest())
            ));
        }
        self.bump();
        let start = self.pos;
        let mut escaped = false;
        loop {
            match self.peek() {
                None => return Err("unterminated label value".into()),
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    self.pos += 1;
                    if self.at_end() {
                        return Err("unterminated label value".into());
                    }
                    self.advance_char();
                }
                Some(_) => self.advance_char(),
            }
        }
        let raw = self.s.get(start..self.pos).unwrap_or("");
        self.bump();
        if !escaped {
            return Ok(Cow::Borrowed(raw));
        }
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        }
        Ok(Cow::Owned(out))
    }

    /// `# {labels} value [timestamp]` after a sample.
    fn exemplar(&mut self) -> Result<Exemplar<'a>, String> {
        if !self.rest().starts_with("# {") {
            return Err(format!(
                "expected exemplar \"# {{...}}\" at \"{}\"",
                snippet(self.rest())
            ));
        }
        self.pos += 3;
        let labels = self.label_set(false, false)?;
        // The spec caps an exemplar's label set at 128 UTF-8 characters.
        let chars: usize = labels
            .iter()
            .map(|(n, v)| n.chars().count() + v.chars().count())
            .sum();
        if chars > 128 {
            return Err(format!(
                "exemplar labels have {chars} UTF-8 characters, exceeding the limit of 128"
            ));
        }
        self.expect_space()?;
        let value = parse_value(self.om_word())?;
        let timestamp_ms = if self.at_end() {
            None
        } else {
            self.expect_space()?;
            Some(om_timestamp(self.om_word())?)
        };
        Ok(Exemplar {
            labels,
            value,
            timestamp_ms,
        })
    }
}

fn snippet(s: &str) -> &str {
    match s.char_indices().nth(20) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels<'a>(s: &'a ParsedSample<'a>) -> Vec<(&'a str, &'a str)> {
        s.labels.iter().map(|(n, v)| (*n, v.as_ref())).collect()
    }

    #[test]
    fn text_format_basics() {
        let body = "# HELP http_requests_total The total number of HTTP requests.\n\
# TYPE http_requests_total counter\n\
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
\n\
# Escaping in label values:\n\
msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
metric_without_timestamp_and_labels 12.47\n\
something_weird{problem=\"division by zero\"} +Inf -3982045\n\
nan_metric NaN\n\
neg -Inf\n\
trailing{a=\"b\",} 1\n";
        let exp = parse(body, Format::PromText).unwrap();
        assert_eq!(exp.samples.len(), 8);
        let s0 = &exp.samples[0];
        assert_eq!(s0.name, "http_requests_total");
        assert_eq!(labels(s0), vec![("method", "post"), ("code", "200")]);
        assert_eq!(s0.value, 1027.0);
        assert_eq!(s0.timestamp_ms, Some(1_395_066_363_000));
        assert_eq!(exp.samples[1].value, 3.0);
        let dos = &exp.samples[2];
        assert_eq!(
            labels(dos),
            vec![
                ("path", "C:\\DIR\\FILE.TXT"),
                ("error", "Cannot find file:\n\"FILE.TXT\"")
            ]
        );
        assert_eq!(exp.samples[3].timestamp_ms, None);
        assert_eq!(exp.samples[4].value, f64::INFINITY);
        assert_eq!(exp.samples[4].timestamp_ms, Some(-3_982_045));
        assert!(exp.samples[5].value.is_nan());
        assert_eq!(exp.samples[6].value, f64::NEG_INFINITY);
        assert_eq!(labels(&exp.samples[7]), vec![("a", "b")]);
        assert_eq!(exp.samples[7].line, 12);
        assert_eq!(
            exp.metadata,
            vec![Metadata {
                name: "http_requests_total".into(),
                kind: MetricType::Counter,
                help: "The total number of HTTP requests.".into(),
                unit: String::new(),
            }]
        );
    }

    #[test]
    fn text_format_unescapes_help_and_borrows_plain_values() {
        let body = "# HELP m a\\\\b\\nc \\\"q\\\"\n# TYPE m untyped\nm{a=\"plain\"} 1\n";
        let exp = parse(body, Format::PromText).unwrap();
        // `\"` is not an escape in 0.0.4 HELP text.
        assert_eq!(exp.metadata[0].help, "a\\b\nc \\\"q\\\"");
        assert_eq!(exp.metadata[0].kind, MetricType::Unknown);
        assert!(matches!(exp.samples[0].labels[0].1, Cow::Borrowed("plain")));
    }

    #[test]
    fn text_format_errors_name_the_line() {
        let cases = [
            ("ok 1\nbad{a=\"b\" 1\n", 2),
            ("ok 1\n\n1bad 2\n", 3),
            ("m{a=b} 1\n", 1),
            ("m 1 2 3\n", 1),
            ("m abc\n", 1),
            ("m\n", 1),
            ("m 1 1.5\n", 1),
            ("m{a=\"1\",a=\"2\"} 1\n", 1),
            ("# TYPE m gaugehistogram\n", 1),
            ("m{a=\"unterminated} 1\n", 1),
        ];
        for (body, line) in cases {
            let err = parse(body, Format::PromText).unwrap_err();
            assert_eq!(err.line, line, "{body:?}: {err}");
        }
    }

    #[test]
    fn openmetrics_full_example() {
        let body = "# TYPE acme_http_router_request_seconds summary\n\
# UNIT acme_http_router_request_seconds seconds\n\
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.\n\
acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32\n\
acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0\n\
acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} 1605281325.0\n\
# TYPE foo counter\n\
foo_total 17.0 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67 1520879606.5\n\
foo_total{a=\"x\"} 3 # {} 1\n\
# TYPE bar histogram\n\
bar_bucket{le=\"+Inf\"} 4\n\
# EOF\n";
        let exp = parse(body, Format::OpenMetrics).unwrap();
        assert_eq!(exp.samples.len(), 6);
        assert_eq!(
            exp.samples[2].name,
            "acme_http_router_request_seconds_created"
        );
        assert_eq!(exp.samples[2].value, 1_605_281_325.0);
        let foo = &exp.samples[3];
        assert_eq!(foo.timestamp_ms, Some(1_520_879_607_789));
        let ex = foo.exemplar.as_ref().unwrap();
        assert_eq!(ex.labels, vec![("trace_id", Cow::Borrowed("KOO5S4vxi0o"))]);
        assert_eq!(ex.value, 0.67);
        assert_eq!(ex.timestamp_ms, Some(1_520_879_606_500));
        let foo2 = &exp.samples[4];
        assert_eq!(foo2.timestamp_ms, None);
        assert_eq!(foo2.exemplar.as_ref().unwrap().value, 1.0);
        assert_eq!(labels(&exp.samples[5]), vec![("le", "+Inf")]);
        let summary = &exp.metadata[0];
        assert_eq!(summary.kind, MetricType::Summary);
        assert_eq!(summary.unit, "seconds");
        assert_eq!(
            summary.help,
            "Latency though all of ACME's HTTP request router."
        );
        assert_eq!(exp.metadata[1].kind, MetricType::Counter);
        assert_eq!(exp.metadata[2].kind, MetricType::Histogram);
    }

    #[test]
    fn openmetrics_requires_eof_and_strict_layout() {
        let missing = parse("a 1\n", Format::OpenMetrics).unwrap_err();
        assert!(missing.message.contains("# EOF"), "{missing}");
        assert!(parse("a 1\n# EOF", Format::OpenMetrics).is_ok());
        let after = parse("a 1\n# EOF\nb 2\n", Format::OpenMetrics).unwrap_err();
        assert_eq!(after.line, 3);
        let cases = [
            ("a 1\n\n# EOF\n", 2),
            ("a  1\n# EOF\n", 1),
            ("# random comment\n# EOF\n", 1),
            ("a{b=\"c\",} 1\n# EOF\n", 1),
            ("a 1 # {x=\"y\"}\n# EOF\n", 1),
            ("# TYPE a untyped\n# EOF\n", 1),
            ("a 1 nope\n# EOF\n", 1),
        ];
        for (body, line) in cases {
            let err = parse(body, Format::OpenMetrics).unwrap_err();
            assert_eq!(err.line, line, "{body:?}: {err}");
        }
        let long = format!("a 1 # {{x=\"{}\"}} 1\n# EOF\n", "y".repeat(128));
        assert!(parse(&long, Format::OpenMetrics).is_err());
    }

    #[test]
    fn content_type_selects_the_parser() {
        assert_eq!(
            Format::from_content_type(Some(
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_content_type(Some("text/plain; version=0.0.4")),
            Format::PromText
        );
        assert_eq!(Format::from_content_type(None), Format::PromText);
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let err = parse_bytes(b"a 1\nb{x=\"\xff\"} 1\n", Format::PromText).unwrap_err();
        assert_eq!(err.line, 2);
    }

    /// A small xorshift generator so the robustness test is reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn garbage_and_truncated_input_never_panics() {
        let seed_body = "# HELP m h\\n\n# TYPE m counter\nm_total{a=\"x\\\"y\",b=\"é\"} 1.5e3 1000 # {t=\"1\"} 2 3.5\n# UNIT m s\nm_created 1\n# EOF\n";
        let alphabet: &[u8] = b"#{}=\",\\ \n\tabcHELPTYPEUNIT_:01.+-eInfNa\xc3\xa9\xff";
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut parsed_ok = 0;
        for _ in 0..3000 {
            let mut body: Vec<u8> = seed_body.as_bytes().to_vec();
            // Truncate, mutate a few bytes, and sometimes splice in garbage.
            let cut = (rng.next() as usize) % (body.len() + 1);
            body.truncate(cut);
            for _ in 0..(rng.next() % 4) {
                if body.is_empty() {
                    break;
                }
                let at = (rng.next() as usize) % body.len();
                body[at] = alphabet[(rng.next() as usize) % alphabet.len()];
            }
            for _ in 0..(rng.next() % 8) {
                body.push(alphabet[(rng.next() as usize) % alphabet.len()]);
            }
            for format in [Format::PromText, Format::OpenMetrics] {
                if parse_bytes(&body, format).is_ok() {
                    parsed_ok += 1;
                }
            }
        }
        // Some mutations keep the body valid, most do not; both paths ran.
        assert!(parsed_ok > 0);
        assert!(parse_bytes(seed_body.as_bytes(), Format::OpenMetrics).is_ok());
    }
}
