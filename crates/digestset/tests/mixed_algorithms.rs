//! Sets with several algorithms, where we deliberately differ from go-digest.
//!
//! go-digest checks an algorithm-qualified prefix against the first one or two
//! entries in hex order, whatever their algorithm (§2.7). We consider only
//! entries of the named algorithm. Each test states go's answer (asserted on
//! `GoSet`, a line-by-line model of go's code) and ours.

mod common;

use common::{GoSet, Outcome, filled, mixed_set_digests, outcome, set_of, sha256, sha512};
use imgstore_digest::{Algorithm, Digest};
use imgstore_digestset::DigestSet;

fn aa256() -> Digest {
    filled(Algorithm::Sha256, "1234", 'a')
}
fn bb512() -> Digest {
    filled(Algorithm::Sha512, "1234", 'b')
}
fn bb256() -> Digest {
    filled(Algorithm::Sha256, "1234", 'b')
}
fn aa512() -> Digest {
    filled(Algorithm::Sha512, "1234", 'a')
}

/// Asserts go's answer on the model and ours on the set.
fn check(digests: &[Digest], query: &str, go: Outcome, ours: Outcome) {
    assert_eq!(GoSet::new(digests).lookup(query), go, "go, {query:?}");
    assert_eq!(
        outcome(set_of(digests).lookup(query)),
        ours,
        "ours, {query:?}"
    );
}

fn same(digests: &[Digest], query: &str, both: Outcome) {
    check(digests, query, both.clone(), both);
}

// Set {sha256:1234aa…, sha512:1234bb…}

#[test]
fn mixed_bare_prefix_ambiguous() {
    same(&[aa256(), bb512()], "1234", Outcome::Ambiguous);
}

#[test]
fn mixed_bare_prefix_finds_sha256_entry() {
    same(&[aa256(), bb512()], "1234a", Outcome::Found(aa256()));
}

#[test]
fn mixed_bare_prefix_finds_sha512_entry() {
    same(&[aa256(), bb512()], "1234b", Outcome::Found(bb512()));
}

#[test]
fn mixed_qualified_prefix_finds_first_algorithm() {
    same(&[aa256(), bb512()], "sha256:1234", Outcome::Found(aa256()));
}

#[test]
fn mixed_qualified_prefix_finds_entry_hidden_in_go() {
    // go: NotFound, although sha512:1234bb… exists (the quirk). Ours: found.
    check(
        &[aa256(), bb512()],
        "sha512:1234",
        Outcome::NotFound,
        Outcome::Found(bb512()),
    );
}

#[test]
fn mixed_longer_qualified_prefix_found() {
    same(&[aa256(), bb512()], "sha512:1234b", Outcome::Found(bb512()));
}

#[test]
fn mixed_qualified_prefix_of_other_algorithm_not_found() {
    same(&[aa256(), bb512()], "sha256:1234b", Outcome::NotFound);
    same(&[aa256(), bb512()], "sha512:1234a", Outcome::NotFound);
}

// Mirror set {sha256:1234bb…, sha512:1234aa…}

#[test]
fn mirror_qualified_prefix_finds_entry_hidden_in_go() {
    // go: NotFound. Ours: found.
    check(
        &[bb256(), aa512()],
        "sha256:1234",
        Outcome::NotFound,
        Outcome::Found(bb256()),
    );
}

#[test]
fn mirror_qualified_prefix_finds_first_algorithm() {
    same(&[bb256(), aa512()], "sha512:1234", Outcome::Found(aa512()));
}

// The other face of the quirk: go looks at the next entry only, so an entry
// of another algorithm in between hides an ambiguity.

#[test]
fn mixed_qualified_prefix_ambiguity_not_hidden_by_other_algorithm() {
    let cc256 = filled(Algorithm::Sha256, "1234", 'c');
    // go: sha256:1234aa…, a wrong unique answer. Ours: Ambiguous.
    check(
        &[aa256(), bb512(), cc256],
        "sha256:1234",
        Outcome::Found(aa256()),
        Outcome::Ambiguous,
    );
}

#[test]
fn mixed_qualified_prefix_ambiguous_within_algorithm() {
    let cc512 = filled(Algorithm::Sha512, "1234", 'c');
    // go: NotFound (first entry in hex order is sha256). Ours: Ambiguous.
    check(
        &[aa256(), bb512(), cc512],
        "sha512:1234",
        Outcome::NotFound,
        Outcome::Ambiguous,
    );
}

