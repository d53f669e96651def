//! The storage contract of imgstore: what every persistent backend provides.
//!
//! Three kinds of state live in a backend:
//!
//! - **content**, addressed by its sha256 digest ([`StoreBackend`]): moby's
//!   seven operations (`walk`, `get`, `set`, `delete`, `set_metadata`,
//!   `get_metadata`, `delete_metadata`) for small blobs such as image configs,
//!   plus streamed access ([`StoreBackend::open_blob`],
//!   [`StoreBackend::write_blob`]) for layers too large to hold in memory;
//! - **metadata**: small values kept per digest under a [key](validate_metadata_key)
//!   (`parent`, `lastUpdated`, ...), removed with the content;
//! - **records** ([`RecordStore`]): state that is not content-addressed (layer
//!   records, names), as buckets of `key -> bytes`, changed in atomic
//!   [`Batch`]es with optional preconditions.
//!
//! The traits name no file paths, so a remote database can implement them
//! too. Every failure is one [`Error`] whose [`ErrorKind`] maps onto
//! containerd's errdefs and says whether retrying can help.
//!
//! Implementations: `imgstore-fs` (moby's on-disk layout) and `imgstore-sqlite`.
//! With the feature `testkit`, the module `testkit` holds the conformance suite both pass.
//!
//! ```
//! use imgstore_backend::{Batch, validate_metadata_key};
//!
//! assert!(validate_metadata_key("parent").is_ok());
//! assert!(validate_metadata_key("../escape").is_err());
//!
//! let mut batch = Batch::new();
//! batch.require_absent("names", "docker.io/library/busybox:latest");
//! batch.put("names", "docker.io/library/busybox:latest", b"sha256:...".to_vec());
//! assert_eq!(batch.len(), 2);
//! ```

pub mod codec;
mod error;
pub mod fault_point;
mod hashing;
mod keys;
mod record;
mod state;
mod writeback;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::{Error, ErrorKind, Subject};
pub use hashing::{BlobHasher, StreamError};
pub use keys::{validate_bucket, validate_metadata_key, validate_record_key};
pub use record::{Batch, Op, Precondition, RecordStore};
pub use state::StateLock;
pub use writeback::WriteBack;

use std::io::Read;

use imgstore_digest::Digest;

/// The size of the buffer a [`StoreBackend::write_blob`] reads its input
/// with: 1 MiB. Against 64 KiB, it cuts the system time of streaming a
/// 1 GiB layer by a fifth (16 times fewer `read` and `write` calls).
pub const BLOB_BUFFER: usize = 1 << 20;

/// The result type of every backend operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What [`StoreBackend::write_blob`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// The sha256 digest of the bytes written.
    pub digest: Digest,
    /// Their length.
    pub size: u64,
}

/// A reader over stored content that re-hashes what it yields: at the end of
/// the stream it fails with [`ErrorKind::DataCorruption`] (as an `io::Error`
/// wrapping [`Error`]) if the bytes did not hash to the digest asked for.
pub type BlobReader = Box<dyn Read + Send>;

/// Content-addressed storage with per-digest metadata: moby's
/// `image.StoreBackend`, plus streamed blobs.
///
/// Only sha256 content is stored; a digest of another algorithm is simply not
/// found. Implementations are `Send + Sync` and safe to share between threads;
/// readers never wait for each other.
pub trait StoreBackend: Send + Sync {
    /// Calls `visit` once per stored digest, in no particular order. Entries that
    /// are not valid digests are skipped; content is not read (corruption is
    /// reported by [`get`](Self::get)). The first error `visit` returns stops the
    /// walk and is returned as it is.
    fn walk(&self, visit: &mut dyn FnMut(&Digest) -> Result<()>) -> Result<()>;

    /// The bytes stored under `digest`, re-hashed on every read:
    /// `NotFound` when absent, `DataCorruption` when they no longer hash to it.
    fn get(&self, digest: &Digest) -> Result<Vec<u8>>;

