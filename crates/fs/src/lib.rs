//! The filesystem backend of imgstore: content, metadata and records in a
//! directory, in the layout of moby's `image/fs.go`.
//!
//! [`FsBackend`] implements [`StoreBackend`](imgstore_backend::StoreBackend)
//! and [`RecordStore`](imgstore_backend::RecordStore) from
//! `imgstore-backend` on top of plain files, hashing with `imgstore-digest`:
//!
//! ```text
//! <root>/lock                          flock'ed (shared) while open; holds a pid
//! <root>/content/sha256/<hex>          the bytes of each blob (mode 0600)
//! <root>/metadata/sha256/<hex>/<key>   one file per metadata key
//! <root>/records/snapshot, records/log the record store (see below), and
//! <root>/records/lock                  its writers' flock
//! ```
//!
//! so a Docker `image/<driver>/imagedb` directory opens as a store, read and
//! write. Every write is durable and atomic: a `.tmp-*` file in the target's
//! directory is written, fsynced, renamed into place, and the directory is
//! fsynced; `walk` never lists temporary files and opening removes leftovers
//! of interrupted writes. `set_deferred` and `write_blob_deferred` skip the
//! fsyncs (temp file and rename only); the backend's next record batch first
//! makes them durable with one `syncfs(2)` of the filesystem, so a record
//! is never durable before the blob it names. Every read re-hashes the content. Records live in
//! memory, backed by an append-only log of checksummed batch frames (fsynced
//! per batch) that is compacted into a snapshot; keys never become paths.
//!
//! Any number of `FsBackend`s, in this process and others, may have one
//! root open at once. Each record read first catches up with the log (one
//! `stat` when nothing changed; the new frames when another backend
//! appended; snapshot and log again after another compacted), and a batch
//! is checked and appended under an exclusive `flock` on `records/lock`, so
//! preconditions always see every other backend's batches.
//! [`RecordStore::change_counter`](imgstore_backend::RecordStore::change_counter)
//! is the log's generation and length. Only an opener that finds no other
//! backend open removes `.tmp-*` leftovers (with one open, they may be its
//! writes in flight). Lock waits end after [`FsOptions::lock_timeout`] with
//! `FailedPrecondition` naming the holder's pid.
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
