//! Docker's human formats: sizes (go-units `HumanSizeWithPrecision`),
//! durations (`HumanDuration`), the tab-aligned tables of the Docker CLI
//! and its ellipsis.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use imgstore::image::time::{format_rfc3339_nanos, parse_rfc3339};

/// go-units' `HumanSizeWithPrecision(size, 3)`, as `docker images` prints
/// SIZE: decimal units, three significant digits (`82B`, `2.5kB`, `1.23MB`).
pub fn human_size(bytes: u64) -> String {
    human_size_precision(bytes, 3)
}

/// go-units' `HumanSizeWithPrecision(size, precision)`; `docker system
/// df`'s table prints its totals with `HumanSize`, precision 4 (`2.053kB`).
pub fn human_size_precision(bytes: u64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", go_format_g(size, precision), UNITS[unit])
}

/// Go's `%.{precision}g` for a non-negative finite number: `precision`
/// significant digits, trailing zeros dropped, exponent form when the
/// exponent is below -4 or at least `precision` (`1e+03`).
fn go_format_g(value: f64, precision: usize) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let precision = precision.max(1);
    // One correctly rounded formatting gives the significant digits and the
    // exponent; both of Go's forms are written from them.
    let scientific = format!("{:.*e}", precision - 1, value);
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return scientific;
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let trim = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    if exponent < -4 || exponent >= precision as i32 {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa.to_owned()), exponent.abs())
    } else if exponent < 0 {
        let zeros = "0".repeat(exponent.unsigned_abs() as usize - 1);
        trim(format!("0.{zeros}{digits}"))
    } else {
        let (whole, fraction) = digits.split_at((exponent as usize + 1).min(digits.len()));
        trim(format!("{whole}.{fraction}"))
    }
}

/// go-units' `HumanDuration`: `Less than a second`, `About a minute`,
/// `5 days`, `3 years`, ...
pub fn human_duration(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    let secs = seconds as u64;
    let minutes = (seconds / 60.0) as u64;
    let hours = (seconds / 3600.0 + 0.5) as u64;
    if secs < 1 {
        "Less than a second".to_owned()
    } else if secs == 1 {
        "1 second".to_owned()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if minutes == 1 {
        "About a minute".to_owned()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".to_owned()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", (seconds / 3600.0) as u64 / 24 / 365)
    }
}

/// `N days ago` for an RFC 3339 time, as Docker's CREATED column; `N/A`
/// when the time is unset or unreadable.
pub fn created_since(created: Option<&str>, now: SystemTime) -> String {
    match created.and_then(parse_rfc3339) {
        Some(time) => format!(
            "{} ago",
            human_duration(now.duration_since(time).unwrap_or_default())
        ),
        None => "N/A".to_owned(),
    }
}

/// A config's `created` at whole seconds as Go's `time.RFC3339` writes
/// it in UTC, as `docker history` prints CreatedAt
/// (`2023-11-21T22:20:20Z`); the epoch when unset or unreadable.
pub fn go_rfc3339(created: Option<&str>) -> String {
    format!("{}Z", whole_seconds_utc(created))
}

/// Go's `time.Time.String()` of a config's `created` at whole seconds, in
/// UTC, as `docker images` prints CreatedAt (`2023-11-21 22:21:20 +0000
/// UTC`); the epoch when unset or unreadable (Docker's `Created` is 0).
pub fn go_time_string(created: Option<&str>) -> String {
    format!(
        "{} +0000 UTC",
        whole_seconds_utc(created).replacen('T', " ", 1)
    )
}

/// `YYYY-MM-DDTHH:MM:SS` of a config's `created` in UTC, the fraction cut
/// (Go truncates to the second); the epoch when unset or unreadable.
fn whole_seconds_utc(created: Option<&str>) -> String {
    let time = created.and_then(parse_rfc3339).unwrap_or(UNIX_EPOCH);
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let rfc3339 = format_rfc3339_nanos(UNIX_EPOCH + Duration::from_secs(seconds));
    // `YYYY-MM-DDTHH:MM:SS` of `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
    match rfc3339.split_once('.') {
        Some((date_time, _)) => date_time.to_owned(),
        None => rfc3339,
    }
}

