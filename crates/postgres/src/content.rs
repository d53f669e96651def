//! Content and metadata: [`StoreBackend`] for [`PostgresBackend`].
//!
//! A blob of up to [`CHUNK`] bytes is one `content` row with its bytes; a
//! larger one is a `content` row naming a `blob_id` and its bytes in
//! `chunks` rows of `CHUNK` bytes, written in one transaction while they
//! stream in and read one chunk per query while they stream out.

use std::collections::HashMap;
use std::io::{self, Read};

use imgstore_backend::{
    BlobHasher, BlobInfo, BlobReader, Error, Result, StoreBackend, StreamError, Subject,
    validate_metadata_key,
};
use imgstore_digest::{Algorithm, Digest, Digester};
use postgres::Client;
use postgres::error::SqlState;
use postgres::types::Type;

use crate::backend::{Connection, PostgresBackend};
use crate::error::{Failed, PgResultExt, input_error, pg_error};
use crate::fault;

/// The size of a chunk row, and the largest blob stored inline: 1 MiB, the
/// buffer `write_blob` reads with.
pub const CHUNK: usize = imgstore_backend::BLOB_BUFFER;

/// Digests listed per page by `walk`, which holds no connection between pages.
const WALK_PAGE: i64 = 1000;

fn content(digest: &Digest) -> Subject {
    Subject::Content(digest.clone())
}

fn metadata(digest: &Digest, key: &str) -> Subject {
    Subject::Metadata {
        digest: digest.clone(),
        key: key.to_owned(),
    }
}

/// Only sha256 content is stored; any other digest is simply not there.
fn is_storable(digest: &Digest) -> bool {
    digest.algorithm() == Algorithm::Sha256
}

/// `DataCorruption` unless `bytes` hash to `digest`.
fn verify(digest: &Digest, bytes: Vec<u8>) -> Result<Vec<u8>> {
    let actual = Digest::from_bytes(&bytes);
    if actual == *digest {
        Ok(bytes)
    } else {
        Err(Error::DataCorruption {
            digest: digest.clone(),
            actual,
        })
    }
}

fn size_param(digest: &Digest, size: u64) -> Result<i64> {
    i64::try_from(size)
        .map_err(|_| Error::invalid_argument(digest.as_str(), "larger than PostgreSQL can count"))
}

/// Where the bytes of a stored blob are.
enum Stored {
    Inline(Vec<u8>),
    Chunks(i64),
}

impl PostgresBackend {
    /// Reads all the bytes of `digest` in one statement (one snapshot, so a
    /// concurrent delete is all or nothing); `None` when absent.
    fn read_all(client: &mut Client, digest: &Digest) -> Result<Option<Vec<u8>>, Failed> {
        let rows = client
            .query_typed(
                "SELECT c.data, k.data FROM content AS c
                 LEFT JOIN chunks AS k ON c.data IS NULL AND k.blob_id = c.blob_id
                 WHERE c.digest = $1 ORDER BY k.seq",
                &[(&digest.as_str(), Type::TEXT)],
            )
            .pg("read", || content(digest))?;
        let mut rows = rows.iter().peekable();
        let Some(first) = rows.peek() else {
            return Ok(None);
        };
        if let Some(inline) = first
            .try_get::<_, Option<Vec<u8>>>(0)
            .pg("read", || content(digest))?
        {
            return Ok(Some(inline));
        }
        let mut bytes = Vec::new();
        for row in rows {
            let chunk: Option<&[u8]> = row.try_get(1).pg("read", || content(digest))?;
            bytes.extend_from_slice(chunk.unwrap_or_default());
        }
        Ok(Some(bytes))
    }

