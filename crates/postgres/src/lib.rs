//! The PostgreSQL backend of imgstore: content, per-digest metadata and
//! records in one schema of a PostgreSQL database, which many processes on
//! many machines share.
//!
//! Built on `imgstore-backend` (it implements [`StoreBackend`] and
//! [`RecordStore`]) and on the `postgres` client through an `r2d2` pool.
//! The schema is versioned in a table and migrated forward on open
//! ([`schema`]); a store of a newer imgstore is refused untouched.
//!
//! - **Blobs** up to [`CHUNK`] (1 MiB: image configs, manifests) are one
//!   row; larger ones (layers) are rows of 1 MiB chunks, written in one
//!   transaction as they stream in and read one chunk at a time as they
//!   stream out. Every read re-hashes the content (`DataCorruption` on a
//!   mismatch). docs/ARCHITECTURE.md says why chunk rows, not large objects.
//! - **Batches** are one transaction each that takes an advisory lock per
//!   record it names, then checks its preconditions, then writes (see
//!   `records.rs` for why not `SERIALIZABLE`); every batch also adds one to
//!   the [change counter](RecordStore::change_counter) other nodes' caches
//!   compare.
//! - **Connection loss** and a restarting server are retried inside each
//!   call for up to [`PostgresOptions::retry_for`], then reported as
//!   retryable `Io` errors; a batch whose `COMMIT` went unanswered asks the
//!   server whether its transaction committed before it runs again.
//! - [`PostgresBackend::lock_changes`] is the store-wide change lock the
//!   facade takes instead of a lock file, which cannot span machines.
//!
//! ```no_run
//! use imgstore_backend::{Batch, RecordStore, StoreBackend};
//! use imgstore_postgres::PostgresBackend;
//!
//! let store = PostgresBackend::open("postgres://imgstore@db.internal/images")?;
//! let id = store.set(br#"{"architecture":"amd64","os":"linux"}"#)?;
//! let mut batch = Batch::new();
//! batch.require_absent("names", "docker.io/library/busybox:latest");
//! batch.put("names", "docker.io/library/busybox:latest", id.to_string().into_bytes());
//! store.apply(&batch)?;
//! # Ok::<(), imgstore_backend::Error>(())
//! ```

mod backend;
mod content;
mod error;
use imgstore_backend::fault_point as fault;
mod options;
mod records;
pub mod schema;
#[cfg(feature = "testkit")]
pub mod testserver;

pub use backend::{ChangeLock, LockError, PostgresBackend, redact_url};
pub use content::CHUNK;
pub use options::PostgresOptions;

#[doc(no_inline)]
pub use imgstore_backend::{RecordStore, StoreBackend};
