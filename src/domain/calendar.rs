//! The calendar of billing and reconciliation: which day an event belongs to.
//!
//! Days are those of a fixed offset from UTC (`[billing] utc_offset`, default UTC). Merchants in mainland China
//! reconcile by Beijing days (`+08:00`); China has no daylight saving time, so a fixed offset is exact there.
//! A record keeps the day it was written with: changing the offset later does not move existing records.

const DAY: i64 = 86_400;
/// The largest offset any time zone uses (UTC+14:00, Kiribati; UTC−12:00 is the lowest).
const MAX_OFFSET: i64 = 14 * 3600;

/// Days of a fixed offset from UTC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Calendar {
    offset_secs: i64,
}

impl Calendar {
    /// Days of UTC.
    pub const UTC: Calendar = Calendar { offset_secs: 0 };

    /// `+08:00`, `-05:30`, `+0800`, `+08`, `Z` or `UTC`; offsets beyond ±14:00 or with seconds are refused.
    pub fn parse(s: &str) -> Option<Calendar> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") {
            return Some(Calendar::UTC);
        }
        let (sign, rest) = match s.as_bytes().first()? {
            b'+' => (1, &s[1..]),
            b'-' => (-1, &s[1..]),
            _ => return None,
        };
        if !rest.is_ascii() {
            return None;
        }
        let (h, m) = match (rest.len(), rest.split_once(':')) {
            (_, Some((h, m))) => (h, m),
            (4, None) => rest.split_at(2),
            (2, None) => (rest, "00"),
            _ => return None,
        };
        if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
        if m >= 60 {
            return None;
        }
        let offset_secs = sign * (h * 3600 + m * 60);
        (-MAX_OFFSET..=MAX_OFFSET)
            .contains(&offset_secs)
            .then_some(Calendar { offset_secs })
    }

    /// Seconds east of UTC.
    pub fn offset_secs(&self) -> i64 {
        self.offset_secs
    }

    /// `UTC` or `UTC+08:00`, for people.
    pub fn label(&self) -> String {
        if self.offset_secs == 0 {
            return "UTC".into();
        }
        let sign = if self.offset_secs < 0 { '-' } else { '+' };
        let a = self.offset_secs.abs();
        format!("UTC{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
    }

    /// The number of the day (since 1970-01-01 of this calendar) Unix time `t` falls on.
    pub fn day_number(&self, t: i64) -> i64 {
        t.saturating_add(self.offset_secs).div_euclid(DAY)
    }

    /// The Unix time day number `day` begins at.
    pub fn start_of_number(&self, day: i64) -> i64 {
        day.saturating_mul(DAY).saturating_sub(self.offset_secs)
    }

    /// The day Unix time `t` falls on, `YYYY-MM-DD`.
    pub fn day_of(&self, t: i64) -> String {
        day_name(self.day_number(t))
    }

    /// The Unix time a `YYYY-MM-DD` day begins at; `None` when it is not a day.
    pub fn start_of(&self, day: &str) -> Option<i64> {
        let d = chrono::NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d").ok()?;
        let n = d
            .signed_duration_since(chrono::NaiveDate::default())
            .num_days();
        Some(self.start_of_number(n))
    }

    /// SQL for the day number of the Unix-time column `column` (portable integer arithmetic; times before 1970
    /// never occur in the tables).
    pub fn day_number_sql(&self, column: &str) -> String {
        format!("({column} + {}) / {DAY}", self.offset_secs)
    }
}

impl<'de> serde::Deserialize<'de> for Calendar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Calendar::parse(&s).ok_or_else(|| serde::de::Error::custom(OFFSET_EXPECTED))
    }
}

/// What an offset must look like, for error messages.
pub const OFFSET_EXPECTED: &str =
    "expected a UTC offset such as `+08:00`, `-05:30` or `UTC`, within ±14:00";

