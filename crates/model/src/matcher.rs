//! Label matchers (`=`, `!=`, `=~`, `!~`) with Prometheus semantics:
//! regexes are fully anchored, and a missing label matches as the empty
//! string.

use std::fmt;
use std::sync::LazyLock;

use pharos_core::cache::TextCache;
use regex::Regex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Equal => "=",
            Self::NotEqual => "!=",
            Self::Regex => "=~",
            Self::NotRegex => "!~",
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid regular expression {pattern:?} for label {name}: {reason}")]
pub struct MatcherError {
    pub name: String,
    pub pattern: String,
    pub reason: String,
}

/// Anchored regexes by pattern: queries repeat their matchers (every
/// dashboard refresh, every rule evaluation, every `match[]`), and
/// compiling one costs more than most small queries' reads. A clone of a
/// `Regex` is cheap and has its own scratch space, so threads do not
/// contend on it.
static COMPILED: LazyLock<TextCache<Regex>> = LazyLock::new(|| TextCache::new(1024, 4096));

#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let name = name.into();
        let value = value.into();
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                COMPILED
                    .get_or_try(&value, |v| Regex::new(&format!("^(?:{v})$")))
                    .map_err(|e| MatcherError {
                        name: name.clone(),
                        pattern: value.clone(),
                        reason: e.to_string(),
                    })?,
            ),
            _ => None,
        };
        Ok(Self {
            name,
            op,
            value,
            re,
        })
    }

    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            re: None,
        }
    }

    /// Whether `value` (empty when the label is absent) matches.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::Regex => self.re.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Whether the empty string matches, i.e. whether series without the
    /// label are selected.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For regexes that are a plain alternation of literals (`a|b|c`), the
    /// literals, so an index can look them up instead of scanning values.
    pub fn set_matches(&self) -> Option<Vec<String>> {
        if !matches!(self.op, MatchOp::Regex | MatchOp::NotRegex) {
            return None;
        }
        let meta = |c: char| "\\.+*?()[]{}^$|".contains(c);
        let parts: Vec<&str> = self.value.split('|').collect();
        if parts.iter().all(|p| !p.chars().any(meta)) {
            Some(parts.into_iter().map(str::to_owned).collect())
        } else {
            None
        }
    }

    /// For regexes like `abc.*`, the literal prefix every match starts with.
    pub fn literal_prefix(&self) -> Option<&str> {
        if !matches!(self.op, MatchOp::Regex | MatchOp::NotRegex) {
            return None;
        }
        let v = self.value.strip_suffix(".*")?;
        let meta = |c: char| "\\.+*?()[]{}^$|".contains(c);
        (!v.chars().any(meta)).then_some(v)
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_regexes_are_kept_and_stay_anchored() {
        let a = Matcher::new(MatchOp::Regex, "device", "eth.*").unwrap();
        let b = Matcher::new(MatchOp::NotRegex, "device", "eth.*").unwrap();
        assert!(COMPILED.contains("eth.*"));
        assert!(a.matches("eth0") && !a.matches("veth0"));
        assert!(!b.matches("eth0") && b.matches("veth0"));
        // a bad pattern errs every time, and is not kept
        for _ in 0..2 {
            let e = Matcher::new(MatchOp::Regex, "x", "a(").unwrap_err();
            assert_eq!(e.pattern, "a(");
        }
        assert!(!COMPILED.contains("a("));
    }

    #[test]
    fn anchored_regexes() {
        let m = Matcher::new(MatchOp::Regex, "job", "api|web").unwrap();
        assert!(m.matches("api"));
        assert!(!m.matches("xapi"));
        assert!(!m.matches("api2"));
        assert_eq!(m.set_matches(), Some(vec!["api".into(), "web".into()]));
        let n = Matcher::new(MatchOp::NotRegex, "job", "a.*").unwrap();
        assert!(!n.matches("abc"));
        assert!(n.matches("ba"));
        assert_eq!(n.literal_prefix(), Some("a"));
        assert!(Matcher::new(MatchOp::Regex, "x", "(").is_err());
    }

    #[test]
    fn empty_matches_absent() {
        assert!(
            Matcher::new(MatchOp::Regex, "x", ".*")
                .unwrap()
                .matches_empty()
        );
        assert!(
            !Matcher::new(MatchOp::Regex, "x", ".+")
                .unwrap()
                .matches_empty()
        );
        assert!(Matcher::equal("x", "").matches_empty());
        assert!(
            Matcher::new(MatchOp::NotEqual, "x", "a")
                .unwrap()
                .matches_empty()
        );
    }
}
