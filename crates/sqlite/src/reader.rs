//! Streaming readers behind `open_blob`: a verifying wrapper, and a reader of
//! inline content through SQLite's incremental BLOB I/O.

use std::io::{self, Read};

use imgstore_backend::{Error, Subject};
use imgstore_digest::{Digest, Digester};
use rusqlite::{MAIN_DB, OptionalExtension};

use crate::backend::SqliteBackend;
use crate::error::sql_error;

/// Hashes what passes through; at the end of the stream fails with
/// `DataCorruption` (inside an `io::Error`) unless the bytes hashed to `digest`.
pub(crate) struct VerifyingReader<R> {
    inner: R,
    digest: Digest,
    /// `None` once the end was reached and verified.
    digester: Option<Digester>,
    /// What the bytes hashed to, once they were found not to match.
    mismatch: Option<Digest>,
}

impl<R: Read> VerifyingReader<R> {
    pub(crate) fn new(inner: R, digest: Digest) -> VerifyingReader<R> {
        let digester = Some(digest.algorithm().digester());
        VerifyingReader {
            inner,
            digest,
            digester,
            mismatch: None,
        }
    }

    fn corruption(&self, actual: Digest) -> io::Error {
        io::Error::from(Error::DataCorruption {
            digest: self.digest.clone(),
            actual,
        })
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(actual) = &self.mismatch {
            return Err(self.corruption(actual.clone()));
        }
        if buf.is_empty() || self.digester.is_none() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n > 0 {
            if let Some(digester) = self.digester.as_mut() {
                digester.update(&buf[..n]);
            }
            return Ok(n);
        }
        let Some(digester) = self.digester.take() else {
            return Ok(0);
        };
        let actual = digester.finish();
        if actual == self.digest {
            Ok(0)
        } else {
            self.mismatch = Some(actual.clone());
            Err(self.corruption(actual))
        }
    }
}

/// Inline content read in pieces with `sqlite3_blob_read`.
///
/// Holds no connection between reads, so open readers never starve the pool
/// or pin a WAL snapshot; each read looks the row up again by digest, so a
/// rowid reused after a delete is never read as this content.
pub(crate) struct InlineBlob {
    backend: SqliteBackend,
    digest: Digest,
    offset: usize,
}

impl InlineBlob {
    pub(crate) fn new(backend: SqliteBackend, digest: Digest) -> InlineBlob {
        InlineBlob {
            backend,
            digest,
            offset: 0,
        }
    }
}

impl Read for InlineBlob {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let subject = || Subject::Content(self.digest.clone());
        let conn = self.backend.reader()?;
        let id: Option<i64> = conn
            .prepare_cached("SELECT id FROM content WHERE digest = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([self.digest.as_str()], |row| row.get(0))
                    .optional()
            })
            .map_err(|e| sql_error("read", subject(), e))?;
        let Some(id) = id else {
            return Err(Error::content_not_found(&self.digest).into());
        };
        let blob = conn
            .blob_open(MAIN_DB, c"content", c"data", id, true)
            .map_err(|e| sql_error("open blob of", subject(), e))?;
        let n = blob
            .read_at(buf, self.offset)
            .map_err(|e| sql_error("read blob of", subject(), e))?;
        self.offset += n;
        Ok(n)
    }
}
