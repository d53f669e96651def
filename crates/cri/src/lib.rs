//! The CRI image cache: what the kubelet asks of a node's images, answered
//! from memory.
//!
//! This is containerd's CRI image store, rebuilt: [`RefCache`] maps each
//! reference (`docker.io/library/busybox:latest`, `sha256:…`) to an image ID,
//! and keeps one [`CriImage`] per ID with every reference that names it,
//! sorted most-informative first and deduplicated, its top layer's chain ID,
//! size and config, and whether it is pinned (it is while any of its
//! references is pinned). An image leaves the cache with its last reference.
//! [`RefCache::get`] takes a full ID or a unique prefix of it, through
//! `imgstore-digestset`.
//!
//! The cache is derived state, never a second source of truth: the facade
//! rebuilds it on open from its names and images ([`RefCache::rebuild`]) and
//! calls [`RefCache::update`] on every tag, untag, pull and remove; `update`
//! asks an [`ImageResolver`] ([`StoreResolver`] reads the names, manifests
//! and images themselves) what the reference names now (outside any lock)
//! and then changes the cache in one short write. Readers (`resolve`, `get`,
//! `list`) take a read lock only, so they never wait for a slow resolution.
//!
//! [`platform`] is the one rule for platforms: this host's ([`Platform::host`]),
//! containerd's matching and normalisation, and the order in which a host
//! prefers an index's entries. A name of an index means the first entry in
//! that order whose manifest and image are stored ([`read_names`]).
//!
//! ```
//! use imgstore_cri::{CriImage, RefCache};
//!
//! let cache = RefCache::new();
//! let id = "sha256:1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".parse()?;
//! cache.update_with("docker.io/library/busybox:latest", Some(CriImage::new(id, "docker.io/library/busybox:latest")))?;
//! assert_eq!(cache.resolve("docker.io/library/busybox:latest")?.as_str(), &id_string()[..]);
//! assert_eq!(cache.get("11234567")?.references, ["docker.io/library/busybox:latest"]);
//! # fn id_string() -> String { "sha256:1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into() }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cache;
mod error;
mod index;
pub mod platform;
mod resolver;

pub use cache::{ImageResolver, RefCache};
pub use error::CriError;
pub use index::{CriImage, ImageIndex, rank_references};
pub use platform::{Platform, PlatformError};
pub use resolver::{
    ManifestTarget, NameTarget, PINNED_LABEL, StoreResolver, images_of, read_names, read_records,
};
