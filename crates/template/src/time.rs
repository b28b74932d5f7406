//! Go's `time.Time` and `time.Duration` as template values, with Go's
//! layout-based formatting (`.StartsAt.Format "2006-01-02"`).

use std::sync::Arc;

use crate::error::FuncError;
use crate::funcs::{arg_str, want_args};
use crate::value::{TemplateObject, Value};

/// Seconds from 0001-01-01 (Go's zero time) to the Unix epoch.
const ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// An instant with a fixed UTC offset and zone name, like a Go `time.Time`
/// after `In(loc)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoTime {
    /// Seconds since the Unix epoch.
    pub secs: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
    /// Offset from UTC in seconds.
    pub offset: i32,
    /// Zone abbreviation, e.g. `UTC` or `CEST`.
    pub zone: String,
}

impl GoTime {
    /// A UTC time from Unix seconds and nanoseconds.
    pub fn from_unix(secs: i64, nanos: u32) -> Self {
        GoTime {
            secs: secs + i64::from(nanos / 1_000_000_000),
            nanos: nanos % 1_000_000_000,
            offset: 0,
            zone: "UTC".into(),
        }
    }

    /// A UTC time from Unix milliseconds.
    pub fn from_unix_millis(ms: i64) -> Self {
        Self::from_unix(
            ms.div_euclid(1000),
            (ms.rem_euclid(1000) * 1_000_000) as u32,
        )
    }

    /// Go's zero `time.Time` (0001-01-01 00:00:00 UTC).
    pub fn zero() -> Self {
        Self::from_unix(ZERO_TIME_UNIX, 0)
    }

    pub fn is_zero(&self) -> bool {
        self.secs == ZERO_TIME_UNIX && self.nanos == 0
    }

    /// Wraps the time as a template value.
    pub fn into_value(self) -> Value {
        Value::Object(Arc::new(self))
    }

    /// The same instant in UTC.
    pub fn utc(&self) -> Self {
        GoTime {
            offset: 0,
            zone: "UTC".into(),
            ..self.clone()
        }
    }

    /// The same instant in the IANA zone `name` (Go's `time.LoadLocation`
    /// plus `In`). Reads the system zoneinfo database; `Local` follows `TZ`
    /// or `/etc/localtime`.
    pub fn in_zone(&self, name: &str) -> Result<Self, String> {
        let zone = load_zone(name)?;
        let (offset, abbr) = zone.lookup(self.secs);
        Ok(GoTime {
            offset,
            zone: abbr,
            ..self.clone()
        })
    }

    /// Nanoseconds since the epoch (saturating).
    pub fn unix_nanos(&self) -> i128 {
        i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos)
    }

    fn civil(&self) -> Civil {
        civil(self.secs.saturating_add(i64::from(self.offset)))
    }

    /// Go's `Time.Format` with a reference-time layout.
    pub fn format(&self, layout: &str) -> String {
        format_layout(self, layout)
    }
}

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    weekday: u32,
    yday: u32,
}