    /// Where the bytes of `digest` are, or `None` when it is not stored.
    fn lookup(&self, digest: &Digest) -> Result<Option<Stored>> {
        self.run(|client| {
            let row = client
                .query_typed_opt(
                    "SELECT CASE WHEN blob_id IS NULL THEN data END, blob_id
                     FROM content WHERE digest = $1",
                    &[(&digest.as_str(), Type::TEXT)],
                )
                .pg("read", || content(digest))?;
            let Some(row) = row else { return Ok(None) };
            let inline: Option<Vec<u8>> = row.try_get(0).pg("read", || content(digest))?;
            let blob_id: Option<i64> = row.try_get(1).pg("read", || content(digest))?;
            Ok(Some(match (inline, blob_id) {
                (_, Some(id)) => Stored::Chunks(id),
                (inline, None) => Stored::Inline(inline.unwrap_or_default()),
            }))
        })
    }

    fn insert_inline(&self, digest: &Digest, data: &[u8]) -> Result<()> {
        let size = size_param(digest, data.len() as u64)?;
        self.run(|client| {
            fault::sync("postgres: commit").map_err(|e| Error::io("commit", content(digest), e))?;
            client
                .execute_typed(
                    "INSERT INTO content (digest, size, data) VALUES ($1, $2, $3)
                     ON CONFLICT (digest) DO NOTHING",
                    &[
                        (&digest.as_str(), Type::TEXT),
                        (&size, Type::INT8),
                        (&data, Type::BYTEA),
                    ],
                )
                .pg("insert", || content(digest))
                .map(drop)
        })
    }
}

/// A large blob being written: a transaction of its own on a connection
/// of its own (the whole blob commits or nothing does), its id, the next
/// chunk. Dropped before [`commit`](Self::commit), it rolls back.
struct ChunkWriter {
    conn: Connection,
    /// True while the transaction is open.
    open: bool,
    blob_id: i64,
    seq: i32,
    pending: Vec<u8>,
}

impl ChunkWriter {
    fn begin(mut conn: Connection) -> Result<ChunkWriter, postgres::Error> {
        conn.batch_execute("BEGIN")?;
        let mut writer = ChunkWriter {
            conn,
            open: true,
            blob_id: 0,
            seq: 0,
            pending: Vec::with_capacity(CHUNK),
        };
        writer.blob_id = writer
            .conn
            .query_typed_one("SELECT nextval('blob_ids')", &[])?
            .try_get(0)?;
        Ok(writer)
    }

    fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let take = (CHUNK - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() == CHUNK {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Inserts the pending bytes as the next chunk.
    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        fault::sync("postgres: write a chunk")?;
        let data = self.pending.as_slice();
        self.conn
            .execute_typed(
                "INSERT INTO chunks (blob_id, seq, data) VALUES ($1, $2, $3)",
                &[
                    (&self.blob_id, Type::INT8),
                    (&self.seq, Type::INT4),
                    (&data, Type::BYTEA),
                ],
            )
            .map_err(io::Error::other)?;
        self.seq += 1;
        self.pending.clear();
        Ok(())
    }

    /// Names the chunks `digest` and commits; false (and rolled back) when
    /// the digest is stored already, by another writer meanwhile.
    fn commit(mut self, digest: &Digest, size: i64) -> Result<bool> {
        let subject = || content(digest);
        self.flush()
            .map_err(|e| Error::io("write a chunk of", subject(), e))?;
        let inserted = self
            .conn
            .execute_typed(
                "INSERT INTO content (digest, size, blob_id) VALUES ($1, $2, $3)
                 ON CONFLICT (digest) DO NOTHING",
                &[
                    (&digest.as_str(), Type::TEXT),
                    (&size, Type::INT8),
                    (&self.blob_id, Type::INT8),
                ],
            )
            .map_err(|e| pg_error("insert", subject(), e))?;
        if inserted == 0 {
            return Ok(false);
        }
        fault::sync("postgres: commit").map_err(|e| Error::io("commit", subject(), e))?;
        self.open = false;
        self.conn
            .batch_execute("COMMIT")
            .map_err(|e| pg_error("commit (outcome unknown) of", subject(), e))?;
        Ok(true)
    }
}

impl Drop for ChunkWriter {
    fn drop(&mut self) {
        if self.open {
            // A connection that cannot roll back is closed, and the pool
            // drops it: either way no transaction goes back to the pool.
            let _ = self.conn.batch_execute("ROLLBACK");
        }
    }
}

impl StoreBackend for PostgresBackend {
    fn walk(&self, visit: &mut dyn FnMut(&Digest) -> Result<()>) -> Result<()> {
        // Keyset pages: no connection is held while `visit` runs, so it may
        // read and write the store.
        let mut after = String::new();
        loop {
            let page: Vec<String> = self.run(|client| {
                client
                    .query_typed(
                        "SELECT digest FROM content WHERE digest > $1 ORDER BY digest LIMIT $2",
                        &[(&after, Type::TEXT), (&WALK_PAGE, Type::INT8)],
                    )
                    .pg("list content of", || self.subject())?
                    .iter()
                    .map(|row| row.try_get(0).pg("list content of", || self.subject()))
                    .collect()
            })?;
            let full = page.len() as i64 == WALK_PAGE;
            for text in &page {
                if let Ok(digest) = Digest::parse(text)
                    && is_storable(&digest)
                {
                    visit(&digest)?;
                }
            }
            match page.into_iter().last() {
                Some(last) if full => after = last,
                _ => return Ok(()),
            }
        }
    }

