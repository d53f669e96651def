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
//! - a *holder* (an image, an import in progress, any caller-chosen name)
//!   holds at most one reference on a layer, taken by [`LayerStore::register`],
//!   [`LayerGetReleaser::get`] or [`LayerStore::hold`] and dropped by
//!   [`LayerGetReleaser::release`]. Taking it twice under one name is one
//!   reference, which makes an image's reference on its top layer idempotent.
//!
//! A holder's reference is [`Durability::Transient`] (kept in memory, as
//! moby's are; the image store re-takes its references when it restores, and a
//! crashed import leaves nothing behind) or [`Durability::Persistent`]
//! (`hold`: recorded, survives reopening).
//!
//! When the last reference on a layer goes, its record and its blob are deleted
//! and its parent is released in turn, iteratively (a 1000-layer chain does
//! not recurse), in one atomic batch; [`LayerGetReleaser::release`] returns the
//! [`LayerMetadata`] of every layer removed. Releasing a reference that is
//! not held is an error ([`LayerError::NotHeld`]), not a panic as in moby.
//!
//! ```ignore
//! let layers = LayerStore::open(backend)?;
//! let base = layers.register(NewLayer::new(diff_a, 7168), None, "import/1")?;
//! let top = layers.register(NewLayer::new(diff_b, 4608), Some(base.chain_id()), "import/1")?;
//! layers.release(base.chain_id(), "import/1")?;     // still held by `top`
//! let removed = layers.release(top.chain_id(), "import/1")?;
//! assert_eq!(removed.len(), 2);                     // top, then base
//! ```

mod chain;
mod error;
mod store;

pub use chain::ChainId;
pub use error::LayerError;
pub use store::{
    BlobRef, Durability, Layer, LayerGetReleaser, LayerMetadata, LayerStore, NewLayer,
    RestoreProblem,
};