fn civil(local_secs: i64) -> Civil {
    let days = local_secs.div_euclid(86_400);
    let sod = local_secs.rem_euclid(86_400) as u32;
    // Days-to-date over 400-year eras of 146097 days, eras starting 03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    const CUM: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = CUM[(month - 1) as usize] + day + u32::from(leap && month > 2);
    Civil {
        year,
        month,
        day,
        hour: sod / 3600,
        min: sod / 60 % 60,
        sec: sod % 60,
        weekday: (days + 4).rem_euclid(7) as u32,
        yday,
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn pad(out: &mut String, v: i64, width: usize, fill: char) {
    let s = v.unsigned_abs().to_string();
    if v < 0 {
        out.push('-');
    }
    for _ in s.len()..width {
        out.push(fill);
    }
    out.push_str(&s);
}

fn push_offset(out: &mut String, offset: i32, colon: bool, with_min: bool, with_sec: bool) {
    out.push(if offset < 0 { '-' } else { '+' });
    let a = offset.unsigned_abs();
    pad(out, i64::from(a / 3600), 2, '0');
    if with_min {
        if colon {
            out.push(':');
        }
        pad(out, i64::from(a / 60 % 60), 2, '0');
    }
    if with_sec {
        if colon {
            out.push(':');
        }
        pad(out, i64::from(a % 60), 2, '0');
    }
}

fn format_layout(t: &GoTime, layout: &str) -> String {
    let c = t.civil();
    let mut out = String::with_capacity(layout.len() + 10);
    let b = layout.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let rest = &layout[i..];
        let n = |s: &str| rest.starts_with(s);
        let h12 = if c.hour.is_multiple_of(12) {
            12
        } else {
            c.hour % 12
        };
        let step = if n("January") {
            out.push_str(MONTHS[(c.month - 1) as usize]);
            7
        } else if n("Jan") {
            out.push_str(&MONTHS[(c.month - 1) as usize][..3]);
            3
        } else if n("Monday") {
            out.push_str(DAYS[c.weekday as usize]);
            6
        } else if n("Mon") {
            out.push_str(&DAYS[c.weekday as usize][..3]);
            3
        } else if n("MST") {
            if t.zone.is_empty() {
                push_offset(&mut out, t.offset, false, true, false);
            } else {
                out.push_str(&t.zone);
            }
            3
        } else if n("01") {
            pad(&mut out, i64::from(c.month), 2, '0');
            2
        } else if n("02") {
            pad(&mut out, i64::from(c.day), 2, '0');
            2
        } else if n("03") {
            pad(&mut out, i64::from(h12), 2, '0');
            2
        } else if n("04") {
            pad(&mut out, i64::from(c.min), 2, '0');
            2
        } else if n("05") {
            pad(&mut out, i64::from(c.sec), 2, '0');
            2
        } else if n("06") {
            pad(&mut out, c.year.rem_euclid(100), 2, '0');
            2
        } else if n("002") {
            pad(&mut out, i64::from(c.yday), 3, '0');
            3
        } else if n("15") {
            pad(&mut out, i64::from(c.hour), 2, '0');
            2
        } else if n("1") {
            pad(&mut out, i64::from(c.month), 0, '0');
            1
        } else if n("2006") {
            pad(&mut out, c.year, 4, '0');
            4
        } else if n("2") {
            pad(&mut out, i64::from(c.day), 0, '0');
            1
        } else if n("_2006") {
            out.push('_');
            pad(&mut out, c.year, 4, '0');
            5
        } else if n("__2") {
            pad(&mut out, i64::from(c.yday), 3, ' ');
            3
        } else if n("_2") {
            pad(&mut out, i64::from(c.day), 2, ' ');
            2
        } else if n("3") {
            pad(&mut out, i64::from(h12), 0, '0');
            1
        } else if n("4") {
            pad(&mut out, i64::from(c.min), 0, '0');
            1
        } else if n("5") {
            pad(&mut out, i64::from(c.sec), 0, '0');
            1
        } else if n("PM") {
            out.push_str(if c.hour >= 12 { "PM" } else { "AM" });
            2
        } else if n("pm") {
            out.push_str(if c.hour >= 12 { "pm" } else { "am" });
            2
        } else if let Some((len, colon, min, sec, z)) = zone_token(rest) {
            if z && t.offset == 0 {
                out.push('Z');
            } else {
                push_offset(&mut out, t.offset, colon, min, sec);
            }
            len
        } else if let Some((len, digits, trim)) = frac_token(rest) {
            let frac = format!("{:09}", t.nanos);
            let mut f = &frac[..digits.min(9)];
            if trim {
                f = f.trim_end_matches('0');
            }
            if !f.is_empty() || !trim {
                out.push(char::from(b[i]));
                out.push_str(f);
            }
            len
        } else {
            let ch = rest.chars().next().unwrap_or(' ');
            out.push(ch);
            ch.len_utf8()
        };
        i += step;
    }
    out
}

/// Recognises `-0700`-style and `Z07:00`-style zone tokens:
/// (length, colon, minutes, seconds, Z-for-UTC).
fn zone_token(s: &str) -> Option<(usize, bool, bool, bool, bool)> {
    let z = s.starts_with('Z');
    let body = s.strip_prefix('Z').or_else(|| s.strip_prefix('-'))?;
    let base = 1;
    for (pat, colon, min, sec) in [
        ("070000", false, true, true),
        ("07:00:00", true, true, true),
        ("0700", false, true, false),
        ("07:00", true, true, false),
        ("07", false, false, false),
    ] {
        if body.starts_with(pat) {
            return Some((base + pat.len(), colon, min, sec, z));
        }
    }
    None
}

/// Recognises `.000` / `,999` fractional-second tokens: (length, digits,
/// trim zeros).
fn frac_token(s: &str) -> Option<(usize, usize, bool)> {
    let b = s.as_bytes();
    if !matches!(b.first(), Some(b'.' | b',')) {
        return None;
    }
    let ch = *b.get(1)?;
    if ch != b'0' && ch != b'9' {
        return None;
    }
    let mut j = 1;
    while b.get(j) == Some(&ch) {
        j += 1;
    }
    if b.get(j).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    Some((j, j - 1, ch == b'9'))
}

impl TemplateObject for GoTime {
    fn type_name(&self) -> &str {
        "time.Time"
    }

    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
        let no_args = |v: Value| -> Result<Value, FuncError> {
            want_args(args, 0)?;
            Ok(v)
        };
        let c = || self.civil();
        Some(match name {
            "Format" => (|| {
                want_args(args, 1)?;
                Ok(Value::String(self.format(arg_str(args, 0)?)))
            })(),
            "String" => no_args(Value::String(self.to_string())),
            "Unix" => no_args(Value::Int(self.secs)),
            "UnixMilli" => no_args(Value::Int(
                i64::try_from(self.unix_nanos() / 1_000_000).unwrap_or(i64::MAX),
            )),
            "UnixNano" => no_args(Value::Int(
                i64::try_from(self.unix_nanos()).unwrap_or(i64::MAX),
            )),
            "UTC" => no_args(self.utc().into_value()),
            "IsZero" => no_args(Value::Bool(self.is_zero())),
            "Year" => no_args(Value::Int(c().year)),
            "Day" => no_args(Value::Int(i64::from(c().day))),
            "Hour" => no_args(Value::Int(i64::from(c().hour))),
            "Minute" => no_args(Value::Int(i64::from(c().min))),
            "Second" => no_args(Value::Int(i64::from(c().sec))),
            "Nanosecond" => no_args(Value::Int(i64::from(self.nanos))),
            "YearDay" => no_args(Value::Int(i64::from(c().yday))),
            "Month" => no_args(named_int(
                i64::from(c().month),
                MONTHS[(c().month - 1) as usize],
                "time.Month",
            )),
            "Weekday" => no_args(named_int(
                i64::from(c().weekday),
                DAYS[c().weekday as usize],
                "time.Weekday",
            )),
            "Local" => no_args(
                self.in_zone("Local")
                    .unwrap_or_else(|_| self.utc())
                    .into_value(),
            ),
            "Before" | "After" | "Equal" | "Sub" => (|| {
                want_args(args, 1)?;
                let other = args[0]
                    .downcast::<GoTime>()
                    .ok_or_else(|| FuncError::Type {
                        expected: "time.Time".into(),
                        got: args[0].type_name(),
                    })?;
                let (a, b) = (self.unix_nanos(), other.unix_nanos());
                Ok(match name {
                    "Before" => Value::Bool(a < b),
                    "After" => Value::Bool(a > b),
                    "Equal" => Value::Bool(a == b),
                    _ => GoDuration(i64::try_from(a - b).unwrap_or(if a < b {
                        i64::MIN
                    } else {
                        i64::MAX
                    }))
                    .into_value(),
                })
            })(),
            "Add" => (|| {
                want_args(args, 1)?;
                let d =
                    match &args[0] {
                        Value::Int(n) => *n,
                        v => v.downcast::<GoDuration>().map(|d| d.0).ok_or_else(|| {
                            FuncError::Type {
                                expected: "time.Duration".into(),
                                got: v.type_name(),
                            }
                        })?,
                    };
                let total = self.unix_nanos() + i128::from(d);
                let secs = i64::try_from(total.div_euclid(1_000_000_000))
                    .map_err(|_| FuncError::Call("time out of range".into()))?;
                Ok(GoTime {
                    secs,
                    nanos: total.rem_euclid(1_000_000_000) as u32,
                    ..self.clone()
                }
                .into_value())
            })(),
            "In" => (|| {
                want_args(args, 1)?;
                Ok(self.in_zone(arg_str(args, 0)?)?.into_value())
            })(),
            _ => return None,
        })
    }

    fn display(&self) -> Option<String> {
        Some(self.to_string())
    }
}

