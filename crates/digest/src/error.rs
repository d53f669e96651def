//! The one error type of this crate.

use std::fmt;

/// Why a digest string was refused. The three kinds are go-digest's
/// `ErrDigestInvalidFormat`, `ErrDigestInvalidLength` and
/// `ErrDigestUnsupported`; each carries the offending input (cut to 150 bytes)
/// so a message names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The string does not follow the digest grammar.
    #[error("invalid checksum digest format: {problem} in {input:?}")]
    InvalidFormat {
        /// The refused input, shortened to at most 150 bytes.
        input: String,
        /// Which rule of the grammar failed.
        problem: FormatProblem,
    },
    /// A known algorithm with an encoded part of the wrong length (in bytes).
    #[error(
        "invalid checksum digest length: {algorithm} needs {expected} hex characters, {input:?} has {actual}"
    )]
    InvalidLength {
        /// The refused input, shortened to at most 150 bytes.
        input: String,
        /// The algorithm named by the input.
        algorithm: &'static str,
        /// Length the algorithm requires.
        expected: usize,
        /// Length found, in bytes.
        actual: usize,
    },
    /// A well-formed digest whose algorithm this crate does not implement.
    #[error("unsupported digest algorithm {algorithm:?} in {input:?}")]
    Unsupported {
        /// The refused input, shortened to at most 150 bytes.
        input: String,
        /// The algorithm named by the input, shortened likewise.
        algorithm: String,
    },
}

/// The rule of the grammar that an [`DigestError::InvalidFormat`] input broke.
///
/// The distinctions are those go-digest's verifier keeps in its panics ("no ':'
/// separator", "empty digest algorithm", ...), returned here as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatProblem {
    /// No `:` between algorithm and encoded part.
    NoSeparator,
    /// Nothing before the `:`.
    EmptyAlgorithm,
    /// Nothing after the `:`.
    EmptyEncoded,
    /// The string does not match `[a-z0-9]+([.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`.
    Grammar,
    /// The encoded part of a known algorithm is not lower-case hex.
    NotLowerHex,
}

impl fmt::Display for FormatProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FormatProblem::NoSeparator => "no ':' separator",
            FormatProblem::EmptyAlgorithm => "empty algorithm",
            FormatProblem::EmptyEncoded => "empty encoded part",
            FormatProblem::Grammar => "not of the form algorithm:encoded",
            FormatProblem::NotLowerHex => "encoded part is not lower-case hex",
        })
    }
}

/// Keeps error messages bounded on hostile input: at most 150 bytes of
/// `input`, cut on a character boundary (with `…` when cut). Every imgstore
/// error that quotes caller input goes through this.
///
/// ```
/// assert_eq!(imgstore_digest::shorten("short"), "short");
/// assert_eq!(imgstore_digest::shorten(&"é".repeat(100)).chars().count(), 76);
/// ```
pub fn shorten(input: &str) -> String {
    const LIMIT: usize = 150;
    if input.len() <= LIMIT {
        return input.to_owned();
    }
    let mut end = LIMIT;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &input[..end])
}

impl DigestError {
    pub(crate) fn format(input: &str, problem: FormatProblem) -> Self {
        DigestError::InvalidFormat {
            input: shorten(input),
            problem,
        }
    }
}