    fn get(&self, digest: &Digest) -> Result<Vec<u8>> {
        if !is_storable(digest) {
            return Err(Error::content_not_found(digest));
        }
        let bytes = self.run(|client| PostgresBackend::read_all(client, digest))?;
        verify(
            digest,
            bytes.ok_or_else(|| Error::content_not_found(digest))?,
        )
    }

    /// One query for all of them (inline content; chunked content is read
    /// by `get` after it).
    fn get_many(&self, digests: &[Digest]) -> Vec<Result<Vec<u8>>> {
        let names: Vec<&str> = digests.iter().map(Digest::as_str).collect();
        let found: Result<HashMap<String, Option<Vec<u8>>>> = self.run(|client| {
            client
                .query_typed(
                    "SELECT digest, CASE WHEN blob_id IS NULL THEN data END
                     FROM content WHERE digest = ANY($1)",
                    &[(&names, Type::TEXT_ARRAY)],
                )
                .pg("read", || self.subject())?
                .iter()
                .map(|row| {
                    Ok((
                        row.try_get(0).pg("read", || self.subject())?,
                        row.try_get(1).pg("read", || self.subject())?,
                    ))
                })
                .collect()
        });
        let found = match found {
            Ok(found) => found,
            // Each digest then reports the failure (or succeeds) on its own.
            Err(_) => return digests.iter().map(|d| self.get(d)).collect(),
        };
        digests
            .iter()
            .map(|digest| match found.get(digest.as_str()) {
                _ if !is_storable(digest) => Err(Error::content_not_found(digest)),
                None => Err(Error::content_not_found(digest)),
                Some(Some(bytes)) => verify(digest, bytes.clone()),
                Some(None) => self.get(digest),
            })
            .collect()
    }

    /// One query for all of them.
    fn get_metadata_many(&self, digests: &[Digest], key: &str) -> Vec<Result<Vec<u8>>> {
        if let Err(e) = validate_metadata_key(key) {
            let message = e.to_string();
            return digests
                .iter()
                .map(|_| Err(Error::invalid_argument(key, message.clone())))
                .collect();
        }
        let names: Vec<&str> = digests.iter().map(Digest::as_str).collect();
        let found: Result<HashMap<String, Option<Vec<u8>>>> = self.run(|client| {
            client
                .query_typed(
                    "SELECT c.digest, m.value FROM content AS c
                     LEFT JOIN metadata AS m ON m.digest = c.digest AND m.key = $2
                     WHERE c.digest = ANY($1)",
                    &[(&names, Type::TEXT_ARRAY), (&key, Type::TEXT)],
                )
                .pg("read", || self.subject())?
                .iter()
                .map(|row| {
                    Ok((
                        row.try_get(0).pg("read", || self.subject())?,
                        row.try_get(1).pg("read", || self.subject())?,
                    ))
                })
                .collect()
        });
        let found = match found {
            Ok(found) => found,
            Err(_) => return digests.iter().map(|d| self.get_metadata(d, key)).collect(),
        };
        digests
            .iter()
            .map(|digest| match found.get(digest.as_str()) {
                _ if !is_storable(digest) => Err(Error::content_not_found(digest)),
                None => Err(Error::content_not_found(digest)),
                Some(None) => Err(Error::NotFound {
                    subject: metadata(digest, key),
                }),
                Some(Some(value)) => Ok(value.clone()),
            })
            .collect()
    }

