//! Streaming hashing and verification.

use std::io;

use sha2::Digest as _;

use crate::{Algorithm, Digest, DigestError};

/// A streaming hasher: write bytes in any pieces, then [`finish`](Self::finish).
///
/// ```
/// use std::io::Write;
/// use imgstore_digest::Algorithm;
///
/// let mut d = Algorithm::Sha256.digester();
/// d.write_all(b"hel")?;
/// d.write_all(b"lo")?;
/// assert_eq!(d.finish(), Algorithm::Sha256.from_bytes(b"hello"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Digester {
    state: State,
}

#[derive(Clone)]
enum State {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Digester {
    /// A fresh hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Digester {
        let state = match algorithm {
            Algorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
            Algorithm::Sha384 => State::Sha384(sha2::Sha384::new()),
            Algorithm::Sha512 => State::Sha512(sha2::Sha512::new()),
        };
        Digester { state }
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> Algorithm {
        match self.state {
            State::Sha256(_) => Algorithm::Sha256,
            State::Sha384(_) => Algorithm::Sha384,
            State::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Sha256(h) => h.update(data),
            State::Sha384(h) => h.update(data),
            State::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        let algorithm = self.algorithm();
        match self.state {
            State::Sha256(h) => finish_hash(algorithm, &h.finalize()),
            State::Sha384(h) => finish_hash(algorithm, &h.finalize()),
            State::Sha512(h) => finish_hash(algorithm, &h.finalize()),
        }
    }
}

/// The hash has exactly `algorithm.size()` bytes, so `from_hash` cannot refuse it;
/// the fallback keeps this free of panics all the same.
fn finish_hash(algorithm: Algorithm, hash: &[u8]) -> Digest {
    Digest::from_hash(algorithm, hash).unwrap_or_else(|_| Digest::from_validated(algorithm, ""))
}

impl io::Write for Digester {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reports whether the bytes written to it hash to an expected digest.
///
/// ```
/// use std::io::Write;
/// use imgstore_digest::Digest;
///
/// let expected = Digest::from_bytes(b"hello");
/// let mut v = expected.verifier();
/// v.write_all(b"hell")?;
/// assert!(!v.verified());
/// v.write_all(b"o")?;
/// assert!(v.verified());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    expected: Digest,
    digester: Digester,
}

impl Verifier {
    /// A verifier for `expected`.
    pub fn new(expected: Digest) -> Verifier {
        let digester = expected.algorithm().digester();
        Verifier { expected, digester }
    }

    /// A verifier for a digest string; go-digest panics on an unusable string,
    /// this returns the parse error (no separator, empty algorithm, unsupported).
    pub fn for_str(expected: &str) -> Result<Verifier, DigestError> {
        Digest::parse(expected).map(Verifier::new)
    }

    /// The digest the content must hash to.
    pub fn expected(&self) -> &Digest {
        &self.expected
    }

    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.digester.update(data);
    }

    /// True when the bytes written so far hash to the expected digest. It may
    /// be asked at any time; more writes may change the answer.
    pub fn verified(&self) -> bool {
        self.digester.clone().finish() == self.expected
    }
}

impl io::Write for Verifier {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
