//! How a database is opened: durability, waiting, pooling, where blobs go.

use std::time::Duration;

use imgstore_backend::{Error, Result};

/// How hard SQLite pushes each commit to disk (`PRAGMA synchronous`).
///
/// Both levels keep every commit that returned Ok across a crash of the
/// process (DESIGN.md's durability rule); they differ on power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Synchronous {
    /// WAL is synced at checkpoints only: a power loss may roll back the last
    /// commits, never corrupt the database. About four times `Full`'s commit rate.
    #[default]
    Normal,
    /// Every commit syncs the WAL: commits also survive a power loss.
    Full,
}

impl Synchronous {
    /// The value given to `PRAGMA synchronous`.
    pub(crate) fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }

    /// The level `PRAGMA synchronous` reports (0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA).
    pub(crate) fn from_level(level: i64) -> Option<Synchronous> {
        match level {
            1 => Some(Synchronous::Normal),
            2 => Some(Synchronous::Full),
            _ => None,
        }
    }
}

/// The largest [`SqliteOptions::inline_limit`]: `write_blob` buffers up to the
/// limit in memory before it decides where the blob goes.
pub const MAX_INLINE_LIMIT: u64 = 64 << 20;

/// Settings for [`SqliteBackend::open_with`](crate::SqliteBackend::open_with).
///
/// Build one from the default and change what you need:
///
/// ```
/// use std::time::Duration;
/// use imgstore_sqlite::{SqliteOptions, Synchronous};
///
/// let options = SqliteOptions {
///     synchronous: Synchronous::Full,
///     busy_timeout: Duration::from_secs(1),
///     ..SqliteOptions::default()
/// };
/// assert_eq!(options.inline_limit, 256 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Commit durability; `Normal` by default.
    pub synchronous: Synchronous,
    /// How long a call waits for another connection's or process's write lock
    /// (and for a free pooled connection) before it fails with a retryable
    /// `Io` error. 5 s by default.
    pub busy_timeout: Duration,
    /// Reader connections kept in the pool (writes use one more connection of
    /// their own). At least 1; 8 by default.
    pub pool_size: u32,
    /// Content of at most this many bytes is stored inside the database; larger
    /// content goes to a file in `<db>.blobs/sha256/`. 256 KiB by default, at
    /// most [`MAX_INLINE_LIMIT`]; 0 puts every blob in a file.
    pub inline_limit: u64,
    /// Bytes of the database file each connection maps into memory
    /// (`PRAGMA mmap_size`). 0 (off) by default: SQLite unmaps the whole
    /// region whenever another connection commits, so with a writer active
    /// mapped reads are several times slower than the page cache (measured
    /// with `backend/sqlite/parallel_read_*`); it pays only for stores that are
    /// read far more often than written. A mapped file turns an I/O error into
    /// SIGBUS.
    pub mmap_size: u64,
    /// The page cache of each reader connection, in KiB (`PRAGMA
    /// cache_size`); the writer keeps SQLite's 2 MiB for large batches.
    /// 512 KiB by default: a listing scans each page once, and the pages a
    /// bigger cache kept were a third of a 10k-image `images` process's
    /// memory faults; point reads need a few pages each.
    pub reader_cache_kib: u32,
}

impl Default for SqliteOptions {
    fn default() -> SqliteOptions {
        SqliteOptions {
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            pool_size: 8,
            inline_limit: 256 * 1024,
            mmap_size: 0,
            reader_cache_kib: 512,
        }
    }
}

impl SqliteOptions {
    /// Refuses values the pool or the blob writer cannot work with.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.pool_size == 0 {
            return Err(Error::invalid_argument(
                "pool_size",
                "the reader pool needs at least one connection",
            ));
        }
        if self.inline_limit > MAX_INLINE_LIMIT {
            return Err(Error::invalid_argument(
                "inline_limit",
                format!("at most {MAX_INLINE_LIMIT} bytes"),
            ));
        }
        if i64::try_from(self.mmap_size).is_err() {
            return Err(Error::invalid_argument(
                "mmap_size",
                "larger than SQLite can map",
            ));
        }
        if i32::try_from(self.busy_timeout.as_millis()).is_err() {
            return Err(Error::invalid_argument(
                "busy_timeout",
                "longer than SQLite can wait (about 24 days)",
            ));
        }
        Ok(())
    }
}
