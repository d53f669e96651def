//! Adding, removing and listing: go-digest's TestAddDuplication (§2.2),
//! TestRemove (§2.3), TestAll (§2.4) and the parse errors of §2.7.

mod common;

use common::{Outcome, mixed_set_digests, outcome, padded, random_sha256, set_of, sha256};
use imgstore_digest::{Algorithm, Digest, DigestError};
use imgstore_digestset::DigestSet;

#[test]
fn add_mixed_algorithms_counts_each() {
    let set = set_of(&mixed_set_digests());
    assert_eq!(set.len(), 8);
    // sha256:6543… and sha512:6543… share a hex prefix and both are there.
    assert!(set.contains(&sha256("65431")));
    assert!(set.contains(&common::sha512("65431")));
}

#[test]
fn add_duplicate_keeps_count() {
    let mut set = set_of(&mixed_set_digests());
    assert!(!set.add(&sha256("12345")));
    set.add_str(sha256("12345").as_str()).unwrap();
    assert_eq!(set.len(), 8);
}

#[test]
fn add_other_algorithm_is_another_entry() {
    let mut set = set_of(&mixed_set_digests());
    assert!(set.add(&padded(Algorithm::Sha384, "12345")));
    assert_eq!(set.len(), 9);
}

#[test]
fn add_str_invalid_length_is_parse_error() {
    let mut set = DigestSet::new();
    assert!(matches!(
        set.add_str("sha256:abc"),
        Err(DigestError::InvalidLength { .. })
    ));
    assert!(set.is_empty());
}

#[test]
fn add_str_unsupported_is_parse_error() {
    let mut set = DigestSet::new();
    assert!(matches!(
        set.add_str("foo:abc"),
        Err(DigestError::Unsupported { .. })
    ));
    assert!(set.is_empty());
}

#[test]
fn add_str_invalid_format_is_parse_error() {
    let mut set = DigestSet::new();
    assert!(matches!(
        set.add_str("abc"),
        Err(DigestError::InvalidFormat { .. })
    ));
    assert!(set.is_empty());
}

#[test]
fn remove_then_lookup_not_found() {
    let digests = random_sha256(10, 1);
    let mut set = set_of(&digests);
    assert_eq!(
        outcome(set.lookup(digests[0].as_str())),
        Outcome::Found(digests[0].clone())
    );
    assert!(set.remove(&digests[0]));
    assert_eq!(outcome(set.lookup(digests[0].as_str())), Outcome::NotFound);
    assert_eq!(set.len(), 9);
}

#[test]
fn remove_absent_valid_digest_is_noop() {
    let mut set = set_of(&random_sha256(10, 2));
    let absent = Algorithm::Sha256.from_bytes(b"absent");
    assert!(!set.remove(&absent));
    assert_eq!(set.remove_str(absent.as_str()), Ok(false));
    assert_eq!(set.len(), 10);
}

#[test]
fn remove_str_invalid_is_parse_error() {
    let mut set = set_of(&random_sha256(3, 3));
    assert!(matches!(
        set.remove_str("sha256:abc"),
        Err(DigestError::InvalidLength { .. })
    ));
    assert!(matches!(
        set.remove_str("foo:abc"),
        Err(DigestError::Unsupported { .. })
    ));
    assert!(matches!(
        set.remove_str("abc"),
        Err(DigestError::InvalidFormat { .. })
    ));
    assert_eq!(set.len(), 3);
}

#[test]
fn remove_str_present_returns_true() {
    let digests = random_sha256(3, 4);
    let mut set = set_of(&digests);
    assert_eq!(set.remove_str(digests[1].as_str()), Ok(true));
    assert!(!set.contains(&digests[1]));
}

#[test]
fn iter_returns_every_digest() {
    let digests = random_sha256(100, 5);
    let set = set_of(&digests);
    let all: Vec<Digest> = set.iter().collect();
    assert_eq!(all.len(), 100);
    assert_eq!(set.iter().len(), 100);
    for d in &digests {
        assert!(all.contains(d), "{d} missing");
    }
}

#[test]
fn iter_sorted_by_hex_then_algorithm() {
    let mut digests = mixed_set_digests();
    digests.push(padded(Algorithm::Sha384, "12345"));
    digests.push(common::filled(Algorithm::Sha512, "", '0'));
    let set = set_of(&digests);
    let all: Vec<Digest> = set.iter().collect();
    let mut expected = digests.clone();
    expected.sort_by(|a, b| (a.encoded(), a.algorithm()).cmp(&(b.encoded(), b.algorithm())));
    assert_eq!(all, expected);
    assert_eq!(all, common::GoSet::new(&digests).all());
}

#[test]
fn clear_empties_the_set() {
    let mut set = set_of(&mixed_set_digests());
    set.clear();
    assert!(set.is_empty());
    assert_eq!(set.iter().count(), 0);
}

#[test]
fn collect_and_extend_add_every_digest() {
    let digests = random_sha256(20, 6);
    let set: DigestSet = digests.iter().cloned().collect();
    let mut other = DigestSet::new();
    other.extend(&digests);
    assert_eq!(set, other);
    assert_eq!(set.len(), 20);
}