/// Go's `Time.String` without the monotonic clock reading.
impl std::fmt::Display for GoTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.format("2006-01-02 15:04:05.999999999 -0700 MST"))
    }
}

/// An int-kinded Go value with a `String` method, like `time.Month`.
#[derive(Debug)]
struct NamedInt {
    value: i64,
    name: &'static str,
    type_name: &'static str,
}

impl TemplateObject for NamedInt {
    fn type_name(&self) -> &str {
        self.type_name
    }
    fn underlying(&self) -> Option<Value> {
        Some(Value::Int(self.value))
    }
    fn display(&self) -> Option<String> {
        Some(self.name.to_string())
    }
}

fn named_int(value: i64, name: &'static str, type_name: &'static str) -> Value {
    Value::Object(Arc::new(NamedInt {
        value,
        name,
        type_name,
    }))
}

/// A Go `time.Duration` (nanoseconds), printed as Go prints it (`1h2m3s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoDuration(pub i64);

impl GoDuration {
    pub fn into_value(self) -> Value {
        Value::Object(Arc::new(self))
    }

    pub fn seconds(&self) -> f64 {
        let s = self.0 / 1_000_000_000;
        let ns = self.0 % 1_000_000_000;
        s as f64 + ns as f64 / 1e9
    }
}

fn frac_str(mut v: u64, prec: usize) -> (String, u64) {
    // Returns the fractional digits (trailing zeros dropped) and v / 10^prec.
    let mut digits = Vec::new();
    let mut printed = false;
    for _ in 0..prec {
        let d = v % 10;
        printed = printed || d != 0;
        if printed {
            digits.push(char::from(b'0' + d as u8));
        }
        v /= 10;
    }
    let s: String = digits.into_iter().rev().collect();
    (if s.is_empty() { s } else { format!(".{s}") }, v)
}