    fn set(&self, data: &[u8]) -> Result<Digest> {
        if data.is_empty() {
            return Err(Error::invalid_argument("data", "invalid empty data"));
        }
        if data.len() <= CHUNK {
            let digest = Digest::from_bytes(data);
            self.insert_inline(&digest, data)?;
            return Ok(digest);
        }
        self.write_blob(None, &mut &data[..])
            .map(|info| info.digest)
    }

    fn delete(&self, digest: &Digest) -> Result<()> {
        if !is_storable(digest) {
            return Err(Error::content_not_found(digest));
        }
        // One statement: the row, its chunks and (by the foreign key) its
        // metadata go together; in a transaction that first checks the
        // change lock while this process holds one (gc's deletes must stop
        // when another node may be adding what they would delete).
        let (fence_high, fence_low, fence_pids) = self.fences();
        let deleted: i64 = self.run(|client| {
            fault::sync("postgres: commit")
                .map_err(|e| Error::io("commit delete of", content(digest), e))?;
            let mut tx = client
                .transaction()
                .pg("begin a delete on", || self.subject())?;
            if !fence_pids.is_empty() {
                let lost: i64 = tx
                    .query_typed_one(
                        crate::records::FENCE_CHECK,
                        &[
                            (&fence_high, Type::INT8_ARRAY),
                            (&fence_low, Type::INT8_ARRAY),
                            (&fence_pids, Type::INT4_ARRAY),
                        ],
                    )
                    .and_then(|row| row.try_get(0))
                    .pg("check the change lock of", || self.subject())?;
                if lost > 0 {
                    return Err(Failed::from(crate::records::lost_lock(self.subject())));
                }
            }
            let deleted = tx
                .query_typed_one(
                    "WITH gone AS (DELETE FROM content WHERE digest = $1 RETURNING blob_id),
                          chunks_gone AS (DELETE FROM chunks
                                          WHERE blob_id IN (SELECT blob_id FROM gone))
                     SELECT count(*) FROM gone",
                    &[(&digest.as_str(), Type::TEXT)],
                )
                .and_then(|row| row.try_get(0))
                .pg("delete", || content(digest))?;
            tx.commit().pg("commit delete of", || content(digest))?;
            Ok(deleted)
        })?;
        if deleted == 0 {
            return Err(Error::content_not_found(digest));
        }
        Ok(())
    }

    fn set_metadata(&self, digest: &Digest, key: &str, value: &[u8]) -> Result<()> {
        validate_metadata_key(key)?;
        if !is_storable(digest) {
            return Err(Error::content_not_found(digest));
        }
        let changed = self.run(|client| {
            fault::sync("postgres: commit")
                .map_err(|e| Error::io("write", metadata(digest, key), e))?;
            let written = client.execute_typed(
                "INSERT INTO metadata (digest, key, value)
                 SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM content WHERE digest = $1)
                 ON CONFLICT (digest, key) DO UPDATE SET value = excluded.value",
                &[
                    (&digest.as_str(), Type::TEXT),
                    (&key, Type::TEXT),
                    (&value, Type::BYTEA),
                ],
            );
            match written {
                // The content was deleted between the check and the insert.
                Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => Ok(0),
                other => other.pg("write", || metadata(digest, key)),
            }
        })?;
        if changed == 0 {
            return Err(Error::content_not_found(digest));
        }
        Ok(())
    }

