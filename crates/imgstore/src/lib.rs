//! imgstore: a local container image store, as one crate.
//!
//! [`Store`] composes the plumbing crates the way DESIGN.md's "How the facade
//! composes the stores" says: a content + records backend holds every blob
//! (indexes, manifests, configs, layers), the layer records and the names; a
//! second backend, dedicated to the image store, holds image configs and
//! their metadata (the image store restores by walking its backend's content,
//! so it must not see layer blobs). On top: the [layer store](layer), the
//! [image store](image), the [names](refs) of one namespace and the derived
//! [CRI cache](cri), rebuilt from the names on open.
//!
//! ```text
//! <root>/content.db, <root>/images.db    Backend::Sqlite (the default)
//! <root>/content/,   <root>/imagedb/     Backend::Fs (moby's layout)
//! ```
//!
//! [`Store::import_oci_layout`] imports an OCI image layout directory, all or
//! nothing, verifying every blob and every layer's diff ID;
//! [`Store::images`] and [`Store::resolve`] answer what is stored. The crates
//! below are re-exported ([`digest`], [`layer`], [`image`], ...) so a user
//! depends on this one crate.
//!
//! ```
//! use imgstore::{Backend, Options, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open_with(dir.path(), Options { backend: Some(Backend::Fs), ..Options::default() })?;
//! assert!(store.images()?.is_empty());
//!
//! // A directory that is not an OCI layout is refused, naming the problem.
//! match store.import_oci_layout(dir.path().join("nowhere")) {
//!     Err(err) => {
//!         assert_eq!(err.kind(), imgstore::backend::ErrorKind::InvalidArgument);
//!         assert!(err.to_string().contains("oci-layout"));
//!     }
//!     Ok(imported) => panic!("imported {imported:?} from nowhere"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Store::import_archive`] imports an oci-archive or `docker save` tarball
//! the same way, reading members in place (never unpacking the tar).
//! [`Store::import`] takes any of these (a directory, a tar, a gzipped tar)
//! and [`Store::import_with`] chooses the platforms of multi-platform
//! indexes ([`ImportOptions`]: the host's by default, all, or one).
//!
//! [`Store::tag`], [`Store::untag`] and [`Store::remove`] manage names and
//! images with Docker's semantics (`docker tag`, `rmi`: an image goes with
//! its last name, its layers with their last user); [`Store::gc`] removes
//! what nothing reachable uses, such as blobs an interrupted import left.
//!
//! [`Store::export`] writes images to an OCI layout directory, an
//! oci-archive or a `docker save` tar ([`ExportFormat`]), streamed and
//! re-verified, renamed into place only once complete.
//!
//! [`Store::pull`] and [`Store::push`] move images from and to OCI
//! registries ([`registry`]), pulls through the same plan and apply as an
//! OCI layout import.
//!
//! [`Store::list_images`], [`Store::inspect`], [`Store::history`] and
//! [`Store::layer_usage`] are read-only views shaped like Docker's
//! (`images --filter`, `inspect`, `history`); [`default_root`] is where a
//! store lives when the user does not say (XDG).

mod any_backend;
mod archive;
mod changes;
mod docker;
mod error;
mod export;
mod fsck;
mod import;
mod limits;
mod lock;
mod manage;
mod migrate;
mod name_index;
mod namespaces;
mod oci;
pub mod registry;
mod root;
mod store;
mod tarscan;
mod timestamp;
mod tmpdir;
mod usage;
mod view;

pub use any_backend::AnyBackend;
pub use docker::{Removed, RepoNames, repo_names};
pub use error::{Error, Result};
pub use export::{ExportFormat, ExportReport, ExportedImage};
pub use fsck::{FsckProblem, FsckReport};
pub use import::{ImportOptions, Platform, PlatformChoice, PlatformError};
pub use manage::{GcReport, PruneReport, RemoveOptions, RemoveReport, Untagged};
pub use oci::{Imported, SYNTHESIZED_MANIFEST, blob_verifications_on_this_thread, digest_shown};
pub use root::default_root;
pub use store::{Backend, ImageSummary, Images, Options, Store};
pub use usage::{DiskUsage, ImageUsage};
pub use view::{
    ContainerConfig, GraphDriver, HealthConfig, HistoryEntry, ImageQuery, InspectMetadata,
    InspectRootFs, InspectView, LayerUsage,
};

pub use imgstore_backend as backend;
pub use imgstore_cri as cri;
pub use imgstore_digest as digest;
pub use imgstore_digestset as digestset;
pub use imgstore_fs as fs;
pub use imgstore_image as image;
pub use imgstore_layer as layer;
pub use imgstore_refs as refs;
pub use imgstore_sqlite as sqlite;
