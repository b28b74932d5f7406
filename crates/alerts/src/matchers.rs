//! Alertmanager's matcher syntax (`{foo="bar", baz=~"x.*"}`), shared by
//! routes, inhibit rules, silences and the API `filter` parameter.
//!
//! Matching itself is [`pharos_model::Matcher`]: regexes are anchored and a
//! missing label matches as the empty string, as upstream.

use std::cmp::Ordering;
use std::fmt::Write as _;

pub use pharos_model::{MatchOp, Matcher};

use crate::LabelSet;

/// Why a matcher string was rejected; the texts are upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseMatcherError {
    #[error("bad matcher format: {0}")]
    BadFormat(String),
    #[error("matcher value contains unescaped double quote: {0}")]
    UnescapedQuote(String),
    #[error("{0}")]
    BadRegex(String),
}

/// Parses a list like `{a="b",c=~"d.*"}` (braces optional), splitting on
/// commas outside double quotes.
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, ParseMatcherError> {
    let s = s.strip_prefix('{').unwrap_or(s);
    let s = s.strip_suffix('}').unwrap_or(s);
    let mut tokens = Vec::new();
    let mut token = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in s.chars() {
        match c {
            ',' if !quoted => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            '"' => {
                if escaped {
                    escaped = false;
                } else {
                    quoted = !quoted;
                }
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(c);
    }
    if !token.trim().is_empty() {
        tokens.push(token.trim().to_owned());
    }
    tokens.iter().map(|t| parse_matcher(t)).collect()
}

/// Parses one matcher such as `foo=~"bar.*"` or `foo=bar`.
pub fn parse_matcher(s: &str) -> Result<Matcher, ParseMatcherError> {
    let bad = || ParseMatcherError::BadFormat(s.to_owned());
    let t = s.trim_start();
    let name_len = t
        .char_indices()
        .find(|&(i, c)| {
            !(c == '_' || c == ':' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
        })
        .map_or(t.len(), |(i, _)| i);
    if name_len == 0 {
        return Err(bad());
    }
    let name = &t[..name_len];
    let rest = t[name_len..].trim_start();
    let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchOp::Regex, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchOp::NotEqual, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchOp::NotRegex, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchOp::Equal, r)
    } else {
        return Err(bad());
    };
    let raw_full = rest.trim();
    let quote_err = || ParseMatcherError::UnescapedQuote(raw_full.to_owned());
    let (raw, mut expect_quote) = match raw_full.strip_prefix('"') {
        Some(r) => (r, true),
        None => (raw_full, false),
    };
    let mut value = String::with_capacity(raw.len());
    let mut escaped = false;
    for (i, c) in raw.char_indices() {
        let last = i + c.len_utf8() == raw.len();
        if escaped {
            escaped = false;
            match c {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(c),
                _ => {
                    value.push('\\');
                    value.push(c);
                }
            }
            continue;
        }
        match c {
            '\\' if !last => escaped = true,
            '"' => {
                if !expect_quote || !last {
                    return Err(quote_err());
                }
                expect_quote = false;
            }
            _ => value.push(c),
        }
    }
    if expect_quote {
        return Err(quote_err());
    }
    Matcher::new(op, name, &value).map_err(|e| {
        ParseMatcherError::BadRegex(format!(
            "error parsing regexp: {}: `{value}`",
            regex_reason(&e.reason)
        ))
    })
}

/// The regex crate explains errors over several lines with a caret
/// drawing; messages here are one line, like Go's.
pub fn regex_reason(reason: &str) -> String {
    reason
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or_else(|| reason.lines().next().unwrap_or(reason))
        .to_owned()
}

/// Upstream's text form: `name="value"` with `\`, newline and `"` escaped.
pub fn matcher_string(m: &Matcher) -> String {
    let mut out = String::with_capacity(m.name.len() + m.value.len() + 4);
    let _ = write!(out, "{}{}\"", m.name, m.op);
    for c in m.value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `{a="b",c=~"d"}`: the form route keys are built from.
pub fn matchers_string(ms: &[Matcher]) -> String {
    let parts: Vec<String> = ms.iter().map(matcher_string).collect();
    format!("{{{}}}", parts.join(","))
}

fn op_rank(op: MatchOp) -> u8 {
    match op {
        MatchOp::Equal => 0,
        MatchOp::NotEqual => 1,
        MatchOp::Regex => 2,
        MatchOp::NotRegex => 3,
    }
}

/// Upstream's matcher order (name, then value, then type), which route
/// keys depend on.
pub fn sort_matchers(ms: &mut [Matcher]) {
    ms.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| a.value.cmp(&b.value))
            .then_with(|| op_rank(a.op).cmp(&op_rank(b.op)))
    });
}

