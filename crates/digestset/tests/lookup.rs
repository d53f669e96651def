//! Lookup on sets of one algorithm: go-digest's TestLookup (§2.1) and the
//! probed edge cases (§2.7). Mixed algorithms are in `mixed_algorithms.rs`.

mod common;

use common::{GoSet, LOOKUP_HEADS, Outcome, lookup_set, outcome, set_of, sha256};
use imgstore_digest::Algorithm;
use imgstore_digestset::{DigestSet, LookupError};

fn look(set: &DigestSet, query: &str) -> Outcome {
    outcome(set.lookup(query))
}

fn found(head: &str) -> Outcome {
    Outcome::Found(sha256(head))
}

// §2.1 TestLookup

#[test]
fn lookup_bare_prefix_found() {
    assert_eq!(look(&lookup_set(), "54"), found("54321"));
}

#[test]
fn lookup_bare_prefix_ambiguous() {
    assert!(matches!(
        lookup_set().lookup("1234"),
        Err(LookupError::Ambiguous { .. })
    ));
}

#[test]
fn lookup_bare_prefix_not_found() {
    assert!(matches!(
        lookup_set().lookup("9876"),
        Err(LookupError::NotFound { .. })
    ));
}

#[test]
fn lookup_qualified_prefix_ambiguous() {
    assert_eq!(look(&lookup_set(), "sha256:1234"), Outcome::Ambiguous);
}

#[test]
fn lookup_qualified_prefix_found() {
    assert_eq!(look(&lookup_set(), "sha256:12345"), found("12345"));
    assert_eq!(look(&lookup_set(), "sha256:12346"), found("12346"));
}

#[test]
fn lookup_bare_prefix_found_among_close_neighbours() {
    assert_eq!(look(&lookup_set(), "12346"), found("12346"));
    assert_eq!(look(&lookup_set(), "12345"), found("12345"));
}

// §2.7 probes on the 8-entry set

#[test]
fn lookup_probe_prefixes_ambiguous() {
    for query in ["12", "123", "1234", "6", "65", "654", "sha256:6"] {
        assert_eq!(look(&lookup_set(), query), Outcome::Ambiguous, "{query}");
    }
}

#[test]
fn lookup_probe_prefixes_found() {
    let cases = [
        ("5", "54321"),
        ("54", "54321"),
        ("64", "64321"),
        ("653", "65321"),
        ("6542", "65421"),
        ("6543", "65431"),
        ("12341", "12341"),
        ("sha256:54", "54321"),
    ];
    for (query, head) in cases {
        assert_eq!(look(&lookup_set(), query), found(head), "{query}");
    }
}

#[test]
fn lookup_agrees_with_go_on_the_8_entry_set() {
    let go = GoSet::new(&LOOKUP_HEADS.map(sha256));
    let set = lookup_set();
    for query in [
        "",
        "1",
        "12",
        "1234",
        "12341",
        "5",
        "6",
        "65",
        "654",
        "6543",
        "9",
        "sha256:6",
        "sha256:65431",
    ] {
        assert_eq!(look(&set, query), go.lookup(query), "{query}");
    }
}

#[test]
fn lookup_empty_query_on_larger_set_is_ambiguous() {
    assert_eq!(look(&lookup_set(), ""), Outcome::Ambiguous);
}

// §2.7 empty set

#[test]
fn lookup_on_empty_set_not_found() {
    let set = DigestSet::new();
    for query in ["", "1", "sha256:1", sha256("1").as_str(), "sha256", "foo:1"] {
        assert_eq!(look(&set, query), Outcome::NotFound, "{query:?}");
    }
}

// §2.7 probes on the single-entry set {sha256:12341…}

fn single() -> DigestSet {
    set_of(&[sha256("12341")])
}

#[test]
fn lookup_empty_query_on_single_entry_set_returns_it() {
    assert_eq!(look(&single(), ""), found("12341"));
}

#[test]
fn lookup_single_digit_prefix_found() {
    assert_eq!(look(&single(), "1"), found("12341"));
}

#[test]
fn lookup_qualified_single_digit_prefix_found() {
    assert_eq!(look(&single(), "sha256:1"), found("12341"));
}

#[test]
fn lookup_full_bare_hex_found() {
    assert_eq!(look(&single(), sha256("12341").encoded()), found("12341"));
}

#[test]
fn lookup_full_digest_found() {
    assert_eq!(look(&single(), sha256("12341").as_str()), found("12341"));
}

