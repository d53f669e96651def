//! The layer store: one record per layer chain, and the references that keep
//! layers alive.
//!
//! A layer is identified by its [`ChainId`] (image-spec: the diff ID of the
//! bottom layer, then `sha256("<parent chain> <diff id>")` per layer above).
//! The store keeps one [`Layer`] record per chain, through the backend's
//! [`RecordStore`](imgstore_backend::RecordStore), and counts references:
//!
//! - every layer holds one reference on its parent, derived from the records'
//!   parent links when the store opens (never stored as a number);
//! - [`LayerStore::register`] and [`LayerGetReleaser::get`] take anonymous,
//!   *transient* references, as moby's do: kept in memory, re-taken by their
//!   holders when they restore (the image store takes one per image), so an
//!   import that crashes leaves nothing to clean and no count can drift;
//! - [`LayerStore::hold`] takes a named, *persistent* reference, recorded so
//!   that it survives reopening, for callers that need that.
//!
//! When the last reference on a layer goes, its record and its blob are deleted
//! and its parent is released in turn, iteratively (a 1000-layer chain does
//! not recurse), in one atomic batch; [`LayerGetReleaser::release`] returns the
//! [`LayerMetadata`] of every layer removed. Releasing a reference that is
//! not held is an error ([`LayerError::NotHeld`]), not a panic as in moby.
//!
//! ```ignore
//! let layers = LayerStore::open(backend)?;
//! let base = layers.register(NewLayer::new(diff_a, 7168), None)?;
//! let top = layers.register(NewLayer::new(diff_b, 4608), Some(base.chain_id()))?;
//! layers.release(base.chain_id())?;                // still held by `top`
//! let removed = layers.release(top.chain_id())?;
//! assert_eq!(removed.len(), 2);                     // top, then base
//! ```

mod chain;
mod error;
mod store;

pub use chain::ChainId;
pub use error::LayerError;
pub use store::{
    BlobRef, Layer, LayerGetReleaser, LayerMetadata, LayerStore, NewLayer, RestoreProblem,
};
