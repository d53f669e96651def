//! The image store: image configs by ID, parent/child links, heads, short-ID
//! search — moby's image `Store`, over any
//! [`StoreBackend`](imgstore_backend::StoreBackend) and any
//! [`LayerGetReleaser`](imgstore_layer::LayerGetReleaser).
//!
//! An image's ID is the sha256 of its exact config bytes ([`ImageId`]); the
//! config is parsed ([`Image`]) but never re-serialised for the ID.
//!
//! The store keeps nothing in memory: [`Store::open`] reads nothing, and
//! every call reads the records it concerns in the backend's
//! [`RecordStore`](imgstore_backend::RecordStore), so two stores over one
//! backend see each other's changes at once. The records:
//!
//! - `images/<64 hex>`: the image's [`Summary`] (parent, created, top
//!   layer, sizes, OS, labels), what a listing needs without reading the
//!   config. The image exists iff its summary does.
//! - `image-children/<parent hex> <child hex>`: one empty record per
//!   parent/child link (the children's `parent` metadata, indexed).
//! - In the layer store: the image's persistent hold `image:<hex>` on its
//!   top layer. [`ImageStore::delete`] drops it and returns what the layer
//!   store freed.
//!
//! The records are derived from the configs, their `parent` metadata and
//! the layer records: [`Store::check`] recomputes them and reports each
//! disagreement ([`ImageProblem`]); [`Store::rebuild_index`] rewrites them
//! (fsck's repair, and the one-time migration of a store that has configs
//! and metadata only). Create writes the config, then the hold, then the
//! summary last, so a crash leaves at most a config or a hold that nothing
//! lists. Short IDs are a bounded prefix scan of the summary keys (two
//! records at most); configs whose OS this host cannot run are refused at
//! create, as moby does. Every walk of the parent graph is bounded.
//!
//! ```ignore
//! let store = Store::open(backend, layers)?;
//! let id = store.create(br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#)?;
//! assert_eq!(store.search(&id.short()[..6])?, id);
//! ```

mod check;
mod error;
mod image;
mod store;
mod summary;
pub mod time;

pub use check::{ImageProblem, LayerHolders};
pub use error::ImageError;
pub use image::{History, Image, ImageId, RootFs};
pub use store::{ImageStaging, ImageStore, StagedImage, Store};
pub use summary::{
    CHILDREN_BUCKET, IMAGES_BUCKET, SUMMARY_FORMAT, Summary, image_of_layer_holder, layer_holder,
};
