//! Named image records, as containerd's metadata database keeps them.
//!
//! An [`ImageRecord`] maps a name (`docker.io/library/busybox:latest`) to a
//! target [`Descriptor`] (the manifest or index), with labels and nanosecond
//! timestamps. A [`RefStore`] keeps records per namespace through the
//! backend's [`RecordStore`](imgstore_backend::RecordStore) (bucket
//! [`BUCKET`], key `<namespace>/<name>`) and keeps no copy: opening reads
//! nothing, `get` is one record read, every change is one atomic batch with
//! preconditions on what it read (and can carry the caller's own ops:
//! `stage_*` then [`RefStore::commit`]), and [`RefStore::check`] reports
//! stored records that are unusable. It
//! follows containerd's `metadata.imageStore`: `create` (AlreadyExists),
//! `get`, `list` with containerd's [filter language](filters), `update` with
//! field paths (created-at kept, updated-at strictly later, no renaming),
//! `delete` optionally conditional on the target digest; containerd's label
//! limit ([`validate_label`]) and namespace identifiers ([`validate_namespace`];
//! a missing namespace is `FailedPrecondition`).
//!
//! The [`reference`](mod@reference) module parses and normalises Docker references
//! (`busybox` -> `docker.io/library/busybox:latest`) and ranks them as
//! containerd's CRI plugin does. It builds on `imgstore-digest` and
//! `imgstore-backend`; any backend works (`imgstore-sqlite`, `imgstore-fs`).
//!
//! ```
//! use std::sync::Arc;
//! use imgstore_digest::Digest;
//! use imgstore_refs::{Descriptor, ImageRecord, RefStore};
//!
//! let dir = tempfile::tempdir()?;
//! let backend = Arc::new(imgstore_fs::FsBackend::open(dir.path())?);
//! let refs = RefStore::open(backend)?;
//!
//! let target = Descriptor::new(
//!     "application/vnd.oci.image.index.v1+json",
//!     Digest::from_bytes(b"index"),
//!     512,
//! );
//! let record = ImageRecord::new("docker.io/library/busybox:latest", target)
//!     .with_label("env", "prod");
//! let created = refs.create("default", record)?;
//! assert_eq!(created.created_at, created.updated_at);
//!
//! let prod = refs.list("default", &["labels.env==prod"])?;
//! assert_eq!(prod.len(), 1);
//! assert_eq!(*prod[0], created); // reads share the stored record (an `Arc`)
//!
//! let mut relabelled = created.clone();
//! relabelled.labels.insert("env".into(), "test".into());
//! let updated = refs.update("default", relabelled, &["labels.env"])?;
//! assert!(updated.updated_at > created.updated_at);
//!
//! refs.delete("default", &updated.name, Some(&updated.target.digest))?;
//! assert!(refs.get("default", &updated.name).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod encoding;
mod error;
pub mod filters;
pub mod glob;
mod labels;
mod record;
pub mod reference;
mod store;

pub use error::RefsError;
pub use labels::{
    MAX_LABEL_SIZE, MAX_NAMESPACE_LEN, RESERVED_LABEL_PREFIXES, is_reserved_label_key,
    validate_label, validate_namespace,
};
pub use record::{Descriptor, ImageRecord};
pub use store::{BUCKET, RefProblem, RefStore, TargetChange};
