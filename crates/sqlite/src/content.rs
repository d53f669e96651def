//! Content and metadata: [`StoreBackend`] for [`SqliteBackend`].

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};

use imgstore_backend::{
    BlobHasher, BlobInfo, BlobReader, Error, Result, StoreBackend, StreamError, Subject,
    validate_metadata_key,
};
use imgstore_digest::{Algorithm, Digest};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OptionalExtension, params};

use crate::backend::SqliteBackend;
use crate::error::{input_error, pool_timeout, sql_error};
use crate::fault;
use crate::files::{TempBlob, sync_dir};
use crate::reader::{InlineBlob, VerifyingReader};

/// Rows fetched per page by `walk`, which holds no connection between pages.
const WALK_PAGE: i64 = 512;

/// Where the bytes of a row are.
enum Stored {
    Inline(Vec<u8>),
    File,
}

fn content(digest: &Digest) -> Subject {
    Subject::Content(digest.clone())
}

fn empty_data() -> Error {
    Error::invalid_argument("data", "invalid empty data")
}

/// Only sha256 content is stored; any other digest is simply not there.
fn is_storable(digest: &Digest) -> bool {
    digest.algorithm() == Algorithm::Sha256
}

/// `DataCorruption` unless `bytes` hash to `digest`.
fn verify(digest: &Digest, bytes: &[u8]) -> Result<()> {
    let actual = Digest::from_bytes(bytes);
    if actual == *digest {
        Ok(())
    } else {
        Err(Error::DataCorruption {
            digest: digest.clone(),
            actual,
        })
    }
}

/// From this many digests on, `get_many` and `get_metadata_many` scan
/// (content rows; the digest index and the metadata of one key) instead of
/// searching per digest: a restore of 10k images reads sequentially.
const BULK_READ: usize = 256;

/// `get_metadata_many` by one pass over every stored digest (the digest
/// index alone) joined with its value of `key`. `None` if the database
/// refuses, and the caller falls back to one search per digest.
fn metadata_by_scan(
    conn: &Connection,
    digests: &[Digest],
    key: &str,
) -> Option<Vec<Result<Vec<u8>>>> {
    let mut slot_of: HashMap<&str, usize> = HashMap::with_capacity(digests.len());
    for digest in digests {
        let next = slot_of.len();
        slot_of.entry(digest.as_str()).or_insert(next);
    }
    // Per slot: `None` no content; `Some(None)` content without the key;
    // `Some(Some(value))` the value.
    let mut found: Vec<Option<Option<Vec<u8>>>> = vec![None; slot_of.len()];
    let scanned: rusqlite::Result<()> = (|| {
        let mut stmt = conn.prepare_cached(
            "SELECT c.digest, m.value FROM content AS c
             LEFT JOIN metadata AS m ON m.digest = c.digest AND m.key = ?1",
        )?;
        let mut rows = stmt.query([key])?;
        while let Some(row) = rows.next()? {
            let ValueRef::Text(name) = row.get_ref(0)? else {
                continue;
            };
            let Some(&slot) = std::str::from_utf8(name).ok().and_then(|n| slot_of.get(n)) else {
                continue;
            };
            found[slot] = Some(match row.get_ref(1)? {
                ValueRef::Null => None,
                ValueRef::Blob(bytes) | ValueRef::Text(bytes) => Some(bytes.to_vec()),
                ValueRef::Integer(_) | ValueRef::Real(_) => Some(Vec::new()),
            });
        }
        Ok(())
    })();
    scanned.ok()?;
    Some(
        digests
            .iter()
            .map(|digest| {
                let slot = slot_of.get(digest.as_str()).copied().unwrap_or_default();
                match &found[slot] {
                    _ if !is_storable(digest) => Err(Error::content_not_found(digest)),
                    None => Err(Error::content_not_found(digest)),
                    Some(None) => Err(Error::NotFound {
                        subject: metadata(digest, key),
                    }),
                    Some(Some(value)) => Ok(value.clone()),
                }
            })
            .collect(),
    )
}

