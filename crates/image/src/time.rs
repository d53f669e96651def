//! RFC 3339 timestamps with nanoseconds, as moby stores `lastUpdated` and
//! image configs write `created`: the one parser and formatter the store
//! and the facade's views use.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats `t` as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (UTC). Times before 1970
/// are clamped to the epoch.
pub fn format_rfc3339_nanos(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_nanos()
    )
}

/// Parses what [`format_rfc3339_nanos`] writes, plus offsets (`+02:00`) and any
/// number of fraction digits (beyond nine they are truncated), as Go's
/// `time.RFC3339Nano` accepts. Total: any other input, including
/// multibyte characters anywhere, a day past the month's end or a time
/// before 1970, is `None` ("unknown"), never a panic.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    // Works on bytes only: every field is ASCII, so no index can fall
    // inside a multibyte character.
    let mut cursor = Cursor(s.as_bytes());
    let year = cursor.number(4)?;
    cursor.literal(b"-")?;
    let month = cursor.number(2)?;
    cursor.literal(b"-")?;
    let day = cursor.number(2)?;
    cursor.literal(b"Tt")?;
    let hour = cursor.number(2)?;
    cursor.literal(b":")?;
    let minute = cursor.number(2)?;
    cursor.literal(b":")?;
    let second = cursor.number(2)?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut nanos = 0u64;
    if cursor.literal(b".").is_some() {
        let digits = cursor.digits();
        if digits.is_empty() {
            return None;
        }
        for position in 0..9 {
            let digit = digits.get(position).map_or(0, |d| u64::from(d - b'0'));
            nanos = nanos * 10 + digit;
        }
    }
    let offset_secs: i64 = if cursor.literal(b"Zz").is_some() {
        0
    } else {
        let sign = match cursor.literal(b"+-")? {
            b'+' => 1,
            _ => -1,
        };
        let offset_hours = cursor.number(2)?;
        cursor.literal(b":")?;
        let offset_minutes = cursor.number(2)?;
        if offset_hours > 23 || offset_minutes > 59 {
            return None;
        }
        sign * (offset_hours * 3600 + offset_minutes * 60) as i64
    };
    if !cursor.0.is_empty() {
        return None;
    }
    let days = days_from_civil(year as i64, month as u32, day as u32);
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, u32::try_from(nanos).ok()?))
}

/// The unread rest of a timestamp, read field by field.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    /// Exactly `width` ASCII digits as a number.
    fn number(&mut self, width: usize) -> Option<u64> {
        let field = self.0.get(..width)?;
        let mut value = 0u64;
        for &byte in field {
            if !byte.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u64::from(byte - b'0');
        }
        self.0 = &self.0[width..];
        Some(value)
    }

    /// One byte that is any of `allowed`, returned.
    fn literal(&mut self, allowed: &[u8]) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        if !allowed.contains(&first) {
            return None;
        }
        self.0 = rest;
        Some(first)
    }

    /// The run of ASCII digits that starts here (maybe empty).
    fn digits(&mut self) -> &'a [u8] {
        let count = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        let (digits, rest) = self.0.split_at(count);
        self.0 = rest;
        digits
    }
}

/// Days in `month` (1-12) of `year`, proleptic Gregorian.
fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
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

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_nanoseconds() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let s = format_rfc3339_nanos(t);
        assert_eq!(s, "2023-11-14T22:13:20.123456789Z");
        assert_eq!(parse_rfc3339(&s), Some(t));
    }

    #[test]
    fn parses_offsets_and_short_fractions() {
        let t = parse_rfc3339("2023-11-14T23:13:20.5+01:00").unwrap();
        assert_eq!(t, UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000));
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z")
                .map(format_rfc3339_nanos)
                .as_deref(),
            Some("2000-02-29T00:00:00.000000000Z")
        );
    }

    #[test]
    fn keeps_nine_fraction_digits_of_more_as_go_does() {
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.1234567891234Z"),
            Some(UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789))
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00-00:30"),
            Some(UNIX_EPOCH + Duration::from_secs(1_709_166_600))
        );
    }

    #[test]
    fn refuses_garbage() {
        for s in [
            "",
            "2023-13-01T00:00:00Z",
            "2023-11-14 22:13:20Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20.Z",
            "2024-01-01T00:00:00+0é00",
            "2024-01-01T00:00:00é",
            "2024-01-01T00:00:00.5é",
            "é24-01-01T00:00:00Z",
            "+024-01-01T00:00:00Z",
            "2024-01-01T00:00:00+01:00x",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00+01:60",
            "2024-01-01T00:00:60Z",
            "2023-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s}");
        }
    }
}
