//! go-digest v1.0.0 `TestParseDigest` and the probe cases of PEER_SEMANTICS §1.

use imgstore_digest::{Algorithm, Digest, DigestError, FormatProblem};

const SHA384_HEX: &str = "d3fc7881460b7e22e3d172954463dddd7866d17597e7248453c48b3e9d26d9596bf9c4a9cf8072c9d5bad76e19af801d";

#[derive(Debug, PartialEq)]
enum Kind {
    Format,
    Length,
    Unsupported,
}

fn kind(input: &str) -> Kind {
    match Digest::parse(input) {
        Ok(d) => panic!("{input:?} parsed as {d}"),
        Err(DigestError::InvalidFormat { .. }) => Kind::Format,
        Err(DigestError::InvalidLength { .. }) => Kind::Length,
        Err(DigestError::Unsupported { .. }) => Kind::Unsupported,
        Err(other) => panic!("unexpected error kind {other:?}"),
    }
}

/// The round-trip contract every passing case satisfies (§1.1).
fn assert_round_trip(input: &str, algorithm: Algorithm, encoded: &str) {
    let d = Digest::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    assert_eq!(d.algorithm(), algorithm);
    assert_eq!(d.algorithm().as_str(), input.split(':').next().unwrap());
    assert_eq!(d.encoded(), encoded);
    let printed = d.to_string();
    assert_eq!(Digest::parse(&printed).unwrap(), d);
    assert_eq!(Digest::new(algorithm, encoded).unwrap(), d);
    assert_eq!(d.as_str(), input);
}

#[test]
fn valid_sha256_round_trips() {
    assert_round_trip(
        "sha256:e58fcf7418d4390dec8e8fb69d88c06ec07039d651fedd3aa72af9972e7d046b",
        Algorithm::Sha256,
        "e58fcf7418d4390dec8e8fb69d88c06ec07039d651fedd3aa72af9972e7d046b",
    );
}

#[test]
fn sha384_is_registered_as_in_v1_0_0() {
    assert_round_trip(
        &format!("sha384:{SHA384_HEX}"),
        Algorithm::Sha384,
        SHA384_HEX,
    );
}

#[test]
fn sha512_parses() {
    let hex = "c".repeat(128);
    assert_round_trip(&format!("sha512:{hex}"), Algorithm::Sha512, &hex);
}

#[test]
fn empty_and_blank_strings_are_invalid_format() {
    assert_eq!(kind(""), Kind::Format);
    assert_eq!(kind("     "), Kind::Format);
    assert_eq!(kind("sha256"), Kind::Format);
}

#[test]
fn empty_encoded_part_is_invalid_format() {
    assert_eq!(kind("sha256:"), Kind::Format);
    assert_eq!(kind("a:"), Kind::Format);
}

#[test]
fn right_length_of_spaces_is_invalid_format() {
    assert_eq!(kind(&format!("sha256:{}", " ".repeat(64))), Kind::Format);
}

#[test]
fn lone_colon_and_missing_algorithm_are_invalid_format() {
    assert_eq!(kind(":"), Kind::Format);
    assert_eq!(kind(":abc"), Kind::Format);
}

#[test]
fn bare_hex_is_invalid_format() {
    assert_eq!(kind("d41d8cd98f00b204e9800998ecf8427e"), Kind::Format);
}

#[test]
fn length_is_checked_before_charset() {
    assert_eq!(
        kind("sha256:d41d8cd98f00b204e9800m98ecf8427e"),
        Kind::Length
    );
}

#[test]
fn short_encoded_part_is_invalid_length() {
    assert_eq!(kind("sha256:abcdef0123456789"), Kind::Length);
    assert_eq!(
        kind("sha512:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"),
        Kind::Length
    );
}

#[test]
fn unknown_algorithm_with_valid_grammar_is_unsupported() {
    assert_eq!(
        kind("foo:d41d8cd98f00b204e9800998ecf8427e"),
        Kind::Unsupported
    );
    assert_eq!(
        kind(&format!("sha384.foo+bar:{SHA384_HEX}")),
        Kind::Unsupported
    );
    assert_eq!(
        kind(&format!("sha384_foo+bar:{SHA384_HEX}")),
        Kind::Unsupported
    );
    assert_eq!(
        kind("sha256+b64:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"),
        Kind::Unsupported
    );
}