/// A blob file to commit: where it is now, the digest and size it has.
struct PendingFile {
    temp: TempBlob,
    digest: Digest,
    size: u64,
}

impl SqliteBackend {
    /// Stores every item in one transaction and returns their digests in
    /// order: the batched form of [`set`](StoreBackend::set), all or nothing.
    /// An empty item makes the whole call `InvalidArgument`.
    ///
    /// ```
    /// use imgstore_sqlite::{SqliteBackend, StoreBackend};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteBackend::open(dir.path().join("imgstore.db"))?;
    /// let digests = store.set_many(&[b"one", b"two", b"one"])?;
    /// assert_eq!(digests[0], digests[2]);
    /// assert_eq!(store.get(&digests[1])?, b"two");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_many(&self, items: &[&[u8]]) -> Result<Vec<Digest>> {
        if let Some(index) = items.iter().position(|data| data.is_empty()) {
            return Err(Error::invalid_argument(
                &format!("items[{index}]"),
                "invalid empty data",
            ));
        }
        let digests: Vec<Digest> = items.iter().map(|data| Digest::from_bytes(data)).collect();
        // Large items go to synced temp files first, outside the write lock.
        let mut files = Vec::new();
        for (data, digest) in items.iter().zip(&digests) {
            if !self.is_inline(data.len() as u64) && !self.contains(digest)? {
                files.push(self.write_temp(digest, data)?);
            }
        }
        let mut conn = self.writer();
        let tx = self.begin(&mut conn)?;
        for (data, digest) in items.iter().zip(&digests) {
            if self.is_inline(data.len() as u64) {
                insert_inline(&tx, digest, data)?;
            }
        }
        let renamed = self.commit_files_unsynced(&tx, &mut files)?;
        if renamed {
            self.sync_content_dir()?;
        }
        fault::sync("sqlite: commit").map_err(|e| Error::io("commit", self.subject(), e))?;
        tx.commit()
            .map_err(|e| sql_error("commit", self.subject(), e))?;
        Ok(digests)
    }

    fn is_inline(&self, size: u64) -> bool {
        size <= self.inner.options.inline_limit
    }

    fn blob_dir_subject(&self) -> Subject {
        Subject::Store(self.inner.blobs.root().display().to_string())
    }

    /// `data` in a synced temp file.
    fn write_temp(&self, digest: &Digest, data: &[u8]) -> Result<PendingFile> {
        let mut temp = self.new_temp()?;
        temp.write_all(data)
            .and_then(|()| fault::sync("sqlite: fsync blob file"))
            .and_then(|()| temp.sync())
            .map_err(|e| Error::io("write blob file for", content(digest), e))?;
        Ok(PendingFile {
            temp,
            digest: digest.clone(),
            size: data.len() as u64,
        })
    }

    fn new_temp(&self) -> Result<TempBlob> {
        self.inner
            .blobs
            .new_temp()
            .map_err(|e| Error::io("create temp file in", self.blob_dir_subject(), e))
    }

    fn sync_content_dir(&self) -> Result<()> {
        fault::sync("sqlite: fsync blob directory")
            .and_then(|()| sync_dir(self.inner.blobs.content_dir()))
            .map_err(|e| Error::io("sync blob directory", self.blob_dir_subject(), e))
    }

    /// Inside the caller's write transaction: renames each file whose digest
    /// has no row yet into place and inserts its row. True when a file was
    /// renamed; the caller then syncs the directory before committing.
    fn commit_files_unsynced(&self, tx: &Connection, files: &mut [PendingFile]) -> Result<bool> {
        let mut renamed = false;
        for file in files {
            let exists = tx
                .prepare_cached("SELECT 1 FROM content WHERE digest = ?1")
                .and_then(|mut stmt| stmt.exists([file.digest.as_str()]))
                .map_err(|e| sql_error("read", content(&file.digest), e))?;
            if exists {
                continue;
            }
            fault::rename("sqlite: rename blob file into place")
                .and_then(|()| file.temp.rename_to(&self.inner.blobs.path_of(&file.digest)))
                .map_err(|e| Error::io("rename blob file of", content(&file.digest), e))?;
            renamed = true;
            let size = i64::try_from(file.size).map_err(|_| {
                Error::invalid_argument(file.digest.as_str(), "larger than SQLite can count")
            })?;
            tx.prepare_cached("INSERT INTO content (digest, size, data) VALUES (?1, ?2, NULL)")
                .and_then(|mut stmt| stmt.execute(params![file.digest.as_str(), size]))
                .map_err(|e| sql_error("insert", content(&file.digest), e))?;
        }
        Ok(renamed)
    }

    /// Commits one blob file: durable on disk before its row commits.
    fn commit_file(&self, mut file: PendingFile) -> Result<()> {
        let mut conn = self.writer();
        let tx = self.begin(&mut conn)?;
        if self.commit_files_unsynced(&tx, std::slice::from_mut(&mut file))? {
            self.sync_content_dir()?;
        }
        fault::sync("sqlite: commit").map_err(|e| Error::io("commit", content(&file.digest), e))?;
        tx.commit()
            .map_err(|e| sql_error("commit", content(&file.digest), e))
    }

    fn set_inline(&self, digest: &Digest, data: &[u8]) -> Result<()> {
        let conn = self.writer();
        fault::sync("sqlite: commit").map_err(|e| Error::io("commit", content(digest), e))?;
        insert_inline(&conn, digest, data)
    }

    /// Where the bytes of `digest` are, or `None` when it is not stored.
    fn lookup(&self, digest: &Digest) -> Result<Option<Stored>> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached("SELECT data FROM content WHERE digest = ?1")
            .map_err(|e| sql_error("prepare", self.subject(), e))?;
        stmt.query_row([digest.as_str()], |row| {
            Ok(match row.get_ref(0)? {
                ValueRef::Null => Stored::File,
                ValueRef::Blob(bytes) | ValueRef::Text(bytes) => Stored::Inline(bytes.to_vec()),
                // Not bytes at all: verification reports it as corrupt.
                ValueRef::Integer(_) | ValueRef::Real(_) => Stored::Inline(Vec::new()),
            })
        })
        .optional()
        .map_err(|e| sql_error("read", content(digest), e))
    }

    /// Opens the blob file of `digest`. A missing file is `NotFound` when the
    /// row went too (a delete raced this read), `Io` when the row remains.
    fn open_file(&self, digest: &Digest) -> Result<File> {
        match File::open(self.inner.blobs.path_of(digest)) {
            Ok(file) => Ok(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !self.contains(digest)? => {
                Err(Error::content_not_found(digest))
            }
            Err(e) => Err(Error::io("open blob file of", content(digest), e)),
        }
    }

    /// After a committed delete: removes the blob file unless a new row names
    /// it again. Best effort; what stays is an orphan `gc_orphan_files` removes.
    fn remove_unnamed_file(&self, digest: &Digest) {
        let mut conn = self.writer();
        let Ok(tx) = self.begin(&mut conn) else {
            return;
        };
        let named = tx
            .prepare_cached("SELECT 1 FROM content WHERE digest = ?1")
            .and_then(|mut stmt| stmt.exists([digest.as_str()]));
        if let Ok(false) = named {
            let _ = fs::remove_file(self.inner.blobs.path_of(digest));
        }
        let _ = tx.rollback();
    }
}

