//! Civil (UTC) calendar fields from Unix seconds, for the date functions.
//!
//! The arithmetic follows Go's `time` package step for step, including its
//! unsigned wrap-around: Prometheus turns NaN, ±Inf and huge values into
//! `int64::MIN` seconds, and Go then answers from an "absolute" clock that
//! starts in year -292277022399, so those answers are part of the API.

const SECS_PER_DAY: u64 = 86_400;
const DAYS_PER_400Y: u64 = 365 * 400 + 97;
const DAYS_PER_100Y: u64 = 365 * 100 + 24;
const DAYS_PER_4Y: u64 = 365 * 4 + 1;
/// Go's absolute clock starts on January 1 of this year (a multiple of 400
/// years before year 1, so cycles line up).
const ABSOLUTE_ZERO_YEAR: i64 = -292_277_022_399;
/// Seconds from that start to the Unix epoch.
const UNIX_TO_ABSOLUTE: u64 = 9_223_372_028_715_321_600;
/// Days before each month in a non-leap year, and the year's length.
const DAYS_BEFORE: [u32; 13] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Year, month (1-12), day (1-31) and zero-based day of the year of a time
/// on the absolute clock.
fn abs_date(abs: u64) -> (i64, u32, u32, u32) {
    let mut d = abs / SECS_PER_DAY;
    let mut y = 400 * (d / DAYS_PER_400Y);
    d %= DAYS_PER_400Y;
    // the last year of a 100- or 4-year cycle is a day longer, which makes
    // its last day count as the next cycle: take that back
    let mut n = d / DAYS_PER_100Y;
    n -= n >> 2;
    y += 100 * n;
    d -= DAYS_PER_100Y * n;
    n = d / DAYS_PER_4Y;
    y += 4 * n;
    d -= DAYS_PER_4Y * n;
    n = d / 365;
    n -= n >> 2;
    y += n;
    d -= 365 * n;
    // y < 2^64 / (86400 * 365), so it fits
    let year = y as i64 + ABSOLUTE_ZERO_YEAR;
    let yday = d as u32;
    let mut day = yday;
    if is_leap(year) {
        if day == 31 + 28 {
            return (year, 2, 29, yday);
        }
        if day > 31 + 28 {
            day -= 1;
        }
    }
    // every month has at most 31 days, so day / 31 is the month or the one
    // before it
    let mut month = (day / 31) as usize;
    let begin = if day >= DAYS_BEFORE[month + 1] {
        month += 1;
        DAYS_BEFORE[month]
    } else {
        DAYS_BEFORE[month]
    };
    (year, month as u32 + 1, day - begin + 1, yday)
}

/// Number of days in a month, computed as Go's
/// `32 - time.Date(year, month, 32, ...).Day()` (which wraps around at the
/// end of Go's calendar like everything else).
pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    let mut y = year.wrapping_sub(ABSOLUTE_ZERO_YEAR) as u64;
    let mut d = DAYS_PER_400Y.wrapping_mul(y / 400);
    y %= 400;
    d = d.wrapping_add(DAYS_PER_100Y * (y / 100));
    y %= 100;
    d = d.wrapping_add(DAYS_PER_4Y * (y / 4));
    d = d.wrapping_add(365 * (y % 4));
    let m = month.clamp(1, 12) as usize;
    d = d.wrapping_add(u64::from(DAYS_BEFORE[m - 1]));
    if is_leap(year) && m >= 3 {
        d = d.wrapping_add(1);
    }
    // day 32 of the month
    d = d.wrapping_add(31);
    let (_, _, day, _) = abs_date(d.wrapping_mul(SECS_PER_DAY));
    32 - day
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    /// 0 = Sunday
    pub weekday: u32,
    /// 1-366
    pub yday: u32,
}

pub(crate) fn civil_from_unix(secs: i64) -> Civil {
    // two's complement reinterpretation, as Go's uint64(int64) conversion
    let abs = (secs as u64).wrapping_add(UNIX_TO_ABSOLUTE);
    let (year, month, day, yday) = abs_date(abs);
    Civil {
        year,
        month,
        day,
        hour: ((abs % SECS_PER_DAY) / 3600) as u32,
        minute: ((abs % 3600) / 60) as u32,
        // the absolute clock starts on a Monday
        weekday: ((abs.wrapping_add(SECS_PER_DAY) % (7 * SECS_PER_DAY)) / SECS_PER_DAY) as u32,
        yday: yday + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        let c = civil_from_unix(0);
        assert_eq!(
            (c.year, c.month, c.day, c.weekday, c.yday),
            (1970, 1, 1, 4, 1)
        );
        // 2024-02-29T13:45:00Z, a Thursday, day 60
        let c = civil_from_unix(1_709_214_300);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute),
            (2024, 2, 29, 13, 45)
        );
        assert_eq!((c.weekday, c.yday), (4, 60));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28);
        // before the epoch: 1969-12-31T23:59:59Z, a Wednesday
        let c = civil_from_unix(-1);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.weekday),
            (1969, 12, 31, 23, 3)
        );
    }

    #[test]
    fn go_wraparound_at_the_ends_of_its_calendar() {
        // what Prometheus 2.42 (amd64) answers for NaN, ±Inf and |v| >= 2^63,
        // which it turns into int64::MIN seconds
        let c = civil_from_unix(i64::MIN);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.weekday, c.yday),
            (292_277_026_596, 12, 4, 15, 30, 0, 339)
        );
        assert_eq!(days_in_month(c.year, c.month), 31);
        let c = civil_from_unix(-9_200_000_000_000_000_000);
        assert_eq!((c.year, c.month, c.weekday), (-291_536_392_293, 5, 2));
        // 1 BC is a leap year in the proleptic calendar Go uses
        assert_eq!(days_in_month(0, 2), 29);
        assert_eq!(days_in_month(-100, 2), 28);
    }
}
