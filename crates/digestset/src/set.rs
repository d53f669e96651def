//! [`DigestSet`]: the index itself.

use std::collections::BTreeMap;
use std::collections::btree_set;
use std::fmt;
use std::iter::{FusedIterator, Peekable};

use imgstore_digest::{Algorithm, Digest, DigestError};

use crate::LookupError;
use crate::query::{HexPrefix, Query, Words, decode, encode_words};
use crate::short_code;
use crate::table::{Hits, Table};

/// A set of digests that finds a digest by a unique prefix of its hex, as
/// go-digest's `digestset.Set` does, with every operation O(log n).
///
/// Entries are kept as raw hashes in one B-tree per algorithm (32 bytes per
/// sha256 entry plus node overhead: about 51 bytes per entry in all, measured
/// by the `digestset_memory` example of `imgstore-benches`). See the [crate documentation](crate) for
/// the lookup rules.
///
/// `DigestSet` is `Send + Sync`: share it behind a lock, or use
/// [`SharedDigestSet`](crate::SharedDigestSet).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DigestSet {
    sha256: Table<4>,
    sha384: Table<6>,
    sha512: Table<8>,
}

impl DigestSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `digest`; returns `false` if it was already there (the set is
    /// unchanged, as go-digest's `Add` of a duplicate). O(log n).
    pub fn add(&mut self, digest: &Digest) -> bool {
        let Some(key) = key_of(digest) else {
            return false;
        };
        match digest.algorithm() {
            Algorithm::Sha256 => self.sha256.insert(&key),
            Algorithm::Sha384 => self.sha384.insert(&key),
            Algorithm::Sha512 => self.sha512.insert(&key),
        }
    }

    /// Parses `digest` and adds it. An invalid digest is refused with the parse
    /// error (`sha256:abc` is `InvalidLength`, `foo:abc` `Unsupported`, `abc`
    /// `InvalidFormat`) and the set is unchanged. Adding a duplicate is `Ok`.
    pub fn add_str(&mut self, digest: &str) -> Result<(), DigestError> {
        self.add(&Digest::parse(digest)?);
        Ok(())
    }

    /// Removes `digest`; returns whether it was there. O(log n).
    pub fn remove(&mut self, digest: &Digest) -> bool {
        let Some(key) = key_of(digest) else {
            return false;
        };
        match digest.algorithm() {
            Algorithm::Sha256 => self.sha256.remove(&key),
            Algorithm::Sha384 => self.sha384.remove(&key),
            Algorithm::Sha512 => self.sha512.remove(&key),
        }
    }

    /// Parses `digest` and removes it: an invalid digest is the parse error; a
    /// valid one that is not in the set is `Ok(false)` and changes nothing.
    pub fn remove_str(&mut self, digest: &str) -> Result<bool, DigestError> {
        Ok(self.remove(&Digest::parse(digest)?))
    }

    /// Whether `digest` is in the set. O(log n).
    pub fn contains(&self, digest: &Digest) -> bool {
        let Some(key) = key_of(digest) else {
            return false;
        };
        match digest.algorithm() {
            Algorithm::Sha256 => self.sha256.contains(&key),
            Algorithm::Sha384 => self.sha384.contains(&key),
            Algorithm::Sha512 => self.sha512.contains(&key),
        }
    }

    /// Finds the one digest that `query` names: a bare hex prefix (`1234`), an
    /// algorithm-qualified prefix (`sha256:1234`), a full digest or a full
    /// bare hex. O(log n) and no allocation besides the returned digest (or
    /// the error).
    ///
    /// # Errors
    ///
    /// [`LookupError::NotFound`] when nothing matches (including any query
    /// that is not lower-case hex after an optional supported `alg:`, and any
    /// query on an empty set); [`LookupError::Ambiguous`] when more than one
    /// digest matches.
    ///
    /// ```
    /// use imgstore_digest::Digest;
    /// use imgstore_digestset::{DigestSet, LookupError};
    ///
    /// let mut set = DigestSet::new();
    /// set.add_str(&format!("sha256:1234a{}", "1".repeat(59)))?;
    /// set.add_str(&format!("sha256:1234b{}", "1".repeat(59)))?;
    /// assert!(set.lookup("1234b")?.encoded().starts_with("1234b"));
    /// assert!(matches!(set.lookup("sha256:1234"), Err(LookupError::Ambiguous { .. })));
    /// assert!(matches!(set.lookup("sha256:"), Err(LookupError::NotFound { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lookup(&self, query: &str) -> Result<Digest, LookupError> {
        let hits = match Query::classify(query) {
            // go-digest: a bare prefix matches entries of every algorithm and
            // has no exact-match rule, so a 64-hex query equal to a sha256 entry
            // is still Ambiguous when a sha512 entry starts with it.
            Query::Bare(hex) => match HexPrefix::parse(hex) {
                Some(prefix) => self.bare_hits(&prefix),
                None => Hits::None,
            },
            // Only entries of the named algorithm count (the fix of go's
            // mixed-algorithm quirk; see the crate docs). Within one algorithm
            // a full-length hex can match only its own entry, so exact match
            // wins without a special case.
            // A whole digest: answer with the query itself once it is known
            // to be in the set, which skips re-encoding the hash.
            Query::Qualified(algorithm, hex) if hex.len() == algorithm.encoded_len() => {
                return match Digest::parse(query) {
                    Ok(digest) if self.contains(&digest) => Ok(digest),
                    _ => Err(LookupError::not_found(query)),
                };
            }
            Query::Qualified(algorithm, hex) => match HexPrefix::parse(hex) {
                Some(prefix) => self.table_hits(algorithm, &prefix),
                None => Hits::None,
            },
            Query::Nothing => Hits::None,
        };
        match hits {
            Hits::None => Err(LookupError::not_found(query)),
            Hits::Many => Err(LookupError::ambiguous(query)),
            Hits::One(algorithm, key) => {
                digest_of(algorithm, key).ok_or_else(|| LookupError::not_found(query))
            }
        }
    }

    fn table_hits(&self, algorithm: Algorithm, prefix: &HexPrefix) -> Hits<'_> {
        match algorithm {
            Algorithm::Sha256 => self.sha256.hits(algorithm, prefix),
            Algorithm::Sha384 => self.sha384.hits(algorithm, prefix),
            Algorithm::Sha512 => self.sha512.hits(algorithm, prefix),
        }
    }

    fn bare_hits(&self, prefix: &HexPrefix) -> Hits<'_> {
        let mut hits = Hits::None;
        for algorithm in Algorithm::ALL {
            hits = hits.and(self.table_hits(algorithm, prefix));
            if matches!(hits, Hits::Many) {
                break;
            }
        }
        hits
    }

    /// The number of digests.
    pub fn len(&self) -> usize {
        self.sha256.len() + self.sha384.len() + self.sha512.len()
    }

    /// Whether the set holds no digest.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every digest.
    pub fn clear(&mut self) {
        self.sha256.clear();
        self.sha384.clear();
        self.sha512.clear();
    }

    /// Every digest, sorted by encoded hex, then by algorithm (go-digest's
    /// `All` order). Each item is built from the stored hash as it is yielded.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            sha256: self.sha256.iter().peekable(),
            sha384: self.sha384.iter().peekable(),
            sha512: self.sha512.iter().peekable(),
            remaining: self.len(),
        }
    }

    /// A short code for every digest: go-digest's `ShortCodeTable` with
    /// minimum length `min_len`, made always resolvable.
    ///
    /// The codes are those go-digest computes — bare hex prefixes of at least
    /// `min_len` digits that grow while the following entries (in [`iter`]
    /// order) share them, with the length not reset until the scan passes the
    /// last entry that collided, and the full `alg:hex` string when the hex is
    /// not longer than the current length — except where go's code would not
    /// resolve: with mixed algorithms a bare code can equal one entry's whole
    /// hex and prefix another's, so [`lookup`] says `Ambiguous`. Such an entry
    /// gets its full digest string instead. So every code `c` in the table
    /// satisfies `self.lookup(c) == Ok(digest)`.
    ///
    /// Returned as a map from digest to code (go returns a map too); iterate
    /// [`iter`] to print in set order. O(n log n) time, O(n) space.
    ///
    /// [`iter`]: Self::iter
    /// [`lookup`]: Self::lookup
    pub fn short_code_table(&self, min_len: usize) -> BTreeMap<Digest, String> {
        short_code::table(self.iter().collect(), min_len)
    }
}

