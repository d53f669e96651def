//! The `Digest` value type and its parser.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::str::FromStr;
use std::sync::Arc;

use arrayvec::ArrayString;

use crate::error::{FormatProblem, shorten};
use crate::{Algorithm, DigestError, Verifier, hex};

/// Length of `sha256:` + 64 hex: sha256 digests are stored inline, without allocating.
const INLINE_LEN: usize = 7 + 64;

/// A validated digest `algorithm:encoded` of a supported algorithm.
///
/// Equality, ordering and hashing are those of the string form, so a `Digest`
/// sorts as go-digest's string does. Cloning a sha256 digest copies 72 bytes;
/// sha384/sha512 digests share one allocation.
#[derive(Clone)]
pub struct Digest {
    algorithm: Algorithm,
    text: Text,
}

#[derive(Clone)]
enum Text {
    Inline(ArrayString<INLINE_LEN>),
    Shared(Arc<str>),
}

/// The raw hash bytes of a digest (32, 48 or 64 of them), without allocating.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashBytes {
    len: u8,
    bytes: [u8; 64],
}

impl Deref for HashBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl AsRef<[u8]> for HashBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for HashBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 128];
        let hex_len = self.len() * 2;
        hex::encode_to_slice(self, &mut buf[..hex_len]);
        f.write_str(std::str::from_utf8(&buf[..hex_len]).map_err(|_| fmt::Error)?)
    }
}

/// `[a-z0-9]+([.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`, go-digest's `DigestRegexpAnchored`.
fn matches_generic_grammar(s: &str) -> bool {
    let Some((algorithm, encoded)) = s.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['.', '+', '_', '-']).all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    let encoded_ok = !encoded.is_empty()
        && encoded
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'=' | b'_' | b'-'));
    algorithm_ok && encoded_ok
}

