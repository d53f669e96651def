//! One ordered set of raw hashes of a single size.

use std::collections::BTreeSet;
use std::collections::btree_set;

use imgstore_digest::Algorithm;

use crate::query::{HexPrefix, Words};

/// The hashes of one algorithm, `W` big-endian 64-bit words each, in word
/// order (which is hex order). 32 bytes per sha256 entry plus the B-tree's
/// node overhead; no per-entry allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Table<const W: usize> {
    keys: BTreeSet<[u64; W]>,
}

/// How many entries a prefix matched, counting at most two.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Hits<'a> {
    None,
    One(Algorithm, &'a [u64]),
    Many,
}

impl<'a> Hits<'a> {
    /// The hits of two disjoint tables together.
    pub(crate) fn and(self, other: Hits<'a>) -> Hits<'a> {
        match (self, other) {
            (Hits::None, hits) | (hits, Hits::None) => hits,
            _ => Hits::Many,
        }
    }
}

impl<const W: usize> Table<W> {
    /// The first `W` words: the set routes each digest to the table of its
    /// algorithm's size, and [`Words`] holds the largest.
    fn key(words: &Words) -> Option<[u64; W]> {
        words.first_chunk().copied()
    }

    pub(crate) fn insert(&mut self, words: &Words) -> bool {
        Self::key(words).is_some_and(|key| self.keys.insert(key))
    }

    pub(crate) fn remove(&mut self, words: &Words) -> bool {
        Self::key(words).is_some_and(|key| self.keys.remove(&key))
    }

    pub(crate) fn contains(&self, words: &Words) -> bool {
        Self::key(words).is_some_and(|key| self.keys.contains(&key))
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn clear(&mut self) {
        self.keys.clear();
    }

    pub(crate) fn iter(&self) -> btree_set::Iter<'_, [u64; W]> {
        self.keys.iter()
    }

    /// The entries whose hex starts with `prefix`: one `range` walk of the
    /// B-tree, stopping after the second match.
    pub(crate) fn hits(&self, algorithm: Algorithm, prefix: &HexPrefix) -> Hits<'_> {
        if self.keys.is_empty() {
            return Hits::None;
        }
        let Some((low, high)) = prefix.bounds::<W>() else {
            return Hits::None;
        };
        if prefix.digits() == W * 16 {
            // A whole hash: one search, no range.
            return match self.keys.get(&low) {
                Some(key) => Hits::One(algorithm, key),
                None => Hits::None,
            };
        }
        // The first two keys from `low` on; those above `high` do not match.
        // (An unbounded range end costs no comparisons on the way down.)
        let mut range = self
            .keys
            .range::<[u64; W], _>(low..)
            .take_while(|key| **key <= high);
        match (range.next(), range.next()) {
            (None, _) => Hits::None,
            (Some(key), None) => Hits::One(algorithm, key),
            (Some(_), Some(_)) => Hits::Many,
        }
    }
}
