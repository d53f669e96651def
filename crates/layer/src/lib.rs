//! The layer store: one record per layer chain, and the references that keep
//! layers alive.
//!
//! A layer is identified by its [`ChainId`] (image-spec: the diff ID of the
//! bottom layer, then `sha256("<parent chain> <diff id>")` per layer above).
//! The store keeps one [`Layer`] record per chain, through the backend's
//! [`RecordStore`](imgstore_backend::RecordStore), and nothing else: the
//! records are the index. Opening reads nothing; every read is a point read
//! or a bounded prefix probe, so a command costs the same at 10 or 100 000
//! layers. The records (bucket / key):
//!
//! - `layers/<chain>`: the layer record (primary);
//! - `layer-holders/<chain> <holder>`: a persistent reference. Named holders
//!   come from [`LayerStore::hold`] (`image:<64 hex>` is an image's reference
//!   on its top layer); `layer:<child chain>` is written by
//!   [`LayerStore::register`] on the parent, in the child's batch (derived);
//! - `layer-blobs/<blob digest> <chain>`: one per layer that names a blob,
//!   so "does another layer use this blob?" is one probe (derived).
//!
//! [`LayerStore::register`] and [`LayerGetReleaser::get`] also take
//! anonymous, *transient* references, as moby's do: kept in this process's
//! memory only (a count per chain of what this store handed out).
//!
//! When a layer's last reference goes (no holder record left and no
//! transient reference here), its record, its `layer-blobs` entry and its
//! `layer:` holder on the parent are deleted, and the parent is released in
//! turn, iteratively (a 1000-layer chain does not recurse), in one atomic
//! batch; then each blob no other layer uses is deleted.
//! [`LayerGetReleaser::release`] returns the [`LayerMetadata`] of every layer
//! removed. Releasing a reference that is not held is an error
//! ([`LayerError::NotHeld`]), not a panic as in moby.
//!
//! Derived records are checked, not trusted: [`LayerStore::check`] recomputes
//! them from the layer records (O(n), for fsck) and reports each drift as a
//! [`LayerProblem`]; [`LayerStore::repair_derived`] rewrites them (fsck's
//! repair, and the one-time migration of a store written before they
//! existed: until it ran, a release could free a parent that a child still
//! uses). A writer mutex serialises one store's changes; several processes
//! (or stores over one backend) must be serialised by the caller.
//!
//! ```ignore
//! let layers = LayerStore::open(backend)?;
//! let base = layers.register(NewLayer::new(diff_a, 7168), None)?;
//! let top = layers.register(NewLayer::new(diff_b, 4608), Some(base.chain_id()))?;
//! layers.release(base.chain_id())?;                // still held by `top`
//! assert_eq!(layers.children(base.chain_id())?, [top.chain_id().clone()]);
//! let removed = layers.release(top.chain_id())?;
//! assert_eq!(removed.len(), 2);                     // top, then base
//! ```

mod chain;
mod check;
mod error;
mod store;

pub use chain::ChainId;
pub use check::LayerProblem;
pub use error::LayerError;
pub use store::{
    BlobRef, IMAGE_HOLDER, Layer, LayerGetReleaser, LayerMetadata, LayerStaging, LayerStore,
    NewLayer,
};