impl std::fmt::Display for GoDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let neg = self.0 < 0;
        let u = self.0.unsigned_abs();
        let sign = if neg { "-" } else { "" };
        if u < 1_000_000_000 {
            if u == 0 {
                return f.write_str("0s");
            }
            let (prec, unit) = if u < 1_000 {
                (0, "ns")
            } else if u < 1_000_000 {
                (3, "µs")
            } else {
                (6, "ms")
            };
            let (frac, whole) = frac_str(u, prec);
            return write!(f, "{sign}{whole}{frac}{unit}");
        }
        let (frac, secs) = frac_str(u, 9);
        let s = secs % 60;
        let m = secs / 60 % 60;
        let h = secs / 3600;
        if h > 0 {
            write!(f, "{sign}{h}h{m}m{s}{frac}s")
        } else if m > 0 {
            write!(f, "{sign}{m}m{s}{frac}s")
        } else {
            write!(f, "{sign}{s}{frac}s")
        }
    }
}

impl TemplateObject for GoDuration {
    fn type_name(&self) -> &str {
        "time.Duration"
    }

    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
        let r = want_args(args, 0);
        Some(r.map(|()| match name {
            "Seconds" => Some(Value::Float(self.seconds())),
            "Minutes" => Some(Value::Float(self.seconds() / 60.0)),
            "Hours" => Some(Value::Float(self.seconds() / 3600.0)),
            "Milliseconds" => Some(Value::Int(self.0 / 1_000_000)),
            "Nanoseconds" => Some(Value::Int(self.0)),
            "String" => Some(Value::String(self.to_string())),
            _ => None,
        }))
        .and_then(|r| r.transpose())
    }

    fn underlying(&self) -> Option<Value> {
        Some(Value::Int(self.0))
    }

    fn display(&self) -> Option<String> {
        Some(self.to_string())
    }
}

/// A time zone: transitions and the local time types they switch to.
struct Zone {
    transitions: Vec<(i64, usize)>,
    types: Vec<(i32, String)>,
}

impl Zone {
    fn utc() -> Self {
        Zone {
            transitions: Vec::new(),
            types: vec![(0, "UTC".into())],
        }
    }

    fn lookup(&self, secs: i64) -> (i32, String) {
        let idx = match self.transitions.partition_point(|(t, _)| *t <= secs) {
            0 => 0,
            n => self.transitions[n - 1].1,
        };
        self.types.get(idx).cloned().unwrap_or((0, "UTC".into()))
    }
}

fn load_zone(name: &str) -> Result<Zone, String> {
    let unknown = || format!("unknown time zone {name}");
    if name.is_empty() || name == "UTC" {
        return Ok(Zone::utc());
    }
    let path = if name == "Local" {
        match std::env::var("TZ") {
            Ok(tz) if tz.is_empty() => return Ok(Zone::utc()),
            Ok(tz) => {
                let tz = tz.trim_start_matches(':').to_string();
                if tz.starts_with('/') {
                    tz
                } else {
                    format!("/usr/share/zoneinfo/{tz}")
                }
            }
            Err(_) => "/etc/localtime".to_string(),
        }
    } else {
        // Go rejects names that could escape the zoneinfo directory.
        if name.starts_with('/') || name.starts_with('\\') || name.contains("..") {
            return Err(unknown());
        }
        format!("/usr/share/zoneinfo/{name}")
    };
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(_) if name == "Local" => return Ok(Zone::utc()),
        Err(_) => return Err(unknown()),
    };
    parse_tzif(&data).ok_or_else(unknown)
}

