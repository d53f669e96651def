//! The hash algorithms a digest may name.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use crate::error::shorten;
use crate::{Digest, DigestError, Digester, hex};

/// A digest algorithm. go-digest v1.0.0 (the version moby and containerd
/// vendor) registers exactly these three; `Sha256` is canonical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Algorithm {
    /// SHA-256, the canonical algorithm: every image ID and chain ID uses it.
    #[default]
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// The canonical algorithm, `sha256`.
    pub const CANONICAL: Algorithm = Algorithm::Sha256;

    /// All supported algorithms.
    pub const ALL: [Algorithm; 3] = [Algorithm::Sha256, Algorithm::Sha384, Algorithm::Sha512];

    /// The name as it appears before the `:` of a digest.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The size of the hash in bytes (32, 48 or 64).
    pub const fn size(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha384 => 48,
            Algorithm::Sha512 => 64,
        }
    }

    /// The length of the encoded (hex) part of a digest: twice [`size`](Self::size).
    pub const fn encoded_len(self) -> usize {
        self.size() * 2
    }

    /// Looks an algorithm up by its exact name; `None` for any other string.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha384" => Some(Algorithm::Sha384),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    /// Parses an algorithm the way go-digest's command-line flag does: an empty
    /// value means the canonical algorithm, an unknown one is `Unsupported`.
    pub fn from_flag(value: &str) -> Result<Algorithm, DigestError> {
        if value.is_empty() {
            return Ok(Algorithm::CANONICAL);
        }
        value.parse()
    }

    /// A fresh streaming hasher for this algorithm.
    pub fn digester(self) -> Digester {
        Digester::new(self)
    }

    /// The digest of `data`.
    pub fn from_bytes(self, data: &[u8]) -> Digest {
        let mut digester = self.digester();
        digester.update(data);
        digester.finish()
    }

    /// The digest of everything `reader` yields, read in 64 KiB pieces.
    pub fn from_reader(self, mut reader: impl Read) -> io::Result<Digest> {
        let mut digester = self.digester();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(digester.finish()),
                Ok(n) => digester.update(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Checks an encoded part for this algorithm: length first (in bytes), then
    /// the lower-case hex character set, as go-digest's `Algorithm.Validate`.
    pub fn validate_encoded(self, encoded: &str) -> Result<(), DigestError> {
        if encoded.len() != self.encoded_len() {
            return Err(DigestError::InvalidLength {
                input: shorten(encoded),
                algorithm: self.as_str(),
                expected: self.encoded_len(),
                actual: encoded.len(),
            });
        }
        if !hex::is_lower_hex(encoded.as_bytes()) {
            return Err(DigestError::format(
                encoded,
                crate::FormatProblem::NotLowerHex,
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = DigestError;

    /// Exact names only; anything else is `Unsupported`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Algorithm::from_name(name).ok_or_else(|| DigestError::Unsupported {
            input: shorten(name),
            algorithm: shorten(name),
        })
    }
}