// The set of go's TestAddDuplication (§2.2), lookups of §2.8

#[test]
fn dup_set_bare_prefix_ambiguous_across_algorithms() {
    same(&mixed_set_digests(), "6543", Outcome::Ambiguous);
    same(&mixed_set_digests(), "65431", Outcome::Ambiguous);
}

#[test]
fn dup_set_qualified_prefix_sha256_found() {
    same(
        &mixed_set_digests(),
        "sha256:6543",
        Outcome::Found(sha256("65431")),
    );
}

#[test]
fn dup_set_qualified_prefix_sha512_found() {
    // go: NotFound (the quirk). Ours: found.
    check(
        &mixed_set_digests(),
        "sha512:6543",
        Outcome::NotFound,
        Outcome::Found(sha512("65431")),
    );
}

#[test]
fn dup_set_qualified_prefix_sha512_ambiguous() {
    same(&mixed_set_digests(), "sha512:65", Outcome::Ambiguous);
}

#[test]
fn dup_set_full_bare_hex_prefixing_longer_entry_ambiguous() {
    // A bare query keeps go's rule: no exact-match preference across algorithms.
    same(
        &mixed_set_digests(),
        sha256("65431").encoded(),
        Outcome::Ambiguous,
    );
}

#[test]
fn dup_set_full_digest_found() {
    same(
        &mixed_set_digests(),
        sha256("65431").as_str(),
        Outcome::Found(sha256("65431")),
    );
    same(
        &mixed_set_digests(),
        sha512("65431").as_str(),
        Outcome::Found(sha512("65431")),
    );
}

// Short codes on the mixed set (§2.8)

fn dup_table() -> std::collections::BTreeMap<Digest, String> {
    set_of(&mixed_set_digests()).short_code_table(2)
}

#[test]
fn dup_set_short_code_of_hex_prefixing_another_is_full_digest() {
    assert_eq!(dup_table()[&sha256("65431")], sha256("65431").as_str());
}

#[test]
fn dup_set_short_code_unresolvable_in_go_falls_back_to_full_digest() {
    let go = GoSet::new(&mixed_set_digests()).short_code_table(2);
    // go: a 64-digit bare hex, equal to the sha256 entry's hex: Ambiguous.
    let go_code = &go[&sha512("65431")];
    assert_eq!(go_code, sha256("65431").encoded());
    assert_eq!(
        outcome(set_of(&mixed_set_digests()).lookup(go_code)),
        Outcome::Ambiguous
    );
    // Ours: the full digest string, which resolves.
    assert_eq!(dup_table()[&sha512("65431")], sha512("65431").as_str());
}

#[test]
fn dup_set_short_codes_of_other_entries_as_go() {
    let table = dup_table();
    assert_eq!(table[&sha512("65421")], "6542");
    assert_eq!(table[&sha512("65321")], "653");
    for head in ["12341", "12345", "12346"] {
        assert_eq!(table[&sha256(head)], head);
    }
    assert_eq!(table[&sha256("54321")], "54");
    let go = GoSet::new(&mixed_set_digests()).short_code_table(2);
    let differing: Vec<&Digest> = table.keys().filter(|d| table[*d] != go[*d]).collect();
    assert_eq!(differing, [&sha512("65431")]);
}

#[test]
fn dup_set_every_short_code_resolves() {
    let set = set_of(&mixed_set_digests());
    for min_len in [0, 1, 2, 3, 4, 5, 12, 63, 64, 65, 100, 127, 128, 129] {
        for (digest, code) in set.short_code_table(min_len) {
            assert_eq!(
                outcome(set.lookup(&code)),
                Outcome::Found(digest.clone()),
                "min {min_len}: {code:?}"
            );
        }
    }
}

#[test]
fn dup_set_with_sha384_every_short_code_resolves() {
    let mut set: DigestSet = set_of(&mixed_set_digests());
    set.add(&common::padded(Algorithm::Sha384, "65431"));
    set.add(&common::padded(Algorithm::Sha384, "12345"));
    for min_len in [0, 2, 5, 64, 96, 128] {
        for (digest, code) in set.short_code_table(min_len) {
            assert_eq!(
                outcome(set.lookup(&code)),
                Outcome::Found(digest.clone()),
                "min {min_len}: {code:?}"
            );
        }
    }
}
