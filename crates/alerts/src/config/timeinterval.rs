//! `time_intervals` entries (upstream's `timeinterval` package): parsed and
//! validated here; evaluating them belongs to the dispatcher.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::hook_error;

/// `start_time`/`end_time` as minutes of the day, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start_minute: u32,
    pub end_minute: u32,
}

/// An inclusive range written `a:b` or `a` (weekdays, days, months, years).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub begin: i32,
    pub end: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeInterval {
    pub times: Vec<TimeRange>,
    #[serde(with = "weekdays")]
    pub weekdays: Vec<DayRange>,
    #[serde(with = "days_of_month")]
    pub days_of_month: Vec<DayRange>,
    #[serde(with = "months")]
    pub months: Vec<DayRange>,
    #[serde(with = "years")]
    pub years: Vec<DayRange>,
    pub location: Option<String>,
}

/// A time interval cannot be evaluated in its `location` yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time zone {0:?} is not supported yet in pharos (only UTC)")]
pub struct UnsupportedLocation(pub String);

impl TimeInterval {
    /// Upstream's `ContainsTime`: every field given must match, days of
    /// the month counting from the end when negative. Only UTC is
    /// supported until time zone data is.
    pub fn contains(&self, ms: crate::time::Millis) -> Result<bool, UnsupportedLocation> {
        if let Some(loc) = self.location.as_deref().filter(|l| *l != "UTC") {
            return Err(UnsupportedLocation(loc.to_owned()));
        }
        let days = ms.div_euclid(86_400_000);
        let minute = (ms.rem_euclid(86_400_000) / 60_000) as u32;
        let (year, month, day) = crate::time::civil_from_days(days);
        let weekday = (days + 4).rem_euclid(7) as i32;
        let in_ranges = |ranges: &[DayRange], v: i32| {
            ranges.is_empty() || ranges.iter().any(|r| r.begin <= v && v <= r.end)
        };
        if !self.times.is_empty()
            && !self
                .times
                .iter()
                .any(|t| t.start_minute <= minute && minute < t.end_minute)
        {
            return Ok(false);
        }
        if !self.days_of_month.is_empty() {
            let (ny, nm) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
            let month_len = (crate::time::days_from_civil(ny, nm, 1)
                - crate::time::days_from_civil(year, month, 1)) as i32;
            let day = day as i32;
            let hit = self.days_of_month.iter().any(|r| {
                let abs = |v: i32| if v < 0 { month_len + v + 1 } else { v };
                let (begin, end) = (abs(r.begin), abs(r.end));
                // A range starting after this month's last day is skipped.
                begin <= month_len
                    && day >= begin.clamp(-month_len, month_len)
                    && day <= end.clamp(-month_len, month_len)
            });
            if !hit {
                return Ok(false);
            }
        }
        Ok(in_ranges(&self.months, month as i32)
            && in_ranges(&self.weekdays, weekday)
            && in_ranges(&self.years, year as i32))
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawTimeRange {
    start_time: String,
    end_time: String,
}

fn parse_hhmm(s: &str) -> Result<u32, String> {
    let bad = || format!("couldn't parse timestamp {s}, invalid format");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if h > 24 || m > 59 || (h == 24 && m != 0) {
        return Err(format!("timestamp {s} out of range"));
    }
    Ok(h * 60 + m)
}

impl<'de> Deserialize<'de> for TimeRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawTimeRange::deserialize(d)?;
        if raw.start_time.is_empty() || raw.end_time.is_empty() {
            return Err(hook_error("both start and end times must be provided"));
        }
        let start = parse_hhmm(&raw.start_time).map_err(hook_error)?;
        let end = parse_hhmm(&raw.end_time).map_err(hook_error)?;
        if start >= end {
            return Err(hook_error(
                "start time cannot be equal or greater than end time",
            ));
        }
        Ok(TimeRange {
            start_minute: start,
            end_minute: end,
        })
    }
}