fn be_u32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

/// Parses TZif transitions (v2+ 64-bit data when present). Times after the
/// last transition keep its type; the POSIX rule footer is not evaluated.
fn parse_tzif(d: &[u8]) -> Option<Zone> {
    if d.get(..4)? != b"TZif" {
        return None;
    }
    let version = *d.get(4)?;
    let counts = |at: usize| -> Option<[usize; 6]> {
        let mut c = [0usize; 6];
        for (i, slot) in c.iter_mut().enumerate() {
            *slot = be_u32(d, at + 20 + 4 * i)? as usize;
        }
        Some(c)
    };
    let c1 = counts(0)?;
    let v1_len = c1[3] * 5 + c1[4] * 6 + c1[5] + c1[2] * 8 + c1[1] + c1[0];
    let (base, c, tsize) = if version >= b'2' {
        let h2 = 44 + v1_len;
        if d.get(h2..h2 + 4)? != b"TZif" {
            return None;
        }
        (h2 + 44, counts(h2)?, 8)
    } else {
        (44, c1, 4)
    };
    let [_isut, _isstd, _leap, timecnt, typecnt, charcnt] = c;
    let mut p = base;
    let mut times = Vec::with_capacity(timecnt);
    for _ in 0..timecnt {
        let t = if tsize == 8 {
            i64::from_be_bytes(d.get(p..p + 8)?.try_into().ok()?)
        } else {
            i64::from(be_u32(d, p)? as i32)
        };
        times.push(t);
        p += tsize;
    }
    let idx = d.get(p..p + timecnt)?.to_vec();
    p += timecnt;
    let mut raw_types = Vec::with_capacity(typecnt);
    for _ in 0..typecnt {
        let off = be_u32(d, p)? as i32;
        let abbr = usize::from(*d.get(p + 5)?);
        raw_types.push((off, abbr));
        p += 6;
    }
    let chars = d.get(p..p + charcnt)?;
    let types = raw_types
        .into_iter()
        .map(|(off, a)| {
            let s = chars.get(a..).unwrap_or_default();
            let end = s.iter().position(|b| *b == 0).unwrap_or(s.len());
            (off, String::from_utf8_lossy(&s[..end]).into_owned())
        })
        .collect::<Vec<_>>();
    if types.is_empty() {
        return None;
    }
    let transitions = times
        .into_iter()
        .zip(idx)
        .map(|(t, i)| (t, usize::from(i)))
        .collect();
    Some(Zone { transitions, types })
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Takes 1..=max leading digits (exactly `max` when `fixed`).
fn take_num(v: &str, max: usize, fixed: bool) -> Option<(i64, &str)> {
    let n = v.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n == 0 || (fixed && n != max) {
        return None;
    }
    Some((v[..n].parse().ok()?, &v[n..]))
}

fn take_name<'a>(v: &'a str, names: &[&str], short: bool) -> Option<(usize, &'a str)> {
    names.iter().enumerate().find_map(|(i, n)| {
        let n = if short { &n[..3] } else { n };
        let head = v.get(..n.len())?;
        head.eq_ignore_ascii_case(n).then(|| (i, &v[n.len()..]))
    })
}