/// The key of a digest: its hex as words. `None` is unreachable (a `Digest`
/// always holds lower-case hex of its algorithm's length); callers treat it as
/// "not in the set" rather than panic.
fn key_of(digest: &Digest) -> Option<Words> {
    decode(digest.encoded())
}

/// The digest whose hash is `words` (of `algorithm`'s size). `None` is
/// unreachable: the words come from a table of that size. Built as text and
/// parsed, which costs half of `Digest::from_hash` and does not allocate for
/// sha256.
fn digest_of(algorithm: Algorithm, words: &[u64]) -> Option<Digest> {
    let name = algorithm.as_str().as_bytes();
    let mut text = [0u8; 7 + 128];
    let (head, hex) = text.split_at_mut(name.len() + 1);
    head[..name.len()].copy_from_slice(name);
    head[name.len()] = b':';
    let end = head.len() + encode_words(words, hex);
    let text = std::str::from_utf8(text.get(..end)?).ok()?;
    Digest::parse(text).ok()
}

impl fmt::Debug for DigestSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a DigestSet {
    type Item = Digest;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl FromIterator<Digest> for DigestSet {
    fn from_iter<I: IntoIterator<Item = Digest>>(iter: I) -> Self {
        let mut set = DigestSet::new();
        set.extend(iter);
        set
    }
}

impl Extend<Digest> for DigestSet {
    fn extend<I: IntoIterator<Item = Digest>>(&mut self, iter: I) {
        for digest in iter {
            self.add(&digest);
        }
    }
}

impl<'a> Extend<&'a Digest> for DigestSet {
    fn extend<I: IntoIterator<Item = &'a Digest>>(&mut self, iter: I) {
        for digest in iter {
            self.add(digest);
        }
    }
}

