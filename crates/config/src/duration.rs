//! Durations in Prometheus syntax (`1h30m`, `5m`, `2w`).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MS: u128 = 1;
const SECOND: u128 = 1000 * MS;
const MINUTE: u128 = 60 * SECOND;
const HOUR: u128 = 60 * MINUTE;
const DAY: u128 = 24 * HOUR;
const WEEK: u128 = 7 * DAY;
const YEAR: u128 = 365 * DAY;

/// Units from largest to smallest, as Prometheus' `model.Duration` orders them.
const UNITS: [(&str, u128); 7] = [
    ("y", YEAR),
    ("w", WEEK),
    ("d", DAY),
    ("h", HOUR),
    ("m", MINUTE),
    ("s", SECOND),
    ("ms", MS),
];

const HINT: &str = "use units ms, s, m, h, d, w, y like 1h30m";

/// A duration written as in Prometheus: unit terms `[0-9]+(y|w|d|h|m|s|ms)`
/// in decreasing order (`1h30m`, `5m`, `2w`), or `0`. `y` is 365 days, `w` 7
/// days, `d` 24 hours. In YAML a bare number is a count of seconds.
///
/// Resolution is one millisecond, so every value prints back in the syntax
/// it parses from.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(std::time::Duration);

impl Duration {
    /// Zero: what options use to mean "no limit" or "off".
    pub const ZERO: Duration = Duration(std::time::Duration::ZERO);

    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Duration(std::time::Duration::from_secs(secs))
    }

    /// A duration of whole milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Duration(std::time::Duration::from_millis(millis))
    }

    /// The std duration, for timers and timeouts.
    pub const fn as_std(self) -> std::time::Duration {
        self.0
    }

    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

/// Why a duration string was rejected; the message is what a person reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseDurationError(String);

impl fmt::Display for ParseDurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseDurationError {}

impl FromStr for Duration {
    type Err = ParseDurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || ParseDurationError(format!("invalid duration \"{s}\": {HINT}"));
        if s == "0" {
            return Ok(Duration::ZERO);
        }
        if s.is_empty() {
            return Err(ParseDurationError(format!("empty duration: {HINT}")));
        }
        let bytes = s.as_bytes();
        let mut pos = 0;
        let mut total: u128 = 0;
        // Index into UNITS of the last unit used: each term must use a smaller one.
        let mut next_unit = 0;
        while pos < bytes.len() {
            let start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            if start == pos {
                return Err(invalid());
            }
            let digits = &s[start..pos];
            let unit_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
                pos += 1;
            }
            let unit = &s[unit_start..pos];
            let Some(offset) = UNITS[next_unit..]
                .iter()
                .position(|(name, _)| *name == unit)
            else {
                return Err(invalid());
            };
            let index = next_unit + offset;
            next_unit = index + 1;
            let count: u128 = digits.parse().map_err(|_| out_of_range(s))?;
            total = count
                .checked_mul(UNITS[index].1)
                .and_then(|term| total.checked_add(term))
                .ok_or_else(|| out_of_range(s))?;
        }
        let millis = u64::try_from(total).map_err(|_| out_of_range(s))?;
        Ok(Duration::from_millis(millis))
    }
}

fn out_of_range(s: &str) -> ParseDurationError {
    ParseDurationError(format!("duration \"{s}\" is too long"))
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0.as_millis();
        if rest == 0 {
            return f.write_str("0s");
        }
        for (name, size) in UNITS {
            if rest >= size {
                write!(f, "{}{name}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Duration({self})")
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like 1h30m, or a number of seconds")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration::from_secs(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                u64::try_from(v)
                    .map(Duration::from_secs)
                    .map_err(|_| E::custom(format!("invalid duration {v}: must not be negative")))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
                Err(E::custom(format!("invalid duration {v}: {HINT}")))
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Duration {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_prometheus_units() {
        assert_eq!(parse("0"), Duration::ZERO);
        assert_eq!(parse("0s"), Duration::ZERO);
        assert_eq!(parse("250ms"), Duration::from_millis(250));
        assert_eq!(parse("5m"), Duration::from_secs(300));
        assert_eq!(parse("1h30m"), Duration::from_secs(5400));
        assert_eq!(parse("1d"), Duration::from_secs(86_400));
        assert_eq!(parse("2w"), Duration::from_secs(14 * 86_400));
        assert_eq!(parse("1y"), Duration::from_secs(365 * 86_400));
        assert_eq!(parse("1m1s500ms"), Duration::from_millis(61_500));
        assert_eq!(parse("90m"), Duration::from_secs(5400));
    }

    #[test]
    fn rejects_bad_syntax_with_a_hint() {
        for bad in [
            "5x", "", "m", "5", "1.5h", "-1s", "1m1h", "1h1h", "5 m", "1H", "1s5", "ms",
        ] {
            let err = bad.parse::<Duration>().unwrap_err().to_string();
            assert!(err.contains("ms, s, m, h, d, w, y"), "{bad:?}: {err}");
        }
        assert_eq!(
            "5x".parse::<Duration>().unwrap_err().to_string(),
            "invalid duration \"5x\": use units ms, s, m, h, d, w, y like 1h30m"
        );
    }

    #[test]
    fn rejects_overflow() {
        let err = "99999999999999999999999y".parse::<Duration>().unwrap_err();
        assert!(err.to_string().contains("too long"), "{err}");
    }

    #[test]
    fn displays_like_prometheus_and_round_trips() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(5400), "1h30m"),
            (Duration::from_millis(1500), "1s500ms"),
            (Duration::from_secs(8 * 86_400), "1w1d"),
            (Duration::from_secs(366 * 86_400), "1y1d"),
            (Duration::from_secs(120), "2m"),
        ];
        for (d, text) in cases {
            assert_eq!(d.to_string(), text);
            assert_eq!(parse(text), d);
        }
    }

    #[test]
    fn converts_to_std() {
        let d = Duration::from_millis(1500);
        assert_eq!(d.as_std(), std::time::Duration::from_millis(1500));
        assert_eq!(
            std::time::Duration::from(d),
            std::time::Duration::from_millis(1500)
        );
        assert!(Duration::default().is_zero());
        assert!(Duration::from_secs(1) > Duration::from_millis(999));
    }

    #[test]
    fn yaml_string_or_seconds() {
        let d: Duration = serde_yaml::from_str("1h30m").unwrap();
        assert_eq!(d, Duration::from_secs(5400));
        let d: Duration = serde_yaml::from_str("90").unwrap();
        assert_eq!(d, Duration::from_secs(90));
        assert!(serde_yaml::from_str::<Duration>("-5").is_err());
        assert!(serde_yaml::from_str::<Duration>("1.5").is_err());
        assert_eq!(
            serde_yaml::to_string(&Duration::from_secs(90)).unwrap(),
            "1m30s\n"
        );
    }
}