    fn get_metadata(&self, digest: &Digest, key: &str) -> Result<Vec<u8>> {
        validate_metadata_key(key)?;
        if !is_storable(digest) {
            return Err(Error::content_not_found(digest));
        }
        let found: Option<Option<Vec<u8>>> = self.run(|client| {
            client
                .query_typed_opt(
                    "SELECT m.value FROM content AS c
                     LEFT JOIN metadata AS m ON m.digest = c.digest AND m.key = $2
                     WHERE c.digest = $1",
                    &[(&digest.as_str(), Type::TEXT), (&key, Type::TEXT)],
                )
                .pg("read", || metadata(digest, key))?
                .map(|row| row.try_get(0).pg("read", || metadata(digest, key)))
                .transpose()
        })?;
        match found {
            None => Err(Error::content_not_found(digest)),
            Some(None) => Err(Error::NotFound {
                subject: metadata(digest, key),
            }),
            Some(Some(value)) => Ok(value),
        }
    }

    fn delete_metadata(&self, digest: &Digest, key: &str) -> Result<()> {
        validate_metadata_key(key)?;
        if !is_storable(digest) {
            return Ok(());
        }
        self.run(|client| {
            fault::sync("postgres: commit")
                .map_err(|e| Error::io("delete", metadata(digest, key), e))?;
            client
                .execute_typed(
                    "DELETE FROM metadata WHERE digest = $1 AND key = $2",
                    &[(&digest.as_str(), Type::TEXT), (&key, Type::TEXT)],
                )
                .pg("delete", || metadata(digest, key))
                .map(drop)
        })
    }

    fn contains(&self, digest: &Digest) -> Result<bool> {
        if !is_storable(digest) {
            return Ok(false);
        }
        self.run(|client| {
            client
                .query_typed_opt(
                    "SELECT 1 FROM content WHERE digest = $1",
                    &[(&digest.as_str(), Type::TEXT)],
                )
                .map(|row| row.is_some())
                .pg("read", || content(digest))
        })
    }

    fn size(&self, digest: &Digest) -> Result<u64> {
        if !is_storable(digest) {
            return Err(Error::content_not_found(digest));
        }
        let size: Option<i64> = self.run(|client| {
            client
                .query_typed_opt(
                    "SELECT size FROM content WHERE digest = $1",
                    &[(&digest.as_str(), Type::TEXT)],
                )
                .pg("read", || content(digest))?
                .map(|row| row.try_get(0).pg("read", || content(digest)))
                .transpose()
        })?;
        let size = size.ok_or_else(|| Error::content_not_found(digest))?;
        // The CHECK constraint keeps sizes positive.
        Ok(u64::try_from(size).unwrap_or(0))
    }

    /// One `sum` over the content table.
    fn total_size(&self) -> Result<u64> {
        let total: i64 = self.run(|client| {
            client
                .query_typed_one("SELECT coalesce(sum(size), 0)::bigint FROM content", &[])
                .and_then(|row| row.try_get(0))
                .pg("read", || self.subject())
        })?;
        Ok(u64::try_from(total).unwrap_or(0))
    }

    fn open_blob(&self, digest: &Digest) -> Result<BlobReader> {
        if !is_storable(digest) {
            return Err(Error::content_not_found(digest));
        }
        let source: Box<dyn Read + Send> = match self.lookup(digest)? {
            None => return Err(Error::content_not_found(digest)),
            Some(Stored::Inline(bytes)) => Box::new(io::Cursor::new(bytes)),
            Some(Stored::Chunks(blob_id)) => Box::new(ChunkReader {
                backend: self.clone(),
                digest: digest.clone(),
                blob_id,
                seq: 0,
                chunk: io::Cursor::new(Vec::new()),
                done: false,
            }),
        };
        Ok(Box::new(VerifyingReader::new(source, digest.clone())))
    }

