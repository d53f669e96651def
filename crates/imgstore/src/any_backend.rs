//! `AnyBackend`: one type over the backends the facade can open.

use std::io::Read;

use imgstore_backend::{Batch, BlobInfo, BlobReader, RecordStore, Result, StoreBackend};
use imgstore_digest::Digest;
use imgstore_fs::FsBackend;
use imgstore_postgres::PostgresBackend;
use imgstore_sqlite::SqliteBackend;

/// The backend a [`Store`](crate::Store) was opened with; it forwards every
/// call, so the stores above are not generic over the choice.
#[derive(Debug)]
pub enum AnyBackend {
    /// A filesystem backend (moby's layout).
    Fs(FsBackend),
    /// An SQLite backend.
    Sqlite(SqliteBackend),
    /// A PostgreSQL backend (one schema of a database many nodes share).
    Postgres(PostgresBackend),
    /// A backend wrapped by the fault injector (feature `testkit`, for the
    /// fault campaigns; see `imgstore_backend::testkit::fault`).
    #[cfg(feature = "testkit")]
    Faulty(Box<imgstore_backend::testkit::fault::FaultyBackend<AnyBackend>>),
}

impl AnyBackend {
    /// The fs backend underneath (seeing through a fault injector).
    pub fn as_fs(&self) -> Option<&FsBackend> {
        match self {
            AnyBackend::Fs(b) => Some(b),
            AnyBackend::Sqlite(_) | AnyBackend::Postgres(_) => None,
            #[cfg(feature = "testkit")]
            AnyBackend::Faulty(b) => b.inner().as_fs(),
        }
    }

    /// The SQLite backend underneath (seeing through a fault injector).
    pub fn as_sqlite(&self) -> Option<&SqliteBackend> {
        match self {
            AnyBackend::Sqlite(b) => Some(b),
            AnyBackend::Fs(_) | AnyBackend::Postgres(_) => None,
            #[cfg(feature = "testkit")]
            AnyBackend::Faulty(b) => b.inner().as_sqlite(),
        }
    }

    /// The PostgreSQL backend underneath (seeing through a fault injector).
    pub fn as_postgres(&self) -> Option<&PostgresBackend> {
        match self {
            AnyBackend::Postgres(b) => Some(b),
            AnyBackend::Fs(_) | AnyBackend::Sqlite(_) => None,
            #[cfg(feature = "testkit")]
            AnyBackend::Faulty(b) => b.inner().as_postgres(),
        }
    }

    /// The name `inspect` shows as the graph driver: the backend's.
    pub(crate) fn driver_name(&self) -> &'static str {
        match self {
            AnyBackend::Fs(_) => "fs",
            AnyBackend::Sqlite(_) => "sqlite",
            AnyBackend::Postgres(_) => "postgres",
            #[cfg(feature = "testkit")]
            AnyBackend::Faulty(b) => b.inner().driver_name(),
        }
    }

    /// Makes every write that returned Ok durable against a power loss and
    /// folds SQLite's write-ahead log into the database
    /// ([`SqliteBackend::checkpoint`]); for the filesystem backend, which
    /// syncs every other write before returning, the blob writes deferred
    /// since its last record batch ([`FsBackend::sync_deferred`]); nothing
    /// for PostgreSQL, whose commits are durable when they return.
    pub fn make_durable(&self) -> Result<()> {
        match self {
            AnyBackend::Sqlite(b) => b.checkpoint(),
            AnyBackend::Fs(b) => b.sync_deferred(),
            AnyBackend::Postgres(_) => Ok(()),
            #[cfg(feature = "testkit")]
            AnyBackend::Faulty(b) => b.inner().make_durable(),
        }
    }
}

macro_rules! forward {
    ($self:ident, $b:ident => $call:expr) => {
        match $self {
            AnyBackend::Fs($b) => $call,
            AnyBackend::Sqlite($b) => $call,
            AnyBackend::Postgres($b) => $call,
            #[cfg(feature = "testkit")]
            AnyBackend::Faulty($b) => $call,
        }
    };
}

impl StoreBackend for AnyBackend {
    fn walk(&self, visit: &mut dyn FnMut(&Digest) -> Result<()>) -> Result<()> {
        forward!(self, b => b.walk(visit))
    }
    fn get(&self, digest: &Digest) -> Result<Vec<u8>> {
        forward!(self, b => b.get(digest))
    }
    fn set(&self, data: &[u8]) -> Result<Digest> {
        forward!(self, b => b.set(data))
    }
    fn delete(&self, digest: &Digest) -> Result<()> {
        forward!(self, b => b.delete(digest))
    }
    fn set_metadata(&self, digest: &Digest, key: &str, value: &[u8]) -> Result<()> {
        forward!(self, b => b.set_metadata(digest, key, value))
    }
    fn get_metadata(&self, digest: &Digest, key: &str) -> Result<Vec<u8>> {
        forward!(self, b => b.get_metadata(digest, key))
    }
    fn delete_metadata(&self, digest: &Digest, key: &str) -> Result<()> {
        forward!(self, b => b.delete_metadata(digest, key))
    }
    fn contains(&self, digest: &Digest) -> Result<bool> {
        forward!(self, b => b.contains(digest))
    }
    fn size(&self, digest: &Digest) -> Result<u64> {
        forward!(self, b => b.size(digest))
    }
    fn open_blob(&self, digest: &Digest) -> Result<BlobReader> {
        forward!(self, b => b.open_blob(digest))
    }
    fn get_many(&self, digests: &[Digest]) -> Vec<Result<Vec<u8>>> {
        forward!(self, b => b.get_many(digests))
    }
    fn total_size(&self) -> Result<u64> {
        forward!(self, b => b.total_size())
    }
    fn get_metadata_many(&self, digests: &[Digest], key: &str) -> Vec<Result<Vec<u8>>> {
        forward!(self, b => b.get_metadata_many(digests, key))
    }
    fn write_blob(&self, expected: Option<&Digest>, reader: &mut dyn Read) -> Result<BlobInfo> {
        forward!(self, b => b.write_blob(expected, reader))
    }
    fn set_deferred(&self, data: &[u8]) -> Result<Digest> {
        forward!(self, b => b.set_deferred(data))
    }
    fn write_blob_deferred(
        &self,
        expected: Option<&Digest>,
        reader: &mut dyn Read,
    ) -> Result<BlobInfo> {
        forward!(self, b => b.write_blob_deferred(expected, reader))
    }
}

impl RecordStore for AnyBackend {
    fn get_record(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        forward!(self, b => b.get_record(bucket, key))
    }
    fn scan_records(
        &self,
        bucket: &str,
        prefix: &str,
        visit: &mut dyn FnMut(&str, &[u8]) -> Result<()>,
    ) -> Result<()> {
        forward!(self, b => b.scan_records(bucket, prefix, visit))
    }
    fn apply(&self, batch: &Batch) -> Result<()> {
        forward!(self, b => b.apply(batch))
    }
    fn first_records(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        forward!(self, b => b.first_records(bucket, prefix, limit))
    }
    fn change_counter(&self) -> Result<u64> {
        forward!(self, b => b.change_counter())
    }
}