/// `INSERT OR IGNORE`: setting stored content again changes nothing.
fn insert_inline(conn: &Connection, digest: &Digest, data: &[u8]) -> Result<()> {
    let size = i64::try_from(data.len())
        .map_err(|_| Error::invalid_argument(digest.as_str(), "larger than SQLite can count"))?;
    conn.prepare_cached("INSERT OR IGNORE INTO content (digest, size, data) VALUES (?1, ?2, ?3)")
        .and_then(|mut stmt| stmt.execute(params![digest.as_str(), size, data]))
        .map_err(|e| sql_error("insert", content(digest), e))?;
    Ok(())
}

impl StoreBackend for SqliteBackend {
    fn walk(&self, visit: &mut dyn FnMut(&Digest) -> Result<()>) -> Result<()> {
        // Keyset pages: no connection or read transaction is held while
        // `visit` runs, so it may read and write the store.
        let mut after = Value::Text(String::new());
        loop {
            let page: Vec<Value> = {
                let conn = self.reader()?;
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT digest FROM content WHERE digest > ?1 ORDER BY digest LIMIT ?2",
                    )
                    .map_err(|e| sql_error("prepare", self.subject(), e))?;
                stmt.query_map(params![after, WALK_PAGE], |row| row.get::<_, Value>(0))
                    .and_then(|rows| rows.collect::<rusqlite::Result<_>>())
                    .map_err(|e| sql_error("list content of", self.subject(), e))?
            };
            let full = page.len() as i64 == WALK_PAGE;
            for value in &page {
                if let Value::Text(text) = value
                    && let Ok(digest) = Digest::parse(text)
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
        let bytes = match self.lookup(digest)? {
            None => return Err(Error::content_not_found(digest)),
            Some(Stored::Inline(bytes)) => bytes,
            Some(Stored::File) => {
                let mut bytes = Vec::new();
                self.open_file(digest)?
                    .read_to_end(&mut bytes)
                    .map_err(|e| Error::io("read blob file of", content(digest), e))?;
                bytes
            }
        };
        verify(digest, &bytes)?;
        Ok(bytes)
    }

    /// One pooled connection and one read transaction for all of them: a
    /// restore of 10k configs pays for one snapshot, not 10k.
    fn get_many(&self, digests: &[Digest]) -> Vec<Result<Vec<u8>>> {
        let conn = match self.reader() {
            Ok(conn) => conn,
            Err(e) => return pool_timeout_each(digests, &e),
        };
        // One snapshot for all; without it every read is its own: slower, still right.
        let snapshot = conn.unchecked_transaction();
        let mut out: Vec<Result<Vec<u8>>> = Vec::with_capacity(digests.len());
        let mut in_files = Vec::new();
        if digests.len() >= BULK_READ {
            // Many digests (a restore): one sequential pass over the table
            // beats as many index searches.
            // Each distinct digest has a slot; `left` counts its asks still
            // to answer (the bytes are moved out for the last, copied before).
            let mut slot_of: HashMap<&str, usize> = HashMap::with_capacity(digests.len());
            let mut left: Vec<usize> = Vec::with_capacity(digests.len());
            for digest in digests {
                let next = left.len();
                let slot = *slot_of.entry(digest.as_str()).or_insert(next);
                if slot == next {
                    left.push(0);
                }
                left[slot] += 1;
            }
            // Per slot: `None` not seen; `Some(None)` content kept in a file;
            // `Some(Some(bytes))` inline bytes.
            let mut found: Vec<Option<Option<Vec<u8>>>> = vec![None; left.len()];
            let scanned = conn
                .prepare_cached("SELECT digest, data FROM content")
                .and_then(|mut stmt| {
                    let mut rows = stmt.query([])?;
                    while let Some(row) = rows.next()? {
                        let ValueRef::Text(name) = row.get_ref(0)? else {
                            continue;
                        };
                        let Some(&slot) =
                            std::str::from_utf8(name).ok().and_then(|n| slot_of.get(n))
                        else {
                            continue;
                        };
                        found[slot] = Some(match row.get_ref(1)? {
                            ValueRef::Null => None,
                            ValueRef::Blob(bytes) | ValueRef::Text(bytes) => Some(bytes.to_vec()),
                            ValueRef::Integer(_) | ValueRef::Real(_) => Some(Vec::new()),
                        });
                    }
                    Ok(())
                });
            if scanned.is_ok() {
                for (index, digest) in digests.iter().enumerate() {
                    let slot = slot_of.get(digest.as_str()).copied().unwrap_or_default();
                    left[slot] -= 1;
                    let bytes = if left[slot] > 0 {
                        found[slot].clone()
                    } else {
                        found[slot].take()
                    };
                    out.push(match bytes {
                        _ if !is_storable(digest) => Err(Error::content_not_found(digest)),
                        None => Err(Error::content_not_found(digest)),
                        Some(Some(bytes)) => verify(digest, &bytes).map(|()| bytes),
                        Some(None) => {
                            in_files.push(index);
                            Err(Error::content_not_found(digest))
                        }
                    });
                }
                drop(snapshot);
                drop(conn);
                for index in in_files {
                    out[index] = self.get(&digests[index]);
                }
                return out;
            }
        }
        match conn.prepare_cached("SELECT data FROM content WHERE digest = ?1") {
            Ok(mut stmt) => {
                for digest in digests {
                    if !is_storable(digest) {
                        out.push(Err(Error::content_not_found(digest)));
                        continue;
                    }
                    let row = stmt
                        .query_row([digest.as_str()], |row| {
                            Ok(match row.get_ref(0)? {
                                ValueRef::Null => None,
                                ValueRef::Blob(bytes) | ValueRef::Text(bytes) => {
                                    Some(bytes.to_vec())
                                }
                                ValueRef::Integer(_) | ValueRef::Real(_) => Some(Vec::new()),
                            })
                        })
                        .optional()
                        .map_err(|e| sql_error("read", content(digest), e));
                    out.push(match row {
                        Err(e) => Err(e),
                        Ok(None) => Err(Error::content_not_found(digest)),
                        Ok(Some(Some(bytes))) => verify(digest, &bytes).map(|()| bytes),
                        Ok(Some(None)) => {
                            in_files.push(out.len());
                            Err(Error::content_not_found(digest))
                        }
                    });
                }
            }
            // Each `get` below then reports the failure for its own digest.
            Err(_) => in_files.extend(0..digests.len()),
        }
        drop(snapshot);
        // Content in files (and any fallback) is read after the connection
        // went back to the pool: `get` takes one of its own, and the pool may
        // hold only one.
        drop(conn);
        out.resize_with(digests.len(), || Ok(Vec::new()));
        for index in in_files {
            out[index] = self.get(&digests[index]);
        }
        out
    }

    /// Like [`get_many`](Self::get_many): one read transaction for all.
    fn get_metadata_many(&self, digests: &[Digest], key: &str) -> Vec<Result<Vec<u8>>> {
        if validate_metadata_key(key).is_err() {
            // Validation is deterministic: the same refusal for every digest.
            return digests
                .iter()
                .map(|_| validate_metadata_key(key).map(|()| Vec::new()))
                .collect();
        }
        let conn = match self.reader() {
            Ok(conn) => conn,
            Err(e) => return pool_timeout_each(digests, &e),
        };
        let snapshot = conn.unchecked_transaction();
        if digests.len() >= BULK_READ
            && let Some(out) = metadata_by_scan(&conn, digests, key)
        {
            return out;
        }
        let stmt = conn.prepare_cached(
            "SELECT m.value FROM content AS c
             LEFT JOIN metadata AS m ON m.digest = c.digest AND m.key = ?2
             WHERE c.digest = ?1",
        );
        let Ok(mut stmt) = stmt else {
            drop(stmt);
            drop(snapshot);
            drop(conn);
            return digests.iter().map(|d| self.get_metadata(d, key)).collect();
        };
        let mut out = Vec::with_capacity(digests.len());
        for digest in digests {
            if !is_storable(digest) {
                out.push(Err(Error::content_not_found(digest)));
                continue;
            }
            let found: Result<Option<Option<Vec<u8>>>> = stmt
                .query_row(params![digest.as_str(), key], |row| row.get(0))
                .optional()
                .map_err(|e| sql_error("read", metadata(digest, key), e));
            out.push(match found {
                Err(e) => Err(e),
                Ok(None) => Err(Error::content_not_found(digest)),
                Ok(Some(None)) => Err(Error::NotFound {
                    subject: metadata(digest, key),
                }),
                Ok(Some(Some(value))) => Ok(value),
            });
        }
        out
    }

    fn set(&self, data: &[u8]) -> Result<Digest> {
        if data.is_empty() {
            return Err(empty_data());
        }
        let digest = Digest::from_bytes(data);
        if self.is_inline(data.len() as u64) {
            self.set_inline(&digest, data)?;
        } else if !self.contains(&digest)? {
            let file = self.write_temp(&digest, data)?;
            self.commit_file(file)?;
        }
        Ok(digest)
    }

    fn delete(&self, digest: &Digest) -> Result<()> {
        if !is_storable(digest) {
            return Err(Error::content_not_found(digest));
        }
        let external = {
            let mut conn = self.writer();
            let tx = self.begin(&mut conn)?;
            let external: Option<bool> = tx
                .prepare_cached("DELETE FROM content WHERE digest = ?1 RETURNING data IS NULL")
                .and_then(|mut stmt| {
                    stmt.query_row([digest.as_str()], |row| row.get(0))
                        .optional()
                })
                .map_err(|e| sql_error("delete", content(digest), e))?;
            let Some(external) = external else {
                return Err(Error::content_not_found(digest));
            };
            fault::sync("sqlite: commit")
                .map_err(|e| Error::io("commit delete of", content(digest), e))?;
            tx.commit()
                .map_err(|e| sql_error("commit delete of", content(digest), e))?;
            external
        };
        if external {
            self.remove_unnamed_file(digest);
        }
        Ok(())
    }

    fn set_metadata(&self, digest: &Digest, key: &str, value: &[u8]) -> Result<()> {
        validate_metadata_key(key)?;
        if !is_storable(digest) {
            return Err(Error::content_not_found(digest));
        }
        let conn = self.writer();
        fault::sync("sqlite: commit").map_err(|e| Error::io("write", metadata(digest, key), e))?;
        let changed = conn
            .prepare_cached(
                "INSERT INTO metadata (digest, key, value)
                 SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM content WHERE digest = ?1)
                 ON CONFLICT (digest, key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut stmt| stmt.execute(params![digest.as_str(), key, value]))
            .map_err(|e| sql_error("write", metadata(digest, key), e))?;
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
        let conn = self.reader()?;
        let found: Option<Option<Vec<u8>>> = conn
            .prepare_cached(
                "SELECT m.value FROM content AS c
                 LEFT JOIN metadata AS m ON m.digest = c.digest AND m.key = ?2
                 WHERE c.digest = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![digest.as_str(), key], |row| row.get(0))
                    .optional()
            })
            .map_err(|e| sql_error("read", metadata(digest, key), e))?;
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
        let conn = self.writer();
        fault::sync("sqlite: commit").map_err(|e| Error::io("delete", metadata(digest, key), e))?;
        conn.prepare_cached("DELETE FROM metadata WHERE digest = ?1 AND key = ?2")
            .and_then(|mut stmt| stmt.execute(params![digest.as_str(), key]))
            .map_err(|e| sql_error("delete", metadata(digest, key), e))?;
        Ok(())
    }

    fn contains(&self, digest: &Digest) -> Result<bool> {
        if !is_storable(digest) {
            return Ok(false);
        }
        let conn = self.reader()?;
        conn.prepare_cached("SELECT 1 FROM content WHERE digest = ?1")
            .and_then(|mut stmt| stmt.exists([digest.as_str()]))
            .map_err(|e| sql_error("read", content(digest), e))
    }

    /// One `SUM` over the content table.
    fn total_size(&self) -> Result<u64> {
        let conn = self.reader()?;
        let total: Option<i64> = conn
            .prepare_cached("SELECT SUM(size) FROM content")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
            .map_err(|e| sql_error("read", self.subject(), e))?;
        Ok(total.map_or(0, |t| u64::try_from(t).unwrap_or(0)))
    }

    fn size(&self, digest: &Digest) -> Result<u64> {
        if !is_storable(digest) {
            return Err(Error::content_not_found(digest));
        }
        let conn = self.reader()?;
        let size: Option<i64> = conn
            .prepare_cached("SELECT size FROM content WHERE digest = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([digest.as_str()], |row| row.get(0))
                    .optional()
            })
            .map_err(|e| sql_error("read", content(digest), e))?;
        let size = size.ok_or_else(|| Error::content_not_found(digest))?;
        // The CHECK constraint keeps sizes positive; a negative one is a damaged row.
        u64::try_from(size).map_err(|_| {
            Error::io(
                "read size of",
                content(digest),
                io::Error::new(io::ErrorKind::InvalidData, format!("stored size {size}")),
            )
        })
    }

    fn open_blob(&self, digest: &Digest) -> Result<BlobReader> {
        if !is_storable(digest) {
            return Err(Error::content_not_found(digest));
        }
        let conn = self.reader()?;
        let external: Option<bool> = conn
            .prepare_cached("SELECT data IS NULL FROM content WHERE digest = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([digest.as_str()], |row| row.get(0))
                    .optional()
            })
            .map_err(|e| sql_error("read", content(digest), e))?;
        drop(conn);
        match external {
            None => Err(Error::content_not_found(digest)),
            Some(true) => Ok(Box::new(VerifyingReader::new(
                self.open_file(digest)?,
                digest.clone(),
            ))),
            Some(false) => Ok(Box::new(VerifyingReader::new(
                InlineBlob::new(self.clone(), digest.clone()),
                digest.clone(),
            ))),
        }
    }

    fn write_blob(&self, expected: Option<&Digest>, reader: &mut dyn Read) -> Result<BlobInfo> {
        let input = || match expected {
            Some(digest) => content(digest),
            None => self.blob_dir_subject(),
        };
        let mut hasher = BlobHasher::new(expected);
        let limit = self.inner.options.inline_limit;
        // Up to the inline limit in memory; past it, everything in a temp file.
        let mut head = Vec::new();
        let mut spill: Option<TempBlob> = None;
        let mut size = 0u64;
        // Why the temp file could not be created, if that is what failed.
        let mut create_failed: Option<Error> = None;
        let streamed = hasher.stream(reader, &mut |bytes| {
            size += bytes.len() as u64;
            match spill.as_mut() {
                Some(temp) => temp.write_all(bytes),
                None if size > limit => {
                    let mut temp = self.new_temp().map_err(|e| {
                        let message = e.to_string();
                        create_failed = Some(e);
                        io::Error::other(message)
                    })?;
                    let written = temp.write_all(&head).and_then(|()| temp.write_all(bytes));
                    head = Vec::new();
                    spill = Some(temp);
                    written
                }
                None => {
                    head.extend_from_slice(bytes);
                    Ok(())
                }
            }
        });
        match streamed {
            Ok(()) => {}
            Err(StreamError::Read(e)) => return Err(input_error(input(), e)),
            Err(StreamError::Write(e)) => {
                return Err(create_failed
                    .take()
                    .unwrap_or_else(|| Error::io("write temp file for", input(), e)));
            }
        }
        let BlobInfo { digest, size } = hasher.finish(expected)?;
        match spill {
            None => self.set_inline(&digest, &head)?,
            Some(temp) => {
                fault::sync("sqlite: fsync blob file")
                    .and_then(|()| temp.sync())
                    .map_err(|e| Error::io("sync blob file of", content(&digest), e))?;
                self.commit_file(PendingFile {
                    temp,
                    digest: digest.clone(),
                    size,
                })?;
            }
        }
        Ok(BlobInfo { digest, size })
    }
}

/// The pool's timeout, once per digest of a bulk read.
fn pool_timeout_each(digests: &[Digest], e: &Error) -> Vec<Result<Vec<u8>>> {
    let message = e.to_string();
    digests
        .iter()
        .map(|d| Err(pool_timeout(content(d), message.clone())))
        .collect()
}

fn metadata(digest: &Digest, key: &str) -> Subject {
    Subject::Metadata {
        digest: digest.clone(),
        key: key.to_owned(),
    }
}
