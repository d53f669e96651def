//! OCI content digests, as go-digest v1.0.0 defines them.
//!
//! A [`Digest`] is the string `algorithm:encoded` that names a blob by its hash
//! (`sha256:e3b0c442…`). This crate parses and validates digests with exactly
//! go-digest's grammar, precedence and error kinds ([`DigestError`]), hashes
//! bytes and readers ([`Algorithm`], [`Digester`]), checks streamed content
//! against an expected digest ([`Verifier`]) and computes image-spec chain IDs
//! ([`chain_id`]). It builds on `sha2`, which picks SHA-NI or AVX2 code at run
//! time where the CPU has them. It does no I/O of its own.
//!
//! ```
//! use imgstore_digest::{Algorithm, Digest, DigestError};
//!
//! let d = Algorithm::Sha256.from_bytes(b"hello");
//! assert_eq!(d.as_str(), "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
//!
//! let parsed: Digest = d.as_str().parse()?;
//! assert_eq!(parsed, d);
//! assert!(matches!(Digest::parse("sha256:abc"), Err(DigestError::InvalidLength { .. })));
//! # Ok::<(), DigestError>(())
//! ```
//!
//! `Digest` is `Send + Sync`, cheap to clone (sha256 digests are stored inline,
//! others behind an `Arc`) and ordered by its string form.

mod algorithm;
mod chain;
mod digest;
mod digester;
mod error;
mod hasher;
mod hex;

pub use algorithm::Algorithm;
pub use chain::{chain_id, chain_id_unchecked, chain_ids};
pub use digest::{Digest, HashBytes};
pub use digester::{Digester, Verifier};
pub use error::{DigestError, FormatProblem, shorten};
pub use hasher::{BuildDigestHasher, DigestHasher};