/// The digests of a [`DigestSet`] in go-digest's order: by encoded hex, then
/// algorithm. Returned by [`DigestSet::iter`].
pub struct Iter<'a> {
    sha256: Peekable<btree_set::Iter<'a, [u64; 4]>>,
    sha384: Peekable<btree_set::Iter<'a, [u64; 6]>>,
    sha512: Peekable<btree_set::Iter<'a, [u64; 8]>>,
    remaining: usize,
}

impl Iterator for Iter<'_> {
    type Item = Digest;

    fn next(&mut self) -> Option<Digest> {
        // Hex order across lengths is the slice order of the hashes' words
        // (a shorter hash that prefixes a longer one sorts first). Hashes of
        // different algorithms differ in length, so there are no ties.
        let heads = [
            (Algorithm::Sha256, self.sha256.peek().map(|k| k.as_slice())),
            (Algorithm::Sha384, self.sha384.peek().map(|k| k.as_slice())),
            (Algorithm::Sha512, self.sha512.peek().map(|k| k.as_slice())),
        ];
        let (algorithm, _) = heads
            .into_iter()
            .filter_map(|(algorithm, key)| Some((algorithm, key?)))
            .min_by(|a, b| a.1.cmp(b.1))?;
        let key = match algorithm {
            Algorithm::Sha256 => self.sha256.next()?.as_slice(),
            Algorithm::Sha384 => self.sha384.next()?.as_slice(),
            Algorithm::Sha512 => self.sha512.next()?.as_slice(),
        };
        self.remaining = self.remaining.saturating_sub(1);
        digest_of(algorithm, key)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl FusedIterator for Iter<'_> {}

impl fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}