impl GoTime {
    /// Go's `time.ParseInLocation(layout, value, time.UTC)`.
    pub fn parse(layout: &str, value: &str) -> Result<GoTime, String> {
        let err = |lay: &str, val: &str| {
            format!("parsing time {value:?} as {layout:?}: cannot parse {val:?} as {lay:?}")
        };
        let (mut year, mut month, mut day) = (0i64, 1u32, 1u32);
        let (mut hour, mut min, mut sec, mut nanos) = (0i64, 0i64, 0i64, 0u32);
        let mut pm: Option<bool> = None;
        let mut offset: Option<i32> = None;
        let mut zone = String::new();
        let mut yday: Option<i64> = None;
        let mut v = value;
        let mut i = 0;
        while i < layout.len() {
            let rest = &layout[i..];
            let n = |s: &str| rest.starts_with(s);
            // Each arm consumes from `v` and says how much layout it used.
            let (used, ok): (usize, Option<&str>) = if n("January") {
                (
                    7,
                    take_name(v, &MONTHS, false).map(|(m, r)| {
                        month = m as u32 + 1;
                        r
                    }),
                )
            } else if n("Jan") {
                (
                    3,
                    take_name(v, &MONTHS, true).map(|(m, r)| {
                        month = m as u32 + 1;
                        r
                    }),
                )
            } else if n("Monday") {
                (6, take_name(v, &DAYS, false).map(|(_, r)| r))
            } else if n("Mon") {
                (3, take_name(v, &DAYS, true).map(|(_, r)| r))
            } else if n("MST") {
                let k = v.bytes().take_while(u8::is_ascii_uppercase).count();
                if k >= 3 {
                    zone = v[..k].to_string();
                    (3, Some(&v[k..]))
                } else {
                    (3, None)
                }
            } else if n("01") {
                (
                    2,
                    take_num(v, 2, true).map(|(x, r)| {
                        month = x as u32;
                        r
                    }),
                )
            } else if n("02") {
                (
                    2,
                    take_num(v, 2, true).map(|(x, r)| {
                        day = x as u32;
                        r
                    }),
                )
            } else if n("03") {
                (
                    2,
                    take_num(v, 2, true).map(|(x, r)| {
                        hour = x;
                        r
                    }),
                )
            } else if n("04") {
                (
                    2,
                    take_num(v, 2, true).map(|(x, r)| {
                        min = x;
                        r
                    }),
                )
            } else if n("05") {
                (
                    2,
                    take_num(v, 2, true).map(|(x, r)| {
                        sec = x;
                        r
                    }),
                )
            } else if n("06") {
                (
                    2,
                    take_num(v, 2, true).map(|(x, r)| {
                        year = if x >= 69 { 1900 + x } else { 2000 + x };
                        r
                    }),
                )
            } else if n("002") {
                (
                    3,
                    take_num(v, 3, true).map(|(x, r)| {
                        yday = Some(x);
                        r
                    }),
                )
            } else if n("15") {
                (
                    2,
                    take_num(v, 2, false).map(|(x, r)| {
                        hour = x;
                        r
                    }),
                )
            } else if n("1") {
                (
                    1,
                    take_num(v, 2, false).map(|(x, r)| {
                        month = x as u32;
                        r
                    }),
                )
            } else if n("2006") {
                (
                    4,
                    take_num(v, 4, true).map(|(x, r)| {
                        year = x;
                        r
                    }),
                )
            } else if n("2") {
                (
                    1,
                    take_num(v, 2, false).map(|(x, r)| {
                        day = x as u32;
                        r
                    }),
                )
            } else if n("__2") {
                let t = v.trim_start_matches(' ');
                (
                    3,
                    take_num(t, 3, false).map(|(x, r)| {
                        yday = Some(x);
                        r
                    }),
                )
            } else if n("_2") && !n("_2006") {
                let t = v.strip_prefix(' ').unwrap_or(v);
                (
                    2,
                    take_num(t, 2, false).map(|(x, r)| {
                        day = x as u32;
                        r
                    }),
                )
            } else if n("3") {
                (
                    1,
                    take_num(v, 2, false).map(|(x, r)| {
                        hour = x;
                        r
                    }),
                )
            } else if n("4") {
                (
                    1,
                    take_num(v, 2, false).map(|(x, r)| {
                        min = x;
                        r
                    }),
                )
            } else if n("5") {
                (
                    1,
                    take_num(v, 2, false).map(|(x, r)| {
                        sec = x;
                        r
                    }),
                )
            } else if n("PM") || n("pm") {
                // "PM" wants upper case, "pm" lower case, as in Go.
                let (p_word, a_word) = if n("PM") { ("PM", "AM") } else { ("pm", "am") };
                let p = v.starts_with(p_word);
                let a = v.starts_with(a_word);
                pm = (p || a).then_some(p);
                (2, (p || a).then(|| &v[2..]))
            } else if let Some((len, colon, with_min, with_sec, z)) = zone_token(rest) {
                if z && v.starts_with('Z') {
                    offset = Some(0);
                    (len, Some(&v[1..]))
                } else {
                    let sign = match v.as_bytes().first() {
                        Some(b'+') => 1,
                        Some(b'-') => -1,
                        _ => 0,
                    };
                    let mut r = v.get(1..).unwrap_or_default();
                    let mut parts = [0i64; 3];
                    let mut good = sign != 0;
                    for (k, want) in [true, with_min, with_sec].into_iter().enumerate() {
                        if !want || !good {
                            continue;
                        }
                        if k > 0 && colon {
                            match r.strip_prefix(':') {
                                Some(x) => r = x,
                                None => good = false,
                            }
                        }
                        match take_num(r, 2, true) {
                            Some((x, rr)) if good => {
                                parts[k] = x;
                                r = rr;
                            }
                            _ => good = false,
                        }
                    }
                    if good {
                        offset = Some(sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]) as i32);
                    }
                    (len, good.then_some(r))
                }
            } else if let Some((len, digits, trim)) = frac_token(rest) {
                // The fraction is optional for ".999" and exact for ".000".
                let sep = rest.as_bytes()[0];
                let k = v
                    .strip_prefix(char::from(sep))
                    .map_or(0, |r| r.bytes().take_while(u8::is_ascii_digit).count());
                if (trim && k == 0 && !v.starts_with(char::from(sep)))
                    || (trim && k > 0)
                    || (!trim && k == digits)
                {
                    if k > 0 {
                        let frac = &v[1..1 + k];
                        let padded = format!("{frac:0<9}");
                        nanos = padded[..9].parse().unwrap_or(0);
                        (len, Some(&v[1 + k..]))
                    } else {
                        (len, Some(v))
                    }
                } else {
                    (len, None)
                }
            } else {
                let ch = rest.chars().next().unwrap_or(' ');
                (ch.len_utf8(), v.strip_prefix(ch))
            };
            let Some(r) = ok else {
                return Err(err(&layout[i..i + used], v));
            };
            v = r;
            i += used;
            // A fraction after seconds is accepted even if the layout has none.
            if layout[..i].ends_with(['5']) && frac_token(&layout[i..]).is_none() {
                let b = v.as_bytes();
                if b.len() >= 2 && (b[0] == b'.' || b[0] == b',') && b[1].is_ascii_digit() {
                    let k = v[1..].bytes().take_while(u8::is_ascii_digit).count();
                    let padded = format!("{:0<9}", &v[1..1 + k]);
                    nanos = padded[..9].parse().unwrap_or(0);
                    v = &v[1 + k..];
                }
            }
        }
        if !v.is_empty() {
            return Err(format!("parsing time {value:?}: extra text: {v:?}"));
        }
        let range = |what: &str| format!("parsing time {value:?}: {what} out of range");
        if let Some(p) = pm {
            if !(1..=12).contains(&hour) {
                return Err(range("hour"));
            }
            if p && hour < 12 {
                hour += 12;
            } else if !p && hour == 12 {
                hour = 0;
            }
        }
        if let Some(yd) = yday {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            if yd < 1 || yd > 365 + i64::from(leap) {
                return Err(range("day-of-year"));
            }
            let days = days_from_civil(year, 1, 1) + yd - 1;
            let c = civil(days * 86_400);
            month = c.month;
            day = c.day;
        }
        if !(1..=12).contains(&month) {
            return Err(range("month"));
        }
        if day < 1 || day > days_in_month(year, month) {
            return Err(range("day"));
        }
        if hour > 23 {
            return Err(range("hour"));
        }
        if min > 59 {
            return Err(range("minute"));
        }
        if sec > 59 {
            return Err(range("second"));
        }
        let off = offset.unwrap_or(0);
        let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec;
        let zone = match (offset, zone.as_str()) {
            (Some(0), "") | (None, "") => "UTC".to_string(),
            (Some(_), "") => String::new(),
            (_, z) => z.to_string(),
        };
        Ok(GoTime {
            secs: local - i64::from(off),
            nanos,
            offset: off,
            zone,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_reference_layouts() {
        // 2009-11-10 23:04:05.123 UTC, a Tuesday.
        let t = GoTime::from_unix(1_257_894_245, 123_000_000);
        assert_eq!(
            t.format("2006-01-02T15:04:05Z07:00"),
            "2009-11-10T23:04:05Z"
        );
        assert_eq!(
            t.format("Mon Jan _2 15:04:05 MST 2006"),
            "Tue Nov 10 23:04:05 UTC 2009"
        );
        assert_eq!(
            t.format("3:04PM .000 .999 -0700"),
            "11:04PM .123 .123 +0000"
        );
        assert_eq!(t.to_string(), "2009-11-10 23:04:05.123 +0000 UTC");
        assert_eq!(GoTime::zero().to_string(), "0001-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            GoTime::from_unix(0, 0).format("Monday January 2 002"),
            "Thursday January 1 001"
        );
    }

    #[test]
    fn parses_layouts_like_go() {
        let t = GoTime::parse("2006-01-02T15:04:05Z07:00", "2009-11-10T23:04:05Z").unwrap();
        assert_eq!((t.secs, t.offset), (1_257_894_245, 0));
        let t = GoTime::parse(
            "2006-01-02 15:04:05.000 -0700",
            "2009-11-10 23:04:05.123 +0100",
        )
        .unwrap();
        assert_eq!((t.secs, t.nanos), (1_257_894_245 - 3600, 123_000_000));
        assert_eq!(t.to_string(), "2009-11-10 23:04:05.123 +0100 +0100");
        assert!(GoTime::parse("Jan _2 3:04PM 2006", "Feb  3 4:05pm 2021").is_err());
        let t = GoTime::parse("Jan _2 3:04pm 2006", "Feb  3 4:05pm 2021").unwrap();
        assert_eq!(t.format("2006-01-02 15:04"), "2021-02-03 16:05");
        let t = GoTime::parse("2006-01-02 15:04:05", "2021-02-03 04:05:06.5").unwrap();
        assert_eq!(t.nanos, 500_000_000);
        assert!(
            GoTime::parse("2006-01-02", "2021-02-30")
                .unwrap_err()
                .ends_with("day out of range")
        );
        // Go quotes the value after taking four bytes ("2-03"); we quote it whole.
        assert!(
            GoTime::parse("2006-01-02", "21-02-03")
                .unwrap_err()
                .ends_with("as \"2006\"")
        );
        assert_eq!(
            GoTime::parse("2006-01-02", "2021/02/03").unwrap_err(),
            "parsing time \"2021/02/03\" as \"2006-01-02\": cannot parse \"/02/03\" as \"-\""
        );
        assert!(
            GoTime::parse("2006", "2021x")
                .unwrap_err()
                .ends_with("extra text: \"x\"")
        );
        // Go's parsed times default to year 0, and CET without an offset is +0000.
        assert_eq!(
            GoTime::parse("15:04:05.999", "23:04:05")
                .unwrap()
                .to_string(),
            "0000-01-01 23:04:05 +0000 UTC"
        );
        assert_eq!(
            GoTime::parse("02 Jan 06 15:04 MST", "10 Nov 09 23:04 CET")
                .unwrap()
                .to_string(),
            "2009-11-10 23:04:00 +0000 CET"
        );
        assert!(GoTime::parse("15:04:05.000", "23:04:05").is_err());
    }

    #[test]
    fn time_methods_used_by_templates() {
        use crate::{ExecOptions, Funcs, Template};
        let t = Template::parse(
            "t",
            "{{ .A.Month }} {{ eq .A.Month 11 }} {{ .A.Weekday }} {{ .B.Sub .A }} {{ .A.Before .B }} {{ (.A.Add 1500000000).Format \"15:04:05.000\" }}",
            &Funcs::new(),
        )
        .unwrap();
        let data = Value::Map(
            [
                (
                    "A".to_string(),
                    GoTime::from_unix(1_257_894_245, 0).into_value(),
                ),
                (
                    "B".to_string(),
                    GoTime::from_unix(1_257_897_845, 5_000_000).into_value(),
                ),
            ]
            .into(),
        );
        assert_eq!(
            t.execute("t", &data, &ExecOptions::default()).unwrap(),
            "November true Tuesday 1h0m0.005s true 23:04:06.500"
        );
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(GoDuration(0).to_string(), "0s");
        assert_eq!(GoDuration(1_500).to_string(), "1.5µs");
        assert_eq!(GoDuration(3_723_000_000_000).to_string(), "1h2m3s");
        assert_eq!(GoDuration(-90_500_000_000).to_string(), "-1m30.5s");
        assert_eq!(GoDuration(2_000_000).to_string(), "2ms");
    }

    #[test]
    fn zone_lookup_uses_zoneinfo_when_present() {
        let t = GoTime::from_unix(1_720_000_000, 0); // July 2024
        match t.in_zone("Europe/Berlin") {
            Ok(b) => assert_eq!(b.format("15:04 MST -07:00"), "11:46 CEST +02:00"),
            // Hosts without tzdata cannot load zones; Go fails the same way.
            Err(e) => assert_eq!(e, "unknown time zone Europe/Berlin"),
        }
        assert!(t.in_zone("../etc/passwd").is_err());
        assert_eq!(t.in_zone("UTC").unwrap().format("15:04 MST"), "09:46 UTC");
    }
}