#[test]
fn doubled_algorithm_separator_is_invalid_format() {
    assert_eq!(kind(&format!("sha384__foo+bar:{SHA384_HEX}")), Kind::Format);
}

#[test]
fn upper_case_hex_is_invalid_format() {
    assert_eq!(
        kind("sha256:E58FCF7418D4390DEC8E8FB69D88C06EC07039D651FEDD3AA72AF9972E7D046B"),
        Kind::Format
    );
}

#[test]
fn probe_cases_of_section_1_4() {
    let a = |n: usize| "a".repeat(n);
    let cases: Vec<(String, Kind)> = vec![
        (format!("sha256:{}", a(63)), Kind::Length),
        (format!("sha256:{}", a(65)), Kind::Length),
        (format!("sha256:{}g", a(63)), Kind::Format),
        (format!("SHA256:{}", a(64)), Kind::Format),
        (format!(" sha256:{}", a(64)), Kind::Format),
        (format!("sha256:{}\n", a(64)), Kind::Length),
        (format!("sha256::{}", a(63)), Kind::Format),
        (format!("sha256:{}:x", a(64)), Kind::Length),
        (format!("sha512:{}", a(64)), Kind::Length),
        (format!("blake3:{}", a(64)), Kind::Unsupported),
        ("sha256-foo:abc".into(), Kind::Unsupported),
        ("sha256+b64:abc=".into(), Kind::Unsupported),
        (":abc".into(), Kind::Format),
        ("a:b".into(), Kind::Unsupported),
        ("a:".into(), Kind::Format),
        ("foo:bar:baz".into(), Kind::Format),
        ("foo_:abc".into(), Kind::Format),
        ("-foo:abc".into(), Kind::Format),
        ("foo..bar:abc".into(), Kind::Format),
        ("Foo:abc".into(), Kind::Format),
        ("foo:ab c".into(), Kind::Format),
        ("foo:ab/c".into(), Kind::Format),
        ("foo:ab+c".into(), Kind::Format),
        ("foo:ab.c".into(), Kind::Format),
    ];
    for (input, expected) in cases {
        assert_eq!(kind(&input), expected, "{input:?}");
    }
}

#[test]
fn lengths_are_counted_in_bytes() {
    // 62 ASCII + one two-byte character = 64 bytes: the length passes, the charset fails.
    let input = format!("sha256:{}é", "a".repeat(62));
    assert_eq!(kind(&input), Kind::Format);
    // 63 characters but 64 bytes of which one is not hex.
    let input = format!("sha256:{}é", "a".repeat(61));
    assert_eq!(kind(&input), Kind::Length);
}

#[test]
fn validate_encoded_checks_length_first() {
    assert!(matches!(
        Algorithm::Sha256.validate_encoded("abc"),
        Err(DigestError::InvalidLength {
            expected: 64,
            actual: 3,
            ..
        })
    ));
    assert!(Algorithm::Sha256.validate_encoded(&"0".repeat(64)).is_ok());
}

#[test]
fn unknown_algorithm_name_is_unsupported() {
    assert!(matches!(
        "foo".parse::<Algorithm>(),
        Err(DigestError::Unsupported { .. })
    ));
}

#[test]
fn format_errors_name_the_broken_rule() {
    let problem = |s: &str| match Digest::parse(s) {
        Err(DigestError::InvalidFormat { problem, .. }) => problem,
        other => panic!("{s:?}: {other:?}"),
    };
    assert_eq!(problem(""), FormatProblem::NoSeparator);
    assert_eq!(problem(":"), FormatProblem::EmptyAlgorithm);
    assert_eq!(problem("sha256:"), FormatProblem::EmptyEncoded);
    assert_eq!(problem("Foo:abc"), FormatProblem::Grammar);
    assert_eq!(
        problem(&format!("sha256:{}", "A".repeat(64))),
        FormatProblem::NotLowerHex
    );
}

#[test]
fn error_messages_name_the_input_and_stay_bounded() {
    let long = format!("sha256:{}", "z".repeat(10_000));
    let message = Digest::parse(&long).unwrap_err().to_string();
    assert!(
        message.contains("invalid checksum digest length"),
        "{message}"
    );
    assert!(message.len() < 400, "{} bytes", message.len());
    let message = Digest::parse("bean:0123456789abcdef")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("unsupported digest algorithm"),
        "{message}"
    );
    assert!(message.contains("bean"), "{message}");
}