impl Serialize for TimeRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        RawTimeRange {
            start_time: f(self.start_minute),
            end_time: f(self.end_minute),
        }
        .serialize(s)
    }
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn split_range(s: &str) -> Result<(&str, &str), String> {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [one] => Ok((one, one)),
        [a, b] => Ok((a, b)),
        _ => Err(format!("couldn't parse range {s}, invalid format")),
    }
}

fn parse_weekday(s: &str) -> Result<DayRange, String> {
    let (a, b) = split_range(s)?;
    let idx = |x: &str| {
        WEEKDAYS
            .iter()
            .position(|w| w.eq_ignore_ascii_case(x))
            .map(|i| i as i32)
            .ok_or_else(|| format!("{x} is not a valid weekday"))
    };
    let r = DayRange {
        begin: idx(a)?,
        end: idx(b)?,
    };
    if r.begin > r.end {
        return Err("start day cannot be before end day".into());
    }
    Ok(r)
}

fn parse_day_of_month(s: &str) -> Result<DayRange, String> {
    let (a, b) = split_range(s)?;
    let n = |x: &str| {
        x.parse::<i32>()
            .map_err(|_| format!("couldn't parse range {s}, invalid format"))
    };
    let r = DayRange {
        begin: n(a)?,
        end: n(b)?,
    };
    for v in [r.begin, r.end] {
        if v == 0 || !(-31..=31).contains(&v) {
            return Err(format!("{v} is not a valid day of the month: out of range"));
        }
    }
    if r.begin < 0 && r.end > 0 {
        return Err("end day must be negative if start day is negative".into());
    }
    if (r.begin >= 0) == (r.end >= 0) && r.end < r.begin {
        return Err(format!(
            "end day {} is always before start day {}",
            r.end, r.begin
        ));
    }
    Ok(r)
}

fn parse_month(s: &str) -> Result<DayRange, String> {
    let (a, b) = split_range(s)?;
    let idx = |x: &str| {
        if let Ok(n) = x.parse::<i32>() {
            return if (1..=12).contains(&n) {
                Ok(n)
            } else {
                Err(format!("{x} is not a valid month"))
            };
        }
        MONTHS
            .iter()
            .position(|m| m.eq_ignore_ascii_case(x))
            .map(|i| i as i32 + 1)
            .ok_or_else(|| format!("{x} is not a valid month"))
    };
    let r = DayRange {
        begin: idx(a)?,
        end: idx(b)?,
    };
    if r.end < r.begin {
        return Err(format!("end month {b} is before start month {a}"));
    }
    Ok(r)
}

fn parse_year(s: &str) -> Result<DayRange, String> {
    let (a, b) = split_range(s)?;
    let n = |x: &str| {
        x.parse::<i32>()
            .map_err(|_| format!("couldn't parse range {s}, invalid format"))
    };
    let r = DayRange {
        begin: n(a)?,
        end: n(b)?,
    };
    if r.end < r.begin {
        return Err(format!(
            "end year {} is before start year {}",
            r.end, r.begin
        ));
    }
    Ok(r)
}

macro_rules! range_list {
    ($module:ident, $parse:ident, $show:expr) => {
        mod $module {
            use super::*;

            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DayRange>, D::Error> {
                Vec::<String>::deserialize(d)?
                    .iter()
                    .map(|s| $parse(s).map_err(hook_error))
                    .collect()
            }

            pub fn serialize<S: Serializer>(v: &[DayRange], s: S) -> Result<S::Ok, S::Error> {
                let show: fn(i32) -> String = $show;
                s.collect_seq(v.iter().map(|r| {
                    if r.begin == r.end {
                        show(r.begin)
                    } else {
                        format!("{}:{}", show(r.begin), show(r.end))
                    }
                }))
            }
        }
    };
}

range_list!(weekdays, parse_weekday, |i| WEEKDAYS
    [i.clamp(0, 6) as usize]
    .to_owned());
