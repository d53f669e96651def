//! Shared fixtures, a literal model of go-digest's digestset (to state what go
//! answers), and a naive reference of our own semantics (to check the fast
//! implementation against).
#![allow(dead_code)]

use std::collections::BTreeMap;

use imgstore_digest::{Algorithm, Digest, DigestError};
use imgstore_digestset::{DigestSet, LookupError};

/// The result of a lookup, comparable across implementations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Found(Digest),
    NotFound,
    Ambiguous,
}

pub fn outcome(result: Result<Digest, LookupError>) -> Outcome {
    match result {
        Ok(d) => Outcome::Found(d),
        Err(LookupError::NotFound { .. }) => Outcome::NotFound,
        Err(LookupError::Ambiguous { .. }) => Outcome::Ambiguous,
        Err(other) => panic!("unexpected lookup error {other:?}"),
    }
}

/// `alg:` + `head` padded with `1` to the algorithm's hex length, as go's tests build digests.
pub fn padded(algorithm: Algorithm, head: &str) -> Digest {
    let hex = format!("{head}{}", "1".repeat(algorithm.encoded_len() - head.len()));
    Digest::new(algorithm, &hex).unwrap()
}

pub fn sha256(head: &str) -> Digest {
    padded(Algorithm::Sha256, head)
}

pub fn sha512(head: &str) -> Digest {
    padded(Algorithm::Sha512, head)
}

/// `alg:` + `head` padded with `fill` (one hex digit).
pub fn filled(algorithm: Algorithm, head: &str, fill: char) -> Digest {
    let hex = format!(
        "{head}{}",
        fill.to_string()
            .repeat(algorithm.encoded_len() - head.len())
    );
    Digest::new(algorithm, &hex).unwrap()
}

/// The heads of go's TestLookup, in its insertion order.
pub const LOOKUP_HEADS: [&str; 8] = [
    "12345", "12341", "12346", "54321", "65431", "64321", "65421", "65321",
];

/// The heads of go's TestShortCodeTable, in its insertion order.
pub const TABLE_HEADS: [&str; 8] = [
    "12341", "12345", "12346", "54321", "65431", "64321", "65421", "65321",
];

pub fn set_of(digests: &[Digest]) -> DigestSet {
    let mut set = DigestSet::new();
    for d in digests {
        set.add(d);
    }
    set
}

/// The 8-entry sha256 set of go's TestLookup.
pub fn lookup_set() -> DigestSet {
    set_of(&LOOKUP_HEADS.map(sha256))
}

/// The mixed set of go's TestAddDuplication (before the sha384 entry).
pub fn mixed_set_digests() -> Vec<Digest> {
    let mut digests: Vec<Digest> = ["12341", "12345", "12346", "54321", "65431"]
        .map(sha256)
        .to_vec();
    digests.extend(["65431", "65421", "65321"].map(sha512));
    digests
}

/// Deterministic, well spread sha256 digests (the hashes of 0, 1, 2, ...).
pub fn random_sha256(n: usize, seed: u64) -> Vec<Digest> {
    (0..n as u64)
        .map(|i| Algorithm::Sha256.from_bytes(&(seed.wrapping_mul(1_000_003) ^ i).to_le_bytes()))
        .collect()
}

/// go-digest's digestset, translated line by line (quirks included).
pub struct GoSet {
    /// Sorted by (hex, algorithm), as go keeps them.
    entries: Vec<Digest>,
}

impl GoSet {
    pub fn new(digests: &[Digest]) -> GoSet {
        let mut entries = digests.to_vec();
        entries.sort_by(|a, b| {
            (a.encoded(), a.algorithm().as_str()).cmp(&(b.encoded(), b.algorithm().as_str()))
        });
        entries.dedup();
        GoSet { entries }
    }

    pub fn all(&self) -> Vec<Digest> {
        self.entries.clone()
    }

    pub fn lookup(&self, d: &str) -> Outcome {
        let entries = &self.entries;
        if entries.is_empty() {
            return Outcome::NotFound;
        }
        let (alg, hex) = match Digest::parse(d) {
            Err(DigestError::InvalidFormat { .. }) => ("", d),
            _ => d
                .split_once(':')
                .expect("every other parse outcome has a ':'"),
        };
        let search = |e: &Digest| {
            if alg.is_empty() {
                e.encoded() >= d
            } else if e.encoded() == hex {
                e.algorithm().as_str() >= alg
            } else {
                e.encoded() >= hex
            }
        };
        let idx = entries.partition_point(|e| !search(e));
        if idx == entries.len() || !check_short_match(&entries[idx], alg, hex) {
            return Outcome::NotFound;
        }
        if entries[idx].algorithm().as_str() == alg && entries[idx].encoded() == hex {
            return Outcome::Found(entries[idx].clone());
        }
        if idx + 1 < entries.len() && check_short_match(&entries[idx + 1], alg, hex) {
            return Outcome::Ambiguous;
        }
        Outcome::Found(entries[idx].clone())
    }

    #[allow(clippy::needless_range_loop)] // kept as go's loop, index for index
    pub fn short_code_table(&self, length: usize) -> BTreeMap<Digest, String> {
        let entries = &self.entries;
        let mut m = BTreeMap::new();
        let mut l = length;
        let mut reset_idx = 0;
        for i in 0..entries.len() {
            let val = entries[i].encoded();
            let mut short = String::new();
            let mut extended = true;
            while extended {
                extended = false;
                if val.len() <= l {
                    short = entries[i].to_string();
                } else {
                    short = val[..l].to_owned();
                    for j in i + 1..entries.len() {
                        if check_short_match(&entries[j], "", &short) {
                            if j > reset_idx {
                                reset_idx = j;
                            }
                            extended = true;
                        } else {
                            break;
                        }
                    }
                    if extended {
                        l += 1;
                    }
                }
            }
            m.insert(entries[i].clone(), short);
            if i >= reset_idx {
                l = length;
            }
        }
        m
    }
}

#[allow(clippy::if_same_then_else)] // kept as go's branches
fn check_short_match(entry: &Digest, short_alg: &str, short_hex: &str) -> bool {
    let (alg, hex) = (entry.algorithm().as_str(), entry.encoded());
    if hex.len() == short_hex.len() {
        if hex != short_hex {
            return false;
        }
        if !short_alg.is_empty() && alg != short_alg {
            return false;
        }
    } else if !hex.starts_with(short_hex) {
        return false;
    } else if !short_alg.is_empty() && alg != short_alg {
        return false;
    }
    true
}

/// Our semantics, the slow obvious way: classify with `Digest::parse` as go
/// does, then scan every entry; an algorithm-qualified query only considers
/// entries of that algorithm (our fix of go's quirk); exact match wins.
pub fn reference_lookup(entries: &[Digest], query: &str) -> Outcome {
    let (algorithm, prefix) = match Digest::parse(query) {
        Err(DigestError::InvalidFormat { .. }) => (None, query),
        _ => {
            let (alg, hex) = query
                .split_once(':')
                .expect("every other parse outcome has a ':'");
            (Some(alg), hex)
        }
    };
    let matches: Vec<&Digest> = entries
        .iter()
        .filter(|d| algorithm.is_none_or(|a| d.algorithm().as_str() == a))
        .filter(|d| d.encoded().starts_with(prefix))
        .collect();
    if algorithm.is_some()
        && let Some(exact) = matches.iter().find(|d| d.encoded() == prefix)
    {
        return Outcome::Found((*exact).clone());
    }
    match matches.as_slice() {
        [] => Outcome::NotFound,
        [one] => Outcome::Found((*one).clone()),
        _ => Outcome::Ambiguous,
    }
}
