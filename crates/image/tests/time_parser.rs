//! The timestamp parser is total: stored configs and metadata reach it
//! with any bytes, and a bad value must read as "unknown", never panic.

use imgstore_image::time::{format_rfc3339_nanos, parse_rfc3339};
use proptest::prelude::*;
use std::time::{Duration, UNIX_EPOCH};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn any_string_parses_or_is_none(s in any::<String>()) {
        let _ = parse_rfc3339(&s);
    }

    /// Valid timestamps with one character swapped for arbitrary
    /// (often multibyte) text: the shapes most likely to reach a
    /// boundary check.
    #[test]
    fn a_timestamp_with_any_splice_parses_or_is_none(
        at in 0usize..32,
        len in 0usize..4,
        splice in "\\PC{0,3}",
        base in prop::sample::select(vec![
            "2024-01-01T00:00:00+01:00",
            "2024-01-01T00:00:00.123456789Z",
            "2024-01-01T00:00:00.5-10:30",
        ]),
    ) {
        let at = at.min(base.len());
        let end = (at + len).min(base.len());
        let spliced = format!("{}{}{}", &base[..at], splice, &base[end..]);
        let _ = parse_rfc3339(&spliced);
    }

    #[test]
    fn what_is_formatted_parses_back(secs in 0u64..253_402_300_799, nanos in 0u32..1_000_000_000) {
        let time = UNIX_EPOCH + Duration::new(secs, nanos);
        prop_assert_eq!(parse_rfc3339(&format_rfc3339_nanos(time)), Some(time));
    }
}

#[test]
fn a_multibyte_character_in_the_offset_reads_as_unknown() {
    assert_eq!(parse_rfc3339("2024-01-01T00:00:00+0é00"), None);
}
