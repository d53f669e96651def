//! The SQLite backend of imgstore: content, per-digest metadata and records in
//! one database file, blobs larger than an inline limit in files beside it.
//!
//! Built on `imgstore-backend` (it implements [`StoreBackend`] and
//! [`RecordStore`]) and on rusqlite with a bundled SQLite. The database runs in
//! WAL mode, so readers (a pool of connections) never wait for each other or
//! for the one writer; several processes may share a database. Commits are
//! durable with `synchronous=NORMAL` by default, `FULL` as an
//! [option](SqliteOptions::synchronous). The schema is versioned with
//! `PRAGMA user_version` and migrated forward on open ([`schema`]); a database
//! from a newer imgstore is refused untouched.
//!
//! Every read re-hashes the content (`DataCorruption` on a mismatch). Blobs
//! above [`SqliteOptions::inline_limit`] (256 KiB by default) live in
//! `<db>.blobs/sha256/<hex>`, written durably before the row naming them
//! commits; leftovers of interrupted writes are removed on open and by
//! [`SqliteBackend::gc_orphan_files`].
//!
//! ```
//! use imgstore_backend::{Batch, RecordStore, StoreBackend};
//! use imgstore_sqlite::SqliteBackend;
//!
//! let dir = tempfile::tempdir()?;
//! let store = SqliteBackend::open(dir.path().join("imgstore.db"))?;
//!
//! let config = br#"{"architecture":"amd64","os":"linux"}"#;
//! let id = store.set(config)?;
//! assert_eq!(store.get(&id)?, config);
//! store.set_metadata(&id, "parent", b"sha256:...")?;
//!
//! let mut batch = Batch::new();
//! batch.require_absent("names", "docker.io/library/busybox:latest");
//! batch.put("names", "docker.io/library/busybox:latest", id.to_string().into_bytes());
//! store.apply(&batch)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Performance claims (get, single and batched set, parallel reads) are
//! measured by the criterion group `backend/sqlite/*` in `benches/`.

mod backend;
mod content;
mod error;
use imgstore_backend::fault_point as fault;
mod files;
mod options;
mod reader;
mod records;
pub mod schema;

pub use backend::{ConnectionSettings, GcReport, SqliteBackend};
pub use options::{MAX_INLINE_LIMIT, SqliteOptions, Synchronous};

#[doc(no_inline)]
pub use imgstore_backend::{RecordStore, StoreBackend};
