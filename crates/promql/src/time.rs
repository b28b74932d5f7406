//! Civil (UTC) calendar fields from Unix seconds, for the date functions.

/// Year, month (1-12), day (1-31) of a day count since 1970-01-01.
fn civil(days: i64) -> (i64, u32, u32) {
    // shift the era to start in March so leap days fall at the year's end
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub(crate) fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
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
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil(days);
    let mut yday = day;
    for m in 1..month {
        yday += days_in_month(year, m);
    }
    Civil {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        minute: ((rem % 3600) / 60) as u32,
        // 1970-01-01 was a Thursday
        weekday: (days + 4).rem_euclid(7) as u32,
        yday,
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
}
