//! Properties over random sets with mixed algorithms and shared prefixes:
//! every full digest and every short code finds its digest; lookup agrees with
//! a naive linear scan of the same semantics; sets of one algorithm answer
//! exactly as go-digest does.

mod common;

use std::collections::BTreeSet;

use common::{GoSet, Outcome, outcome, reference_lookup};
use imgstore_digest::{Algorithm, Digest};
use imgstore_digestset::DigestSet;
use proptest::prelude::*;

/// A digest whose hex starts with a short head from a small alphabet, so
/// that entries share prefixes often.
fn digest_strategy() -> impl Strategy<Value = Digest> {
    // Heads also run past the first 64-bit word (16 digits) and to the last
    // digits of a sha256 hex, where keys differ only late.
    let head = prop_oneof![4 => "[0-2]{0,6}", 1 => "0{14,18}[0-1]{0,3}", 1 => "1{60,62}[0-1]{0,2}"];
    (0..3usize, head, "[0-9a-f]{128}").prop_map(|(alg, head, tail)| {
        let algorithm = Algorithm::ALL[alg];
        let hex = format!("{head}{tail}");
        Digest::new(algorithm, &hex[..algorithm.encoded_len()]).unwrap()
    })
}

/// Random digests plus "extensions": a longer-hash digest whose hex starts with
/// the whole hex of an existing shorter one (the case that breaks go's codes).
fn digests_strategy(max: usize) -> impl Strategy<Value = Vec<Digest>> {
    (
        prop::collection::vec(digest_strategy(), 0..max),
        prop::collection::vec(
            (any::<prop::sample::Index>(), 1..3usize, "[0-9a-f]{64}"),
            0..4,
        ),
    )
        .prop_map(|(mut digests, extensions)| {
            for (index, alg, tail) in extensions {
                if digests.is_empty() {
                    break;
                }
                let base = digests[index.index(digests.len())].clone();
                let algorithm = Algorithm::ALL[alg];
                if algorithm.encoded_len() > base.encoded().len() {
                    let hex = format!("{}{tail}", base.encoded());
                    digests.push(Digest::new(algorithm, &hex[..algorithm.encoded_len()]).unwrap());
                }
            }
            digests
        })
}

/// Queries of every shape: prefixes of entries (any length, odd too, one too
/// long), with or without an `alg:` (supported or not), junk, random hex.
fn query_strategy(digests: Vec<Digest>) -> impl Strategy<Value = String> {
    let n = digests.len().max(1);
    let qualifier = prop_oneof![
        Just(String::new()),
        Just("sha256:".to_owned()),
        Just("sha384:".to_owned()),
        Just("sha512:".to_owned()),
        Just("foo:".to_owned()),
        Just("SHA256:".to_owned()),
        Just(":".to_owned()),
    ];
    let from_entry = (0..n, 0..130usize, qualifier.clone(), any::<bool>()).prop_map(
        move |(i, len, qualifier, own_alg)| {
            let Some(d) = digests.get(i) else {
                return qualifier;
            };
            let hex = &d.encoded()[..len.min(d.encoded().len())];
            let qualifier = if own_alg && !qualifier.is_empty() {
                format!("{}:", d.algorithm())
            } else {
                qualifier
            };
            format!("{qualifier}{hex}")
        },
    );
    prop_oneof![
        6 => from_entry,
        2 => (qualifier, "[0-3]{0,8}").prop_map(|(q, h)| format!("{q}{h}")),
        1 => "[0-9a-fA-Fx: ]{0,12}",
        1 => "\\PC{0,20}",
    ]
}

fn set_with_queries() -> impl Strategy<Value = (Vec<Digest>, Vec<String>)> {
    digests_strategy(40).prop_flat_map(|digests| {
        let queries = prop::collection::vec(query_strategy(digests.clone()), 1..40);
        (Just(digests), queries)
    })
}

fn distinct(digests: &[Digest]) -> Vec<Digest> {
    digests
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_full_digest_finds_itself(digests in digests_strategy(60)) {
        let set: DigestSet = digests.iter().cloned().collect();
        for d in &digests {
            prop_assert!(set.contains(d));
            prop_assert_eq!(outcome(set.lookup(d.as_str())), Outcome::Found(d.clone()));
        }
    }

    #[test]
    fn every_short_code_finds_its_digest(digests in digests_strategy(60), min_len in prop_oneof![0..20usize, 60..70usize, 90..130usize]) {
        let set: DigestSet = digests.iter().cloned().collect();
        let table = set.short_code_table(min_len);
        prop_assert_eq!(table.len(), set.len());
        for (digest, code) in &table {
            prop_assert!(code.len() >= min_len.min(digest.encoded().len()) || code == digest.as_str());
            prop_assert_eq!(outcome(set.lookup(code)), Outcome::Found(digest.clone()), "code {:?}", code);
        }
    }

    #[test]
    fn lookup_agrees_with_linear_scan((digests, queries) in set_with_queries()) {
        let set: DigestSet = digests.iter().cloned().collect();
        let entries = distinct(&digests);
        for query in &queries {
            prop_assert_eq!(outcome(set.lookup(query)), reference_lookup(&entries, query), "query {:?}", query);
        }
    }

    #[test]
    fn single_algorithm_sets_answer_as_go(alg in 0..3usize, (digests, queries) in set_with_queries()) {
        let algorithm = Algorithm::ALL[alg];
        let digests: Vec<Digest> = digests.into_iter().filter(|d| d.algorithm() == algorithm).collect();
        let set: DigestSet = digests.iter().cloned().collect();
        let go = GoSet::new(&digests);
        for query in &queries {
            prop_assert_eq!(outcome(set.lookup(query)), go.lookup(query), "query {:?}", query);
        }
        for min_len in [0, 1, 2, 3, 5, 12] {
            prop_assert_eq!(set.short_code_table(min_len), go.short_code_table(min_len));
        }
    }

    #[test]
    fn short_codes_differ_from_go_only_by_falling_back_to_full_digest(digests in digests_strategy(40), min_len in 0..8usize) {
        let set: DigestSet = digests.iter().cloned().collect();
        let go = GoSet::new(&digests).short_code_table(min_len);
        for (digest, code) in set.short_code_table(min_len) {
            if code != go[&digest] {
                prop_assert_eq!(code, digest.to_string());
                prop_assert_eq!(outcome(set.lookup(&go[&digest])), Outcome::Ambiguous);
            }
        }
    }

    #[test]
    fn iter_is_go_order_without_duplicates(digests in digests_strategy(60)) {
        let set: DigestSet = digests.iter().cloned().collect();
        let all: Vec<Digest> = set.iter().collect();
        prop_assert_eq!(all.len(), set.len());
        prop_assert_eq!(all, GoSet::new(&digests).all());
    }

    #[test]
    fn add_and_remove_match_a_model(ops in prop::collection::vec((any::<bool>(), digest_strategy()), 0..80)) {
        let mut set = DigestSet::new();
        let mut model = BTreeSet::new();
        for (add, d) in &ops {
            if *add {
                prop_assert_eq!(set.add(d), model.insert(d.clone()));
            } else {
                let victim = model.iter().next().cloned().unwrap_or_else(|| d.clone());
                prop_assert_eq!(set.remove(&victim), model.remove(&victim));
            }
            prop_assert_eq!(set.len(), model.len());
        }
        prop_assert_eq!(set.iter().collect::<BTreeSet<_>>(), model);
    }

    #[test]
    fn arbitrary_queries_never_panic(query in "\\PC{0,200}") {
        let set: DigestSet = common::random_sha256(50, 9).into_iter().collect();
        let _ = set.lookup(&query);
    }
}
