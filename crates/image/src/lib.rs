//! The image store: image configs by ID, parent/child links, heads, short-ID
//! search and restore — moby's image `Store`, over any
//! [`StoreBackend`](imgstore_backend::StoreBackend) and any
//! [`LayerGetReleaser`](imgstore_layer::LayerGetReleaser).
//!
//! An image's ID is the sha256 of its exact config bytes ([`ImageId`]); the
//! config is parsed ([`Image`]) but never re-serialised for the ID. Each image
//! holds exactly one (transient, re-taken on restore) reference on its top layer;
//! [`ImageStore::delete`] releases it and returns what the layer store freed.
//!
//! [`Store::open`] restores from the backend: it walks the content, verifies
//! and parses every config, takes each image's (transient) layer reference
//! and relinks children from `parent` metadata. An image whose
//! config is corrupt or unparsable, whose OS is foreign or whose layer is
//! missing is skipped and reported ([`Store::skipped`]), never deleted; a
//! stored `parent` link that closes a cycle is not followed and is reported
//! ([`Store::ignored_parents`]). Every walk of the parent graph is bounded.
//!
//! Everything a reader asks (`get`, `search`, `children`, `heads`, `map`,
//! `len`) is served from memory under a read lock; readers never block each
//! other.
//!
//! ```ignore
//! let store = Store::open(backend, layers)?;
//! let id = store.create(br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#)?;
//! assert_eq!(store.search(&id.short()[..6])?, id);
//! ```

mod error;
mod image;
mod store;
pub mod time;

pub use error::ImageError;
pub use image::{History, Image, ImageId, RootFs};
pub use store::{IgnoredParent, ImageStore, SkippedImage, Store};
