//! `BlobHasher`: the hashing every backend's `write_blob` does while it streams.

use imgstore_digest::{Algorithm, Digest, Digester};

use crate::{BlobInfo, Error, Result};

/// Hashes content as it streams into a backend: always sha256 (the digest it
/// is stored under) and, when an expected digest of another algorithm is
/// given, that algorithm too, so the check needs no second pass.
pub struct BlobHasher {
    sha256: Digester,
    other: Option<Digester>,
    size: u64,
}

impl BlobHasher {
    /// A hasher for content that must hash to `expected`, if given.
    pub fn new(expected: Option<&Digest>) -> BlobHasher {
        BlobHasher {
            sha256: Algorithm::Sha256.digester(),
            other: expected
                .map(Digest::algorithm)
                .filter(|a| *a != Algorithm::Sha256)
                .map(Algorithm::digester),
            size: 0,
        }
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        if let Some(other) = &mut self.other {
            other.update(bytes);
        }
        self.size += bytes.len() as u64;
    }

    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The sha256 digest and size, once the content is checked: empty content
    /// is `InvalidArgument` ("invalid empty data"), content that does not
    /// hash to `expected` is `DataCorruption`.
    pub fn finish(self, expected: Option<&Digest>) -> Result<BlobInfo> {
        if self.size == 0 {
            return Err(Error::invalid_argument("data", "invalid empty data"));
        }
        let digest = self.sha256.finish();
        if let Some(expected) = expected {
            let actual = match self.other {
                Some(other) => other.finish(),
                None => digest.clone(),
            };
            if actual != *expected {
                return Err(Error::DataCorruption {
                    digest: expected.clone(),
                    actual,
                });
            }
        }
        Ok(BlobInfo {
            digest,
            size: self.size,
        })
    }
}
