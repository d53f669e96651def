//! A short-ID index of OCI digests: add and remove digests, find one by a
//! unique prefix of its hex, and list the shortest codes that stay unique —
//! what `docker images` does with `2cf24dba5fb0`.
//!
//! [`DigestSet`] follows go-digest's `digestset` package (the index moby's
//! image store searches) but with every operation O(log n), where go's `Add`
//! and `Remove` are O(n): digests are kept as raw hashes (big-endian 64-bit
//! words, whose order is hex order) in one B-tree per
//! algorithm, and a hex prefix is a range of that tree. It builds on
//! [`imgstore_digest`] and does no I/O. [`SharedDigestSet`] is the same set
//! behind an `RwLock`.
//!
//! ```
//! use imgstore_digest::Algorithm;
//! use imgstore_digestset::{DigestSet, LookupError};
//!
//! let mut set = DigestSet::new();
//! let hello = Algorithm::Sha256.from_bytes(b"hello"); // sha256:2cf24dba…
//! let world = Algorithm::Sha256.from_bytes(b"world"); // sha256:486ea462…
//! set.add(&hello);
//! set.add(&world);
//!
//! assert_eq!(set.lookup("2cf2")?, hello);
//! assert_eq!(set.lookup("sha256:486e")?, world);
//! assert_eq!(set.lookup(hello.as_str())?, hello);
//! assert!(matches!(set.lookup("abc"), Err(LookupError::NotFound { .. })));
//!
//! let codes = set.short_code_table(3);
//! assert_eq!(codes[&hello], "2cf");
//! # Ok::<(), LookupError>(())
//! ```
//!
//! # Lookup rules (go-digest's, with one fix)
//!
//! - The query is read as go-digest reads it, by parsing it as a digest first.
//!   A query without `:` is a bare prefix of the hex of an entry of any
//!   algorithm (`1234`, a full 64-digit hex, or `""`). A query
//!   `alg:hex` with a supported algorithm is a hex prefix over that
//!   algorithm's entries (`sha256:1234`, or a full digest). `sha256:`,
//!   `sha256`, `foo:1234`, upper-case hex and anything not hex match nothing.
//! - One matching entry is the answer; several are
//!   [`LookupError::Ambiguous`]; none is [`LookupError::NotFound`]. An exact
//!   `alg:hex` match is always found. The empty query finds the only entry of
//!   a one-entry set. Any query on an empty set is `NotFound`.
//! - **Fixed on purpose:** go-digest checks an algorithm-qualified prefix
//!   against the first one or two entries in hex order whatever their
//!   algorithm, so in the set {`sha256:1234aa…`, `sha512:1234bb…`} go's
//!   `sha512:1234` is `NotFound` although `sha512:1234bb…` exists, and a
//!   sha512 entry between two sha256 ones can hide an ambiguity. Here an
//!   algorithm-qualified prefix considers only entries of that algorithm:
//!   `sha512:1234` finds `sha512:1234bb…`. Sets of one algorithm (every image
//!   store in practice) answer exactly as go-digest does.
//! - A bare query keeps go's rule across algorithms: a 64-digit hex equal to a
//!   sha256 entry that also prefixes a sha512 entry is `Ambiguous`.
//!
//! [`DigestSet::short_code_table`] reproduces go-digest's `ShortCodeTable`,
//! except that a code go would make unresolvable (possible only with mixed
//! algorithms) becomes the full digest string, so every code looks up to its
//! own digest.
//!
//! # Cost
//!
//! `add`, `remove`, `contains` and `lookup` are O(log n); `lookup` allocates
//! nothing but the digest it returns. Measured by the criterion group
//! `digestset` (`benches/benches/digestset.rs`: `digestset/add/1000000`, ...)
//! and, for memory per entry, `cargo run --release -p imgstore-benches
//! --example digestset_memory`.

mod error;
mod query;
mod set;
mod shared;
mod short_code;
mod table;

pub use error::LookupError;
pub use set::{DigestSet, Iter};
pub use shared::SharedDigestSet;
