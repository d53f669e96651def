//! The times Docker's `until` filter takes (the Docker CLI's
//! `timetypes.GetTimestamp`): a Go duration before now (`24h`, `1h30m`),
//! an RFC 3339 time or a shorter form of one (`2023-11-21`,
//! `2023-11-21T22`, `2023-11-21T22:20`, `2023-11-21T22:20:20`), or Unix
//! seconds (`1700000000`, `1700000000.5`). A time without a zone is read in
//! UTC (Docker reads it in the client's zone).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use imgstore_image::time::parse_rfc3339;

/// `value` as a point in time, `now` being the reference of durations;
/// `None` when it is none of the forms above.
pub(crate) fn parse_timestamp(value: &str, now: SystemTime) -> Option<SystemTime> {
    // Go's rule: "0" is a Unix time, not a duration.
    if value != "0"
        && let Some((negative, duration)) = parse_go_duration(value)
    {
        return if negative {
            now.checked_add(duration)
        } else {
            now.checked_sub(duration)
        };
    }
    if value.contains('-') {
        return parse_rfc3339(&complete_rfc3339(value));
    }
    parse_unix_seconds(value)
}

/// A shorter RFC 3339 form completed: missing time fields are zero, a
/// missing zone is UTC.
fn complete_rfc3339(value: &str) -> String {
    let (date, time) = value
        .split_once(['T', 't'])
        .map_or((value, None), |(date, time)| (date, Some(time)));
    let Some(time) = time else {
        return format!("{date}T00:00:00Z");
    };
    let zone_at = time.find(['Z', 'z', '+', '-']).unwrap_or(time.len());
    let (clock, zone) = time.split_at(zone_at);
    let zone = if zone.is_empty() { "Z" } else { zone };
    let clock = match clock.split(':').count() {
        1 => format!("{clock}:00:00"),
        2 => format!("{clock}:00"),
        _ => clock.to_owned(),
    };
    format!("{date}T{clock}{zone}")
}

/// `SECONDS[.FRACTION]` since the Unix epoch.
fn parse_unix_seconds(value: &str) -> Option<SystemTime> {
    let (seconds, fraction) = value.split_once('.').unwrap_or((value, ""));
    if seconds.is_empty() || !seconds.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: u64 = seconds.parse().ok()?;
    let mut nanos = 0u32;
    for position in 0..9 {
        let digit = fraction.as_bytes().get(position).map_or(0, |d| d - b'0');
        nanos = nanos * 10 + u32::from(digit);
    }
    UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
}

/// Go's `time.ParseDuration`: an optional sign, then one or more decimal
/// numbers each with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), e.g.
/// `1h30m`, `1.5h`; `(negative, magnitude)`.
fn parse_go_duration(value: &str) -> Option<(bool, Duration)> {
    let (negative, mut rest) = match value.as_bytes().first()? {
        b'-' => (true, &value[1..]),
        b'+' => (false, &value[1..]),
        _ => (false, value),
    };
    if rest == "0" {
        return Some((negative, Duration::ZERO));
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        if number.is_empty() || number == "." {
            return None;
        }
        let number: f64 = number.parse().ok()?;
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let nanos_per_unit = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number * nanos_per_unit;
        rest = after;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return None;
    }
    Some((negative, Duration::from_nanos(total as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> SystemTime {
        parse_rfc3339(rfc3339).expect("test time parses")
    }

    #[test]
    fn durations_count_back_from_now() {
        let now = at("2024-01-02T00:00:00Z");
        assert_eq!(
            parse_timestamp("24h", now),
            Some(at("2024-01-01T00:00:00Z"))
        );
        assert_eq!(
            parse_timestamp("1h30m", now),
            Some(at("2024-01-01T22:30:00Z"))
        );
        assert_eq!(
            parse_timestamp("1.5h", now),
            Some(at("2024-01-01T22:30:00Z"))
        );
        assert_eq!(
            parse_timestamp("90s", now),
            Some(at("2024-01-01T23:58:30Z"))
        );
        assert_eq!(
            parse_timestamp("-1h", now),
            Some(at("2024-01-02T01:00:00Z"))
        );
        assert_eq!(parse_timestamp("10d", now), None);
        assert_eq!(parse_timestamp("h", now), None);
    }

    #[test]
    fn times_take_dockers_shorter_forms_in_utc() {
        let now = at("2024-01-02T00:00:00Z");
        assert_eq!(
            parse_timestamp("2023-11-21", now),
            Some(at("2023-11-21T00:00:00Z"))
        );
        assert_eq!(
            parse_timestamp("2023-11-21T22", now),
            Some(at("2023-11-21T22:00:00Z"))
        );
        assert_eq!(
            parse_timestamp("2023-11-21T22:20", now),
            Some(at("2023-11-21T22:20:00Z"))
        );
        assert_eq!(
            parse_timestamp("2023-11-21T22:20:20", now),
            Some(at("2023-11-21T22:20:20Z"))
        );
        assert_eq!(
            parse_timestamp("2023-11-21T22:20:20.5+01:00", now),
            Some(at("2023-11-21T21:20:20.5Z"))
        );
        assert_eq!(parse_timestamp("2023-13-01", now), None);
    }

    #[test]
    fn unix_seconds_are_unix_seconds() {
        let now = at("2024-01-02T00:00:00Z");
        assert_eq!(parse_timestamp("0", now), Some(UNIX_EPOCH));
        assert_eq!(
            parse_timestamp("1700000000.5", now),
            Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_500))
        );
        assert_eq!(parse_timestamp("yesterday", now), None);
        assert_eq!(parse_timestamp("", now), None);
    }
}