    fn write_blob(&self, expected: Option<&Digest>, reader: &mut dyn Read) -> Result<BlobInfo> {
        let input = || match expected {
            Some(digest) => content(digest),
            None => self.subject(),
        };
        let mut hasher = BlobHasher::new(expected);
        // Up to one chunk in memory; past it, a transaction of chunk rows.
        let mut head = Vec::new();
        let mut writer: Option<ChunkWriter> = None;
        // Why the transaction could not start, if that is what failed.
        let mut begin_failed: Option<Error> = None;
        let streamed = hasher.stream(reader, &mut |bytes| {
            if let Some(writer) = writer.as_mut() {
                return writer.write(bytes);
            }
            if head.len() + bytes.len() <= CHUNK {
                head.extend_from_slice(bytes);
                return Ok(());
            }
            let started = self.connection().and_then(|conn| {
                ChunkWriter::begin(conn).map_err(|e| pg_error("begin a blob in", self.subject(), e))
            });
            let mut started = started.map_err(|error| {
                let message = error.to_string();
                begin_failed = Some(error);
                io::Error::other(message)
            })?;
            let written = started.write(&head).and_then(|()| started.write(bytes));
            head = Vec::new();
            writer = Some(started);
            written
        });
        match streamed {
            Ok(()) => {}
            Err(StreamError::Read(e)) => return Err(input_error(input(), e)),
            Err(StreamError::Write(e)) => {
                return Err(begin_failed
                    .take()
                    .unwrap_or_else(|| Error::io("write a chunk of", input(), e)));
            }
        }
        let info = hasher.finish(expected)?;
        match writer {
            None => self.insert_inline(&info.digest, &head)?,
            Some(writer) => {
                let size = size_param(&info.digest, info.size)?;
                writer.commit(&info.digest, size)?;
            }
        }
        Ok(info)
    }
}

/// Streams the chunks of a large blob, one query per chunk (no connection
/// or transaction is held between reads).
struct ChunkReader {
    backend: PostgresBackend,
    digest: Digest,
    blob_id: i64,
    seq: i32,
    chunk: io::Cursor<Vec<u8>>,
    done: bool,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.chunk.read(buf)?;
            if n > 0 || self.done || buf.is_empty() {
                return Ok(n);
            }
            let (blob_id, seq) = (self.blob_id, self.seq);
            let digest = &self.digest;
            let next: Option<Vec<u8>> = self.backend.run(|client| {
                client
                    .query_typed_opt(
                        "SELECT data FROM chunks WHERE blob_id = $1 AND seq = $2",
                        &[(&blob_id, Type::INT8), (&seq, Type::INT4)],
                    )
                    .pg("read a chunk of", || content(digest))?
                    .map(|row| row.try_get(0).pg("read a chunk of", || content(digest)))
                    .transpose()
            })?;
            match next {
                Some(bytes) => {
                    self.chunk = io::Cursor::new(bytes);
                    self.seq += 1;
                }
                // The last chunk was read (or the blob was deleted meanwhile,
                // which the hash then reports).
                None => self.done = true,
            }
        }
    }
}

/// Hashes what passes through; at the end of the stream fails with
/// `DataCorruption` (inside an `io::Error`) unless the bytes hashed to
/// `digest`, and so does every read after that.
struct VerifyingReader {
    inner: Box<dyn Read + Send>,
    digest: Digest,
    /// `None` once the end was reached.
    digester: Option<Digester>,
    /// What the bytes hashed to, once they were found not to match.
    mismatch: Option<Digest>,
}

impl VerifyingReader {
    fn new(inner: Box<dyn Read + Send>, digest: Digest) -> VerifyingReader {
        VerifyingReader {
            inner,
            digester: Some(digest.algorithm().digester()),
            digest,
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

impl Read for VerifyingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(actual) = &self.mismatch {
            return Err(self.corruption(actual.clone()));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let Some(digester) = self.digester.as_mut() else {
            return Ok(0);
        };
        let n = self.inner.read(buf)?;
        if n > 0 {
            digester.update(&buf[..n]);
            return Ok(n);
        }
        let Some(digester) = self.digester.take() else {
            return Ok(0);
        };
        let actual = digester.finish();
        if actual == self.digest {
            return Ok(0);
        }
        self.mismatch = Some(actual.clone());
        Err(self.corruption(actual))
    }
}
