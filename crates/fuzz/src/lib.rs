//! Hostile input for imgstore: one function per fuzz target, the mutation
//! loop `cargo xtask fuzz` runs on the stable toolchain, and a writer of raw
//! tar archives for the crafted-archive corpus (path traversal, link escapes,
//! device files, bombs).
//!
//! The same target functions back three drivers: the `imgstore-fuzz` binary
//! (an in-process loop over a seed corpus with its own mutations, a per-input
//! time limit and an allocation cap), the bounded proptest loops of CI
//! (`tests/targets.rs`) and the cargo-fuzz targets in `fuzz/` (libFuzzer, on
//! a nightly toolchain). A target returns normally on any input; a panic is a
//! finding (the loop catches it and saves the input).
//!
//! ```
//! use imgstore_fuzz::{Target, targets};
//!
//! // Any bytes: parsed or refused, never a panic.
//! targets::digest(b"sha256:\xff");
//! targets::reference(b"docker.io/library/busybox:latest");
//! let mut archive = Target::Archive.runner()?;
//! archive.run(b"not a tar");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod hostile;
pub mod mutate;
pub mod seeds;
pub mod tarball;
pub mod targets;

pub use targets::{Runner, Target};
