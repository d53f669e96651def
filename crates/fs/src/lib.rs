//! The filesystem backend of imgstore: content, metadata and records in a
//! directory, in the layout of moby's `image/fs.go`.
//!
//! [`FsBackend`] implements [`StoreBackend`](imgstore_backend::StoreBackend)
//! and [`RecordStore`](imgstore_backend::RecordStore) from
//! `imgstore-backend` on top of plain files, hashing with `imgstore-digest`:
//!
//! ```text
//! <root>/lock                          flock'ed while open; holds the holder's pid
//! <root>/content/sha256/<hex>          the bytes of each blob (mode 0600)
//! <root>/metadata/sha256/<hex>/<key>   one file per metadata key
//! <root>/records/snapshot, records/log the record store (see below)
//! ```
//!
//! so a Docker `image/<driver>/imagedb` directory opens as a store, read and
//! write. Every write is durable and atomic: a `.tmp-*` file in the target's
//! directory is written, fsynced, renamed into place, and the directory is
//! fsynced; `walk` never lists temporary files and opening removes leftovers
//! of interrupted writes. Every read re-hashes the content. Records live in
//! memory, backed by an append-only log of checksummed batch frames (fsynced
//! per batch) that is compacted into a snapshot; keys never become paths.
//!
//! One `FsBackend` per root at a time: opening takes an advisory lock on
//! `<root>/lock`, and a second opener (another process, or this one) waits
//! up to [`FsOptions::lock_timeout`] and then fails with `FailedPrecondition`
//! naming the holder's pid.
//!
//! ```
//! use imgstore_backend::{Batch, RecordStore, StoreBackend};
//! use imgstore_fs::FsBackend;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let store = FsBackend::open(dir.path().join("imagedb"))?;
//! let id = store.set(br#"{"architecture":"amd64"}"#)?;
//! store.set_metadata(&id, "lastUpdated", b"2024-01-01T00:00:00Z")?;
//! assert_eq!(store.get(&id)?, br#"{"architecture":"amd64"}"#);
//!
//! let mut batch = Batch::new();
//! batch.require_absent("names", "busybox:latest");
//! batch.put("names", "busybox:latest", id.as_str().as_bytes().to_vec());
//! store.apply(&batch)?;
//! assert!(store.get_record("names", "busybox:latest")?.is_some());
//! # Ok(())
//! # }
//! ```
//!
//! Performance (criterion group `backend`, `benches/benches/backend.rs`,
//! 1.5 KiB configs): `backend/fs/get`, `backend/fs/get_metadata`,
//! `backend/fs/walk_per_entry`, and `backend/fs/set` beside its floor
//! `backend/fs/floor_write_fsync_rename_dirsync`.

mod atomic;
mod backend;
use imgstore_backend::fault_point as fault;
mod lock;
mod records;
mod sys;

pub use backend::{FsBackend, FsOptions};