#[test]
fn lookup_algorithm_and_colon_only_not_found() {
    assert_eq!(look(&single(), "sha256:"), Outcome::NotFound);
}

#[test]
fn lookup_algorithm_name_only_not_found() {
    assert_eq!(look(&single(), "sha256"), Outcome::NotFound);
}

#[test]
fn lookup_other_algorithm_prefix_not_found() {
    assert_eq!(look(&single(), "sha512:1"), Outcome::NotFound);
}

#[test]
fn lookup_is_case_sensitive() {
    assert_eq!(look(&single(), "SHA256:1234"), Outcome::NotFound);
    let mut set = DigestSet::new();
    set.add(&common::filled(Algorithm::Sha256, "abc", 'd'));
    assert_eq!(look(&set, "ABC"), Outcome::NotFound);
    assert_eq!(look(&set, "sha256:ABC"), Outcome::NotFound);
}

#[test]
fn lookup_65_hex_digits_not_found() {
    let query = format!("{}1", sha256("12341").encoded());
    assert_eq!(look(&single(), &query), Outcome::NotFound);
}

#[test]
fn lookup_full_digest_with_extra_char_not_found() {
    let query = format!("{}1", sha256("12341"));
    assert_eq!(look(&single(), &query), Outcome::NotFound);
}

#[test]
fn lookup_qualified_prefix_not_matching_not_found() {
    assert_eq!(look(&single(), "sha256:111"), Outcome::NotFound);
}

#[test]
fn lookup_unsupported_algorithm_not_found() {
    assert_eq!(look(&single(), "foo:1234"), Outcome::NotFound);
}

#[test]
fn lookup_non_hex_junk_not_found() {
    assert_eq!(look(&single(), "12341111x"), Outcome::NotFound);
    assert_eq!(look(&single(), "1234 "), Outcome::NotFound);
    assert_eq!(look(&single(), ":1234"), Outcome::NotFound);
    assert_eq!(look(&single(), "sha256:12:34"), Outcome::NotFound);
}

#[test]
fn lookup_odd_length_prefix_found() {
    assert_eq!(look(&lookup_set(), "654"), Outcome::Ambiguous);
    assert_eq!(look(&lookup_set(), "65431"), found("65431"));
    assert_eq!(look(&lookup_set(), "sha256:643"), found("64321"));
}

// Errors name the query.

#[test]
fn not_found_message_names_the_query() {
    let err = lookup_set().lookup("9876").unwrap_err();
    assert_eq!(err.to_string(), "no digest matches \"9876\"");
    assert_eq!(err.query(), "9876");
}

#[test]
fn ambiguous_message_names_the_query() {
    let err = lookup_set().lookup("sha256:1234").unwrap_err();
    assert!(err.to_string().contains("\"sha256:1234\""), "{err}");
    assert!(matches!(err, LookupError::Ambiguous { ref query } if query == "sha256:1234"));
}

#[test]
fn lookup_prefix_across_word_boundary() {
    // Two entries that agree on the first 16 digits (one 64-bit word) and differ at the 17th.
    let a = common::filled(Algorithm::Sha256, "0000000000000000a", '0');
    let b = common::filled(Algorithm::Sha256, "0000000000000000b", '0');
    let set = set_of(&[a.clone(), b.clone()]);
    assert_eq!(look(&set, "0000000000000000"), Outcome::Ambiguous);
    assert_eq!(look(&set, "0000000000000000a"), Outcome::Found(a.clone()));
    assert_eq!(
        look(&set, "sha256:0000000000000000b0"),
        Outcome::Found(b.clone())
    );
    assert_eq!(look(&set, "0000000000000000c"), Outcome::NotFound);
}

#[test]
fn lookup_entries_differing_in_last_digit() {
    let a = common::filled(Algorithm::Sha256, &"e".repeat(63), '0');
    let b = common::filled(Algorithm::Sha256, &"e".repeat(63), '1');
    let set = set_of(&[a.clone(), b.clone()]);
    assert_eq!(look(&set, &"e".repeat(63)), Outcome::Ambiguous);
    assert_eq!(look(&set, b.encoded()), Outcome::Found(b.clone()));
    assert_eq!(look(&set, a.as_str()), Outcome::Found(a.clone()));
    // go: the length reaches 64 on the first entry and is not reset before the
    // second, so both get the full digest string.
    assert_eq!(set.short_code_table(2)[&b], b.as_str());
    assert_eq!(
        set.short_code_table(2),
        common::GoSet::new(&[a.clone(), b.clone()]).short_code_table(2)
    );
}