/// The Docker CLI's `Ellipsis`: at most `max` characters, the last one `…`
/// when cut.
pub fn ellipsis(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A table as the Docker CLI prints one (Go's tabwriter with minimum width
/// 10 and padding 3): every column but the last padded to its widest cell
/// plus 3; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths = vec![0usize; columns];
    let all = || {
        std::iter::once(header.to_vec()).chain(
            rows.iter()
                .map(|row| row.iter().map(String::as_str).collect()),
        )
    };
    for row in all() {
        for (column, cell) in row.iter().enumerate().take(columns) {
            widths[column] = widths[column].max((cell.chars().count() + 3).max(10));
        }
    }
    let mut out = String::new();
    let mut line = String::new();
    for row in all() {
        line.clear();
        for (column, cell) in row.iter().enumerate().take(columns) {
            line.push_str(cell);
            if column + 1 < columns {
                let pad = widths[column] - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        // Cells before the last are padded even when the last is empty, as
        // tabwriter does (`docker history`'s empty COMMENT).
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_docker_prints_them() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(82), "82B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(2500), "2.5kB");
        assert_eq!(human_size(3361), "3.36kB");
        assert_eq!(human_size(7_130_000), "7.13MB");
        assert_eq!(human_size(999_999), "1e+03kB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(human_size_precision(2053, 4), "2.053kB");
        assert_eq!(human_size_precision(125, 4), "125B");
    }

    /// `%.*g` written the plain way: a second formatting in fixed form.
    fn two_pass_g(value: f64, precision: usize) -> String {
        if value == 0.0 {
            return "0".to_owned();
        }
        let scientific = format!("{:.*e}", precision - 1, value);
        let (mantissa, exponent) = scientific.split_once('e').expect("scientific form");
        let exponent: i32 = exponent.parse().expect("exponent");
        let trim = |s: &str| -> String {
            if s.contains('.') {
                s.trim_end_matches('0').trim_end_matches('.').to_owned()
            } else {
                s.to_owned()
            }
        };
        if exponent < -4 || exponent >= precision as i32 {
            let sign = if exponent < 0 { '-' } else { '+' };
            format!("{}e{sign}{:02}", trim(mantissa), exponent.abs())
        } else {
            let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
            trim(&format!("{value:.decimals$}"))
        }
    }

    #[test]
    fn one_pass_g_agrees_with_two_passes_everywhere_sizes_land() {
        let mut value = 1u64;
        let mut checked = 0;
        while value < 1 << 60 {
            for bytes in [value, value + 1, value / 2 * 3 + 1, value / 1000 * 999 + 1] {
                let size = bytes as f64 / 1000f64.powi((bytes as f64).log(1000.0).floor() as i32);
                assert_eq!(go_format_g(size, 3), two_pass_g(size, 3), "{bytes}");
                checked += 1;
            }
            value = value * 7 / 5 + 1;
        }
        for bytes in (0..2_000_000u64).step_by(97) {
            let size = bytes as f64 / 1000.0;
            assert_eq!(go_format_g(size, 3), two_pass_g(size, 3), "{bytes}");
        }
        for value in [0.00012345, 0.0012345, 0.5, 9.995, 99.95, 999.5, 0.000012] {
            for precision in 1..6 {
                assert_eq!(go_format_g(value, precision), two_pass_g(value, precision));
            }
        }
        assert!(checked > 100);
    }

    #[test]
    fn durations_read_as_docker_prints_them() {
        let d = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(d(1)), "1 second");
        assert_eq!(human_duration(d(59)), "59 seconds");
        assert_eq!(human_duration(d(60)), "About a minute");
        assert_eq!(human_duration(d(45 * 60)), "45 minutes");
        assert_eq!(human_duration(d(90 * 60)), "2 hours");
        assert_eq!(human_duration(d(5 * 86_400)), "5 days");
        assert_eq!(human_duration(d(20 * 86_400)), "2 weeks");
        assert_eq!(human_duration(d(100 * 86_400)), "3 months");
        assert_eq!(human_duration(d(3 * 365 * 86_400 + 7 * 86_400)), "3 years");
    }

    #[test]
    fn go_rfc3339_is_to_the_second_in_utc() {
        assert_eq!(
            go_rfc3339(Some("2023-11-21T22:20:20.123456789Z")),
            "2023-11-21T22:20:20Z"
        );
        assert_eq!(
            go_rfc3339(Some("2024-02-29T01:02:03+02:00")),
            "2024-02-28T23:02:03Z"
        );
        assert_eq!(
            go_rfc3339(Some("2000-03-01T00:00:00Z")),
            "2000-03-01T00:00:00Z"
        );
        assert_eq!(go_rfc3339(None), "1970-01-01T00:00:00Z");
        assert_eq!(go_rfc3339(Some("yesterday")), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn tables_align_like_tabwriter() {
        let out = table(
            &["REPOSITORY", "TAG", "SIZE"],
            &[vec!["a".into(), "v1".into(), "82B".into()]],
        );
        assert_eq!(
            out,
            "REPOSITORY   TAG       SIZE\na            v1        82B\n"
        );
        assert_eq!(ellipsis("abcdef", 4), "abc…");
    }

    #[test]
    fn times_read_as_go_prints_them() {
        assert_eq!(
            go_time_string(Some("2023-11-21T22:21:20.5+01:00")),
            "2023-11-21 21:21:20 +0000 UTC"
        );
        assert_eq!(go_time_string(None), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_rfc3339(Some("2023-11-21T22:20:20.9Z")),
            "2023-11-21T22:20:20Z"
        );
        assert_eq!(
            go_time_string(Some("junk")),
            "1970-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(ellipsis("abc", 4), "abc");
    }
}