    /// Stores `data` and returns its sha256 digest. Idempotent: setting the same
    /// bytes again, from any number of threads at once, keeps one copy and
    /// succeeds. Empty data is `InvalidArgument`. Durable when it returns Ok.
    fn set(&self, data: &[u8]) -> Result<Digest>;

    /// Removes the content and all of its metadata. `NotFound` when absent.
    fn delete(&self, digest: &Digest) -> Result<()>;

    /// Stores `value` under `key` for existing content (`NotFound` otherwise).
    /// `key` must pass [`validate_metadata_key`].
    fn set_metadata(&self, digest: &Digest, key: &str, value: &[u8]) -> Result<()>;

    /// The metadata value: `NotFound` naming the key when the content exists but
    /// the key does not, `NotFound` naming the digest when the content is absent.
    fn get_metadata(&self, digest: &Digest, key: &str) -> Result<Vec<u8>>;

    /// Removes one metadata key; a key that is not set is not an error.
    fn delete_metadata(&self, digest: &Digest, key: &str) -> Result<()>;

    /// True when content is stored under `digest` (without verifying it).
    fn contains(&self, digest: &Digest) -> Result<bool>;

    /// The stored length of the content, without reading it.
    fn size(&self, digest: &Digest) -> Result<u64>;

    /// A streaming, verifying reader over the content (see [`BlobReader`]).
    fn open_blob(&self, digest: &Digest) -> Result<BlobReader>;

    /// [`get`](Self::get) for many digests at once, in order. Backends
    /// override it to read in one transaction or round trip (restore of 10k
    /// images depends on it); the default calls `get` for each.
    fn get_many(&self, digests: &[Digest]) -> Vec<Result<Vec<u8>>> {
        digests.iter().map(|d| self.get(d)).collect()
    }

    /// The sum of the stored lengths of every blob (what `df` reports as
    /// content size). Backends override the default, which walks and asks
    /// [`size`](Self::size) of each (a blob deleted meanwhile counts 0).
    fn total_size(&self) -> Result<u64> {
        let mut total = 0u64;
        self.walk(&mut |digest| {
            total = total.saturating_add(self.size(digest).unwrap_or(0));
            Ok(())
        })?;
        Ok(total)
    }

    /// [`get_metadata`](Self::get_metadata) of one key for many digests at
    /// once, in order; overridden like [`get_many`](Self::get_many).
    fn get_metadata_many(&self, digests: &[Digest], key: &str) -> Vec<Result<Vec<u8>>> {
        digests.iter().map(|d| self.get_metadata(d, key)).collect()
    }

    /// Streams `reader` into the store without holding it in memory. With
    /// `expected`, the bytes must hash to it (`DataCorruption` otherwise, and
    /// nothing is stored); the returned digest is always sha256. Empty input is
    /// `InvalidArgument`. Durable when it returns Ok.
    fn write_blob(&self, expected: Option<&Digest>, reader: &mut dyn Read) -> Result<BlobInfo>;

    /// [`set`](Self::set) whose durability waits for the next record batch:
    /// the content is stored and readable (by every process) when this
    /// returns Ok, and durable once a later [`RecordStore::apply`] of the
    /// same backend returned Ok, which makes every such write durable
    /// before its batch commits. So a record never becomes durable before
    /// the blob it names, and an import of many blobs pays for one sync,
    /// not one per file. The default is `set`, durable at once.
    fn set_deferred(&self, data: &[u8]) -> Result<Digest> {
        self.set(data)
    }

    /// [`write_blob`](Self::write_blob) whose durability waits for the next
    /// record batch, as [`set_deferred`](Self::set_deferred). The default
    /// is `write_blob`, durable at once.
    fn write_blob_deferred(
        &self,
        expected: Option<&Digest>,
        reader: &mut dyn Read,
    ) -> Result<BlobInfo> {
        self.write_blob(expected, reader)
    }
}
