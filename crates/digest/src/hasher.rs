//! A fast hasher for maps keyed by digests.

use std::hash::{BuildHasherDefault, Hasher};

/// A [`Hasher`] for keys that are digests (or wrap one): the bytes hashed are
/// already uniformly random hex, so it mixes the last 8 bytes of each write
/// instead of running SipHash over all 71. Not for keys an attacker chooses
/// freely without them being verified digests.
///
/// ```
/// use std::collections::HashMap;
/// use imgstore_digest::{BuildDigestHasher, Digest};
///
/// let mut sizes: HashMap<Digest, u64, BuildDigestHasher> = HashMap::default();
/// sizes.insert(Digest::from_bytes(b"layer"), 5);
/// assert_eq!(sizes[&Digest::from_bytes(b"layer")], 5);
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct DigestHasher(u64);

/// Builds [`DigestHasher`]s; the `S` parameter of a `HashMap` keyed by digests.
pub type BuildDigestHasher = BuildHasherDefault<DigestHasher>;

impl Hasher for DigestHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let tail = &bytes[bytes.len().saturating_sub(8)..];
        let mut word = [0u8; 8];
        word[..tail.len()].copy_from_slice(tail);
        self.mix(u64::from_le_bytes(word) ^ bytes.len() as u64);
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.mix(u64::from(byte));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

impl DigestHasher {
    /// Folds a word in and spreads its entropy to every bit (hashbrown reads
    /// the top 7 bits for its control bytes).
    #[inline]
    fn mix(&mut self, word: u64) {
        let x = (self.0 ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 29);
    }
}
