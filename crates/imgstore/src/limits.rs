//! The limits of an import, in one place.
//!
//! An image tarball or layout is untrusted input: every structure in it
//! that costs work or memory per entry is bounded, and an input past a
//! bound is refused with an error naming the limit (nothing is written).
//! The bounds are generous for real images (the largest public
//! multi-platform indexes list a few dozen manifests; Docker refuses more
//! than 125 layers when it runs an image) and small enough that a crafted
//! input cannot make an import take hours or gigabytes.

/// Manifests, indexes, configs and archive JSON members (`manifest.json`,
/// `index.json`) larger than this are refused rather than read into memory
/// (containerd reads at most 4 MiB of a manifest or index; configs with a
/// long history can be larger).
pub(crate) const MAX_JSON_BLOB: u64 = 16 << 20;

/// Nested indexes deeper than this are refused.
pub(crate) const MAX_INDEX_DEPTH: usize = 8;

/// An image with more layers than this is refused (moby stops at 125 for
/// overlay; each layer costs a record write on import).
pub(crate) const MAX_LAYERS: usize = 1000;

/// The descriptors (index entries, configs, layers; `manifest.json`
/// entries, their configs and layers) and names one import may list in
/// total, counted over every distinct index, manifest and entry read. Each
/// distinct blob is read and verified once however many paths reach it, so
/// this bounds the work of the plan, not of the blobs it stores. Room for
/// one image with tens of thousands of names (a registry mirror's tags).
pub(crate) const MAX_IMPORT_DESCRIPTORS: usize = 100_000;

/// The JSON bytes (indexes, manifests, configs) one import may read and
/// keep in memory in total, over its distinct blobs.
pub(crate) const MAX_IMPORT_JSON_BYTES: u64 = 256 << 20;

/// Members of a tar archive beyond this many are refused.
pub(crate) const MAX_ARCHIVE_MEMBERS: usize = 1_000_000;

/// A tar header record (GNU long name or link, pax extended header) larger
/// than this is refused, as Go's `archive/tar` (Docker's reader) refuses
/// records over 1 MiB; such a record is held in memory to be applied to
/// the next member.
pub(crate) const MAX_TAR_HEADER_RECORD: u64 = 1 << 20;

/// Links followed in a row inside an archive before giving up (a loop).
pub(crate) const MAX_LINK_HOPS: usize = 40;
