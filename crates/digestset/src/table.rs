//! One ordered set of raw hashes of a single size.

use std::collections::BTreeSet;
use std::collections::btree_set;

use imgstore_digest::Algorithm;

use crate::query::HexPrefix;

/// The hashes of one algorithm, `N` bytes each, in byte order (which is hex
/// order). 32 bytes per sha256 entry plus the B-tree's node overhead; no
/// per-entry allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Table<const N: usize> {
    keys: BTreeSet<[u8; N]>,
}

/// How many entries a prefix matched, counting at most two.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Hits<'a> {
    None,
    One(Algorithm, &'a [u8]),
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

impl<const N: usize> Table<N> {
    /// `hash` has exactly `N` bytes: the set routes each digest to the table of
    /// its algorithm's size.
    fn key(hash: &[u8]) -> [u8; N] {
        let mut key = [0u8; N];
        for (dst, src) in key.iter_mut().zip(hash) {
            *dst = *src;
        }
        key
    }

    pub(crate) fn insert(&mut self, hash: &[u8]) -> bool {
        self.keys.insert(Self::key(hash))
    }

    pub(crate) fn remove(&mut self, hash: &[u8]) -> bool {
        self.keys.remove(&Self::key(hash))
    }

    pub(crate) fn contains(&self, hash: &[u8]) -> bool {
        self.keys.contains(&Self::key(hash))
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn clear(&mut self) {
        self.keys.clear();
    }

    pub(crate) fn iter(&self) -> btree_set::Iter<'_, [u8; N]> {
        self.keys.iter()
    }

    /// The entries whose hex starts with `prefix`: one `range` walk of the
    /// B-tree, stopping after the second match.
    pub(crate) fn hits(&self, algorithm: Algorithm, prefix: &HexPrefix) -> Hits<'_> {
        if self.keys.is_empty() {
            return Hits::None;
        }
        let Some((low, high)) = prefix.bounds::<N>() else {
            return Hits::None;
        };
        // low <= high always holds (see HexPrefix), so `range` cannot panic.
        let mut range = self.keys.range::<[u8; N], _>(low..=high);
        match (range.next(), range.next()) {
            (None, _) => Hits::None,
            (Some(key), None) => Hits::One(algorithm, key),
            (Some(_), Some(_)) => Hits::Many,
        }
    }
}