/// Whether every matcher accepts `labels` (absent labels read as "").
pub fn matches_all(ms: &[Matcher], labels: &LabelSet) -> bool {
    ms.iter()
        .all(|m| m.matches(labels.get(&m.name).map_or("", String::as_str)))
}

/// The API `filter` semantics: a matcher with an empty value only asks
/// for presence/absence, so `foo=""` passes objects without `foo` and
/// `foo!=""` passes objects with it, whatever the value.
pub fn filter_matches(ms: &[Matcher], labels: &LabelSet) -> bool {
    ms.iter().all(|m| {
        let v = labels.get(&m.name);
        let negative = matches!(m.op, MatchOp::NotEqual | MatchOp::NotRegex);
        if m.value.is_empty() && (negative == v.is_some()) {
            return true;
        }
        m.matches(v.map_or("", String::as_str))
    })
}

/// Total order used where results must be stable.
pub fn cmp_matcher(a: &Matcher, b: &Matcher) -> Ordering {
    a.name
        .cmp(&b.name)
        .then_with(|| a.value.cmp(&b.value))
        .then_with(|| op_rank(a.op).cmp(&op_rank(b.op)))
}

/// Whether `name` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Matcher {
        parse_matcher(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_operators_quoted_and_unquoted() {
        let m = one("foo=bar");
        assert_eq!(
            (m.name.as_str(), m.op, m.value.as_str()),
            ("foo", MatchOp::Equal, "bar")
        );
        let m = one(r#"  foo !~ "a.*"  "#);
        assert_eq!((m.op, m.value.as_str()), (MatchOp::NotRegex, "a.*"));
        assert_eq!(one("foo!=").value, "");
        assert_eq!(one(r#"foo="a \"q\" \\ \n""#).value, "a \"q\" \\ \n");
        // Unknown escapes are kept literally, as upstream does.
        assert_eq!(one(r#"foo="a\d""#).value, "a\\d");
        assert_eq!(one("foo=~x.*").op, MatchOp::Regex);
    }

    #[test]
    fn regexes_are_anchored() {
        let m = one("job=~ap");
        assert!(!m.matches("api"));
        assert!(m.matches("ap"));
        assert!(one("job=~a.*").matches("api"));
    }

    #[test]
    fn rejects_bad_input_with_upstream_text() {
        assert_eq!(
            parse_matcher("=x").unwrap_err().to_string(),
            "bad matcher format: =x"
        );
        assert_eq!(
            parse_matcher("foo").unwrap_err().to_string(),
            "bad matcher format: foo"
        );
        assert_eq!(
            parse_matcher(r#"foo="a"b""#).unwrap_err().to_string(),
            r#"matcher value contains unescaped double quote: "a"b""#
        );
        assert!(matches!(
            parse_matcher(r#"foo="ab"#),
            Err(ParseMatcherError::UnescapedQuote(_))
        ));
        assert!(matches!(
            parse_matcher("foo=~(("),
            Err(ParseMatcherError::BadRegex(_))
        ));
    }

    #[test]
    fn parses_lists_with_commas_in_quotes() {
        let ms = parse_matchers(r#"{foo="a,b", baz=~"x.*",qux!=1}"#).unwrap();
        assert_eq!(ms.len(), 3);
        assert_eq!(ms[0].value, "a,b");
        assert_eq!(ms[2].op, MatchOp::NotEqual);
        assert!(parse_matchers("{}").unwrap().is_empty());
        assert_eq!(parse_matchers(r#"a="\"",b=c"#).unwrap()[0].value, "\"");
    }

    #[test]
    fn strings_and_order_follow_upstream() {
        let mut ms = parse_matchers(r#"z="1",a=~"x",a="x",a="w""#).unwrap();
        sort_matchers(&mut ms);
        assert_eq!(matchers_string(&ms), r#"{a="w",a="x",a=~"x",z="1"}"#);
        assert_eq!(matcher_string(&one(r#"a="q\"\n""#)), r#"a="q\"\n""#);
    }

    #[test]
    fn filter_semantics_for_empty_values() {
        let labels: LabelSet = [("a".to_owned(), "1".to_owned())].into();
        assert!(filter_matches(&[one("b=\"\"")], &labels));
        assert!(filter_matches(&[one("a!=\"\"")], &labels));
        assert!(!filter_matches(&[one("a=2")], &labels));
        assert!(filter_matches(&[one("a=~1|2")], &labels));
        assert!(matches_all(&[one("b=\"\"")], &labels));
        assert!(!matches_all(&[one("b!=\"\"")], &labels));
    }
}