impl Digest {
    /// Parses and validates `s` with go-digest v1.0.0's rules and precedence:
    /// a missing part is `InvalidFormat`; an unknown algorithm is `Unsupported`
    /// when the generic grammar matches and `InvalidFormat` otherwise; a known
    /// algorithm checks the length in bytes (`InvalidLength`) before the
    /// lower-case hex characters (`InvalidFormat`).
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        // Fast path for the common case: a well-formed sha256 digest.
        if s.len() == INLINE_LEN
            && s.as_bytes().starts_with(b"sha256:")
            && hex::is_lower_hex(&s.as_bytes()[7..])
        {
            return Ok(Self::from_validated(Algorithm::Sha256, s));
        }
        let Some(colon) = s.find(':') else {
            return Err(DigestError::format(s, FormatProblem::NoSeparator));
        };
        if colon == 0 {
            return Err(DigestError::format(s, FormatProblem::EmptyAlgorithm));
        }
        if colon + 1 == s.len() {
            return Err(DigestError::format(s, FormatProblem::EmptyEncoded));
        }
        let (name, encoded) = (&s[..colon], &s[colon + 1..]);
        let Some(algorithm) = Algorithm::from_name(name) else {
            return Err(if matches_generic_grammar(s) {
                DigestError::Unsupported {
                    input: shorten(s),
                    algorithm: shorten(name),
                }
            } else {
                DigestError::format(s, FormatProblem::Grammar)
            });
        };
        Self::check_encoded(algorithm, encoded, s)?;
        Ok(Self::from_validated(algorithm, s))
    }

    /// Builds a digest from an algorithm and its encoded part, validating the
    /// encoded part as [`parse`](Self::parse) would.
    pub fn new(algorithm: Algorithm, encoded: &str) -> Result<Digest, DigestError> {
        let whole = format!("{algorithm}:{encoded}");
        Self::check_encoded(algorithm, encoded, &whole)?;
        Ok(Self::from_validated(algorithm, &whole))
    }

    /// Builds a digest from raw hash bytes, which must be `algorithm.size()` long.
    pub fn from_hash(algorithm: Algorithm, hash: &[u8]) -> Result<Digest, DigestError> {
        if hash.len() != algorithm.size() {
            return Err(DigestError::InvalidLength {
                input: format!("{} raw bytes", hash.len()),
                algorithm: algorithm.as_str(),
                expected: algorithm.encoded_len(),
                actual: hash.len() * 2,
            });
        }
        let name = algorithm.as_str().as_bytes();
        let mut buf = [0u8; 7 + 128];
        buf[..name.len()].copy_from_slice(name);
        buf[name.len()] = b':';
        let end = name.len() + 1 + hash.len() * 2;
        hex::encode_to_slice(hash, &mut buf[name.len() + 1..end]);
        // Only ASCII was written above, so this cannot fail.
        let text = std::str::from_utf8(&buf[..end])
            .map_err(|_| DigestError::format("", FormatProblem::NotLowerHex))?;
        Ok(Self::from_validated(algorithm, text))
    }

    /// The digest of `data` with the canonical algorithm (sha256).
    pub fn from_bytes(data: &[u8]) -> Digest {
        Algorithm::CANONICAL.from_bytes(data)
    }

    /// Length first, then charset; `whole` is the input reported in errors.
    fn check_encoded(algorithm: Algorithm, encoded: &str, whole: &str) -> Result<(), DigestError> {
        algorithm.validate_encoded(encoded).map_err(|e| match e {
            DigestError::InvalidLength {
                algorithm,
                expected,
                actual,
                ..
            } => DigestError::InvalidLength {
                input: shorten(whole),
                algorithm,
                expected,
                actual,
            },
            DigestError::InvalidFormat { problem, .. } => DigestError::format(whole, problem),
            other => other,
        })
    }

    /// `text` is a validated `algorithm:hex` string.
    pub(crate) fn from_validated(algorithm: Algorithm, text: &str) -> Digest {
        let text = match ArrayString::from(text) {
            Ok(inline) => Text::Inline(inline),
            Err(_) => Text::Shared(Arc::from(text)),
        };
        Digest { algorithm, text }
    }

    /// The algorithm, e.g. `Algorithm::Sha256`.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The encoded part after the `:` (lower-case hex).
    pub fn encoded(&self) -> &str {
        &self.as_str()[self.algorithm.as_str().len() + 1..]
    }

    /// The whole digest string, `algorithm:encoded`.
    pub fn as_str(&self) -> &str {
        match &self.text {
            Text::Inline(s) => s.as_str(),
            Text::Shared(s) => s,
        }
    }

    /// The raw hash bytes the encoded part spells.
    pub fn hash_bytes(&self) -> HashBytes {
        let mut out = HashBytes {
            len: self.algorithm.size() as u8,
            bytes: [0u8; 64],
        };
        hex::decode_into(
            self.encoded().as_bytes(),
            &mut out.bytes[..self.algorithm.size()],
        );
        out
    }

    /// A [`Verifier`] that reports whether the bytes written to it hash to this digest.
    pub fn verifier(&self) -> Verifier {
        Verifier::new(self.clone())
    }
}

impl PartialEq for Digest {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Digest {}

impl PartialOrd for Digest {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Digest {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Digest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.as_str())
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl TryFrom<&str> for Digest {
    type Error = DigestError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a digest string such as sha256:<64 hex>")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Digest, E> {
                Digest::parse(s).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visit)
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = DigestError;
    /// Accepts what go-digest accepts; oci-spec admits algorithms we cannot hash.
    fn try_from(d: &oci_spec::image::Digest) -> Result<Self, Self::Error> {
        Digest::parse(d.as_ref())
    }
}

impl TryFrom<&Digest> for oci_spec::image::Digest {
    type Error = DigestError;
    /// Every valid `Digest` is a valid OCI digest; the error path is unreachable
    /// in practice and kept only so no panic is possible.
    fn try_from(d: &Digest) -> Result<Self, Self::Error> {
        oci_spec::image::Digest::from_str(d.as_str())
            .map_err(|_| DigestError::format(d.as_str(), FormatProblem::Grammar))
    }
}