range_list!(days_of_month, parse_day_of_month, |i| i.to_string());
range_list!(months, parse_month, |i| MONTHS
    [(i - 1).clamp(0, 11) as usize]
    .to_owned());
range_list!(years, parse_year, |i| i.to_string());

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<TimeInterval, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_all_fields() {
        let ti = parse(
            "times: [{start_time: '09:00', end_time: '17:30'}]\nweekdays: ['monday:friday', saturday]\ndays_of_month: ['1:5', '-3:-1']\nmonths: ['january:march', '12']\nyears: ['2020:2022']\nlocation: UTC\n",
        )
        .unwrap();
        assert_eq!(
            ti.times[0],
            TimeRange {
                start_minute: 540,
                end_minute: 1050
            }
        );
        assert_eq!(
            ti.weekdays,
            vec![DayRange { begin: 1, end: 5 }, DayRange { begin: 6, end: 6 }]
        );
        assert_eq!(ti.days_of_month[1], DayRange { begin: -3, end: -1 });
        assert_eq!(
            ti.months,
            vec![
                DayRange { begin: 1, end: 3 },
                DayRange { begin: 12, end: 12 }
            ]
        );
        let back = serde_yaml::to_string(&ti).unwrap();
        assert!(back.contains("monday:friday"), "{back}");
        assert!(back.contains("17:30"), "{back}");
    }

    #[test]
    fn contains_in_utc() {
        let at = |s: &str| crate::time::parse_rfc3339(s).unwrap();
        // 2024-02-29 was a Thursday.
        let ti =
            parse("weekdays: ['monday:friday']\ntimes: [{start_time: '09:00', end_time: '17:00'}]")
                .unwrap();
        assert!(ti.contains(at("2024-02-29T09:00:00Z")).unwrap());
        assert!(
            !ti.contains(at("2024-02-29T17:00:00Z")).unwrap(),
            "end is exclusive"
        );
        assert!(
            !ti.contains(at("2024-03-02T10:00:00Z")).unwrap(),
            "saturday"
        );
        let last = parse("days_of_month: ['-1']").unwrap();
        assert!(last.contains(at("2024-02-29T12:00:00Z")).unwrap());
        assert!(
            last.contains(at("2023-02-28T12:00:00Z")).unwrap(),
            "not a leap year"
        );
        assert!(!last.contains(at("2024-02-28T12:00:00Z")).unwrap());
        let q1 = parse("months: ['january:march']\nyears: ['2024']").unwrap();
        assert!(q1.contains(at("2024-03-31T23:59:00Z")).unwrap());
        assert!(!q1.contains(at("2024-04-01T00:00:00Z")).unwrap());
        assert!(!q1.contains(at("2025-01-01T00:00:00Z")).unwrap());
        let late = parse("days_of_month: ['31']").unwrap();
        assert!(!late.contains(at("2024-02-29T00:00:00Z")).unwrap());
        let berlin = parse("location: Europe/Berlin").unwrap();
        assert!(berlin.contains(0).is_err());
        assert!(parse("location: UTC").unwrap().contains(0).unwrap());
    }

    #[test]
    fn rejects_like_upstream() {
        for (yaml, msg) in [
            ("weekdays: [funday]", "funday is not a valid weekday"),
            (
                "weekdays: ['friday:monday']",
                "start day cannot be before end day",
            ),
            (
                "days_of_month: ['0']",
                "0 is not a valid day of the month: out of range",
            ),
            (
                "days_of_month: ['-3:2']",
                "end day must be negative if start day is negative",
            ),
            (
                "months: ['march:january']",
                "end month january is before start month march",
            ),
            (
                "times: [{start_time: '10:00', end_time: '09:00'}]",
                "start time cannot be equal or greater than end time",
            ),
            (
                "times: [{start_time: '25:00', end_time: '26:00'}]",
                "out of range",
            ),
            ("hours: [1]", "unknown field"),
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(msg), "{yaml}: {err}");
        }
    }
}
