//! The short-code table on sets of one algorithm: go-digest's
//! TestShortCodeTable (§2.5), its benchmark contract (§2.6) and the probed
//! minimum lengths (§2.8). Mixed algorithms are in `mixed_algorithms.rs`.

mod common;

use common::{GoSet, Outcome, TABLE_HEADS, outcome, random_sha256, set_of, sha256};
use imgstore_digestset::DigestSet;

fn table_set() -> DigestSet {
    set_of(&TABLE_HEADS.map(sha256))
}

/// The codes of the table set, listed in go's insertion order.
fn codes(min_len: usize) -> Vec<String> {
    let table = table_set().short_code_table(min_len);
    TABLE_HEADS
        .iter()
        .map(|head| table[&sha256(head)].clone())
        .collect()
}

fn assert_every_code_resolves(set: &DigestSet, min_len: usize) {
    for (digest, code) in set.short_code_table(min_len) {
        assert_eq!(
            outcome(set.lookup(&code)),
            Outcome::Found(digest.clone()),
            "code {code:?} of {digest}"
        );
    }
}

#[test]
fn short_code_table_min_2() {
    let table = table_set().short_code_table(2);
    assert_eq!(table.len(), 8);
    assert_eq!(
        codes(2),
        ["12341", "12345", "12346", "54", "6543", "64", "6542", "653"]
    );
}

#[test]
fn short_code_table_min_0_keeps_length_for_whole_table() {
    // The empty start prefix collides with everything, so the length stays 5.
    assert_eq!(
        codes(0),
        [
            "12341", "12345", "12346", "54321", "65431", "64321", "65421", "65321"
        ]
    );
}

#[test]
fn short_code_table_min_1() {
    assert_eq!(
        codes(1),
        ["12341", "12345", "12346", "5", "6543", "64", "6542", "653"]
    );
}

#[test]
fn short_code_table_min_3() {
    assert_eq!(
        codes(3),
        [
            "12341", "12345", "12346", "543", "6543", "643", "6542", "653"
        ]
    );
}

#[test]
fn short_code_table_min_4() {
    assert_eq!(
        codes(4),
        [
            "12341", "12345", "12346", "5432", "6543", "6432", "6542", "6532"
        ]
    );
}

#[test]
fn short_code_table_min_5() {
    assert_eq!(
        codes(5),
        [
            "12341", "12345", "12346", "54321", "65431", "64321", "65421", "65321"
        ]
    );
}

#[test]
fn short_code_table_min_12_is_12_hex_digits() {
    let expected: Vec<String> = TABLE_HEADS
        .iter()
        .map(|h| sha256(h).encoded()[..12].to_owned())
        .collect();
    assert_eq!(codes(12), expected);
}

#[test]
fn short_code_table_min_63_is_63_hex_digits() {
    let expected: Vec<String> = TABLE_HEADS
        .iter()
        .map(|h| sha256(h).encoded()[..63].to_owned())
        .collect();
    assert_eq!(codes(63), expected);
}

#[test]
fn short_code_table_min_at_least_hex_length_is_full_digest() {
    let expected: Vec<String> = TABLE_HEADS.iter().map(|h| sha256(h).to_string()).collect();
    for min_len in [64, 65, 100] {
        assert_eq!(codes(min_len), expected, "min_len {min_len}");
    }
}

#[test]
fn short_code_table_equals_go_for_every_probed_length() {
    let go = GoSet::new(&TABLE_HEADS.map(sha256));
    for min_len in [0, 1, 2, 3, 4, 5, 12, 63, 64, 65, 100] {
        assert_eq!(
            table_set().short_code_table(min_len),
            go.short_code_table(min_len),
            "min_len {min_len}"
        );
    }
}

#[test]
fn short_code_table_codes_resolve_for_every_probed_length() {
    for min_len in [0, 1, 2, 3, 4, 5, 12, 63, 64, 65, 100] {
        assert_every_code_resolves(&table_set(), min_len);
    }
}

#[test]
fn short_code_table_min_12_codes_resolve_on_random_sets() {
    for n in [10, 100, 1000] {
        let set = set_of(&random_sha256(n, n as u64));
        let table = set.short_code_table(12);
        assert_eq!(table.len(), n);
        assert_every_code_resolves(&set, 12);
    }
}

#[test]
fn short_code_table_of_empty_set_is_empty() {
    assert!(DigestSet::new().short_code_table(12).is_empty());
}

#[test]
fn short_code_table_single_entry_min_0_is_empty_code() {
    // go gives the empty code; the empty query finds the only entry.
    let set = set_of(&[sha256("12341")]);
    let table = set.short_code_table(0);
    assert_eq!(table[&sha256("12341")], "");
    assert_every_code_resolves(&set, 0);
}