/// `YYYY-MM-DD` of day number `n` since 1970-01-01.
pub fn day_name(n: i64) -> String {
    chrono::NaiveDate::default()
        .checked_add_signed(chrono::TimeDelta::try_days(n).unwrap_or_default())
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-03T16:30:00Z.
    const T: i64 = 1_796_315_400;

    #[test]
    fn offsets_parse_in_their_usual_spellings() {
        let east8 = Some(Calendar {
            offset_secs: 8 * 3600,
        });
        assert_eq!(Calendar::parse("+08:00"), east8);
        assert_eq!(Calendar::parse(" +0800 "), east8);
        assert_eq!(Calendar::parse("+08"), east8);
        assert_eq!(Calendar::parse("Z"), Some(Calendar::UTC));
        assert_eq!(Calendar::parse("utc"), Some(Calendar::UTC));
        assert_eq!(Calendar::parse("-00:00"), Some(Calendar::UTC));
        assert_eq!(
            Calendar::parse("-05:30").map(|c| c.offset_secs()),
            Some(-(5 * 3600 + 1800))
        );
        assert_eq!(
            Calendar::parse("+14:00").map(|c| c.offset_secs()),
            Some(14 * 3600)
        );
        for bad in [
            "",
            "8",
            "08:00",
            "+8:00",
            "+08:60",
            "+15:00",
            "-14:30",
            "+08:00:00",
            "+0８:00",
            "+",
            "Asia/Shanghai",
            "+08:0",
            "++8:00",
            "+0８",
            "+\u{665}\u{665}",
        ] {
            assert_eq!(Calendar::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn days_follow_the_offset() {
        assert_eq!(Calendar::UTC.day_of(T), "2026-12-03");
        let beijing = Calendar::parse("+08:00").unwrap();
        assert_eq!(beijing.day_of(T), "2026-12-04");
        assert_eq!(beijing.day_of(T - 30 * 60 - 1), "2026-12-03");
        assert_eq!(beijing.day_of(T - 30 * 60), "2026-12-04");
        let west = Calendar::parse("-05:00").unwrap();
        assert_eq!(west.day_of(T), "2026-12-03");
        assert_eq!(west.day_of(T - 16 * 3600), "2026-12-02");
        assert_eq!(beijing.label(), "UTC+08:00");
        assert_eq!(Calendar::parse("-05:30").unwrap().label(), "UTC-05:30");
        assert_eq!(Calendar::UTC.label(), "UTC");
    }

    #[test]
    fn a_day_starts_where_its_first_second_is() {
        for cal in
            ["+08:00", "Z", "-05:30", "+14:00", "-12:00"].map(|s| Calendar::parse(s).unwrap())
        {
            for t in [T, T + 1, 0, 86_399, 1_000_000_007] {
                let day = cal.day_of(t);
                let start = cal.start_of(&day).unwrap();
                assert!(start <= t && t < start + DAY, "{cal:?} {t}");
                assert_eq!(cal.day_of(start), day);
                assert_eq!(cal.day_of(start - 1), day_name(cal.day_number(t) - 1));
                assert_eq!(cal.start_of_number(cal.day_number(t)), start);
            }
        }
        assert_eq!(Calendar::UTC.start_of("2026-02-30"), None);
        assert_eq!(Calendar::UTC.start_of("1970-01-02"), Some(DAY));
        assert_eq!(
            Calendar::parse("+08:00").unwrap().start_of("2026-12-04"),
            Some(T - 30 * 60)
        );
    }

    #[test]
    fn sql_day_numbers_match_the_rust_ones() {
        let cal = Calendar::parse("+08:00").unwrap();
        assert_eq!(
            cal.day_number_sql("created_at"),
            "(created_at + 28800) / 86400"
        );
        assert_eq!((T + 28_800) / DAY, cal.day_number(T));
        assert_eq!(
            Calendar::parse("-05:00").unwrap().day_number_sql("t"),
            "(t + -18000) / 86400"
        );
    }

    #[test]
    fn extreme_times_do_not_panic() {
        for cal in [
            Calendar::UTC,
            Calendar::parse("+14:00").unwrap(),
            Calendar::parse("-12:00").unwrap(),
        ] {
            for t in [i64::MIN, i64::MAX, -1] {
                let _ = cal.day_of(t);
                let _ = cal.start_of_number(cal.day_number(t));
            }
        }
    }
}
