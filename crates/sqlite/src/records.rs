//! Records: [`RecordStore`] for [`SqliteBackend`] over the table
//! `records (bucket, key, value)`, keyed and ordered by `(bucket, key)`.

use std::io;
use std::sync::atomic::Ordering;

use imgstore_backend::{
    Batch, Error, Op, RecordStore, Result, Subject, validate_bucket, validate_record_key,
};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, ToSql, params};

use crate::backend::SqliteBackend;
use crate::error::sql_error;
use crate::fault;

/// Rows fetched per page by `scan_records`, which holds no connection
/// between pages. Each page is one read transaction (a few lock calls and a
/// seek); 1024 rows of a listing's records are some 300 KiB.
const SCAN_PAGE: i64 = 1024;

/// One page of a scan: every key and value in one buffer (one allocation
/// per page, reused, instead of two per row).
#[derive(Default)]
struct ScanPage {
    bytes: Vec<u8>,
    /// Per row: where its key ends and where its value ends in `bytes`.
    rows: Vec<(usize, usize)>,
}

impl ScanPage {
    fn clear(&mut self) {
        self.bytes.clear();
        self.rows.clear();
    }

    fn push(&mut self, key: &[u8], value: &[u8]) {
        self.bytes.extend_from_slice(key);
        let key_end = self.bytes.len();
        self.bytes.extend_from_slice(value);
        self.rows.push((key_end, self.bytes.len()));
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut start = 0;
        self.rows.iter().map(move |&(key_end, value_end)| {
            let row = (&self.bytes[start..key_end], &self.bytes[key_end..value_end]);
            start = value_end;
            row
        })
    }

    fn last_key(&self) -> Option<&[u8]> {
        self.iter().last().map(|(key, _)| key)
    }
}

/// Bytes bound as TEXT, which may be invalid UTF-8: SQLite compares TEXT with
/// `memcmp` (the BINARY collation), and a bound bound as BLOB would sort
/// after every TEXT key.
struct TextBytes<'a>(&'a [u8]);

impl ToSql for TextBytes<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0)))
    }
}

/// The least byte string greater than every string that starts with
/// `prefix`: drop trailing 0xFF bytes, then add one to the last byte. `None`
/// when there is no such bound (empty, or all 0xFF).
pub(crate) fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut bound = prefix.to_vec();
    while let Some(last) = bound.pop() {
        if last < 0xFF {
            bound.push(last + 1);
            return Some(bound);
        }
    }
    None
}

/// Greater than every UTF-8 string: no UTF-8 byte is 0xFF.
const ABOVE_ALL_KEYS: &[u8] = &[0xFF];

fn record(bucket: &str, key: &str) -> Subject {
    Subject::Record {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
    }
}

fn read_record(conn: &Connection, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT value FROM records WHERE bucket = ?1 AND key = ?2")
        .and_then(|mut stmt| stmt.query_row([bucket, key], |row| row.get(0)).optional())
        .map_err(|e| sql_error("read", record(bucket, key), e))
}

impl RecordStore for SqliteBackend {
    fn get_record(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        validate_bucket(bucket)?;
        validate_record_key(key)?;
        let conn = self.reader()?;
        read_record(&conn, bucket, key)
    }

    fn scan_records(
        &self,
        bucket: &str,
        prefix: &str,
        visit: &mut dyn FnMut(&str, &[u8]) -> Result<()>,
    ) -> Result<()> {
        validate_bucket(bucket)?;
        if prefix.contains('\0') {
            return Err(Error::invalid_argument(prefix, "record key contains NUL"));
        }
        let upper = prefix_upper_bound(prefix.as_bytes());
        let upper = upper.as_deref().unwrap_or(ABOVE_ALL_KEYS);
        let subject = || Subject::Store(format!("bucket {bucket:?}"));
        // Keyset pages: no connection is held while `visit` runs.
        let mut after: Option<Vec<u8>> = None;
        let mut page = ScanPage::default();
        loop {
            page.clear();
            {
                let conn = self.reader()?;
                let (sql, from) = match &after {
                    None => (
                        "SELECT key, value FROM records
                         WHERE bucket = ?1 AND key >= ?2 AND key < ?3 ORDER BY key LIMIT ?4",
                        prefix.as_bytes(),
                    ),
                    Some(last) => (
                        "SELECT key, value FROM records
                         WHERE bucket = ?1 AND key > ?2 AND key < ?3 ORDER BY key LIMIT ?4",
                        last.as_slice(),
                    ),
                };
                let mut stmt = conn
                    .prepare_cached(sql)
                    .map_err(|e| sql_error("prepare", self.subject(), e))?;
                let mut rows = stmt
                    .query(params![
                        bucket,
                        TextBytes(from),
                        TextBytes(upper),
                        SCAN_PAGE
                    ])
                    .map_err(|e| sql_error("scan", subject(), e))?;
                while let Some(row) = rows.next().map_err(|e| sql_error("scan", subject(), e))? {
                    let read = |i| row.get_ref(i).and_then(|v| Ok(v.as_bytes()?));
                    let (key, value) = read(0)
                        .and_then(|key| Ok((key, read(1)?)))
                        .map_err(|e| sql_error("scan", subject(), e))?;
                    page.push(key, value);
                }
            }
            for (key, value) in page.iter() {
                let key = std::str::from_utf8(key).map_err(|e| {
                    Error::io(
                        "scan",
                        subject(),
                        io::Error::new(io::ErrorKind::InvalidData, e),
                    )
                })?;
                visit(key, value)?;
            }
            if page.rows.len() as i64 != SCAN_PAGE {
                return Ok(());
            }
            after = page.last_key().map(<[u8]>::to_vec);
        }
    }

    fn apply(&self, batch: &Batch) -> Result<()> {
        batch.validate()?;
        if batch.is_empty() {
            return Ok(());
        }
        let mut conn = self.writer();
        let tx = self.begin(&mut conn)?;
        // Every precondition against the state before the batch, then the writes.
        for op in batch.ops() {
            if let Op::Require {
                bucket,
                key,
                condition,
            } = op
            {
                let current = read_record(&tx, bucket, key)?;
                condition.check(bucket, key, current.as_deref())?;
            }
        }
        for op in batch.ops() {
            match op {
                Op::Require { .. } => {}
                Op::Put { bucket, key, value } => {
                    tx.prepare_cached(
                        "INSERT INTO records (bucket, key, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value",
                    )
                    .and_then(|mut stmt| stmt.execute(params![bucket, key, value]))
                    .map_err(|e| sql_error("write", record(bucket, key), e))?;
                }
                Op::Delete { bucket, key } => {
                    tx.prepare_cached("DELETE FROM records WHERE bucket = ?1 AND key = ?2")
                        .and_then(|mut stmt| stmt.execute([bucket, key]))
                        .map_err(|e| sql_error("delete", record(bucket, key), e))?;
                }
            }
        }
        fault::sync("sqlite: commit")
            .map_err(|e| Error::io("commit batch on", self.subject(), e))?;
        tx.commit()
            .map_err(|e| sql_error("commit batch on", self.subject(), e))?;
        self.inner.own_commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn first_records(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        validate_bucket(bucket)?;
        if prefix.contains('\0') {
            return Err(Error::invalid_argument(prefix, "record key contains NUL"));
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let upper = prefix_upper_bound(prefix.as_bytes());
        let upper = upper.as_deref().unwrap_or(ABOVE_ALL_KEYS);
        let subject = || Subject::Store(format!("bucket {bucket:?}"));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT key, value FROM records
                 WHERE bucket = ?1 AND key >= ?2 AND key < ?3 ORDER BY key LIMIT ?4",
            )
            .map_err(|e| sql_error("prepare", self.subject(), e))?;
        let rows = stmt.query_map(
            params![
                bucket,
                TextBytes(prefix.as_bytes()),
                TextBytes(upper),
                limit
            ],
            |row| {
                let key = row.get_ref(0)?.as_bytes()?.to_vec();
                let value = row.get_ref(1)?.as_bytes()?.to_vec();
                Ok((key, value))
            },
        );
        let rows: Vec<(Vec<u8>, Vec<u8>)> = rows
            .and_then(|rows| rows.collect::<rusqlite::Result<_>>())
            .map_err(|e| sql_error("scan", subject(), e))?;
        rows.into_iter()
            .map(|(key, value)| {
                let key = String::from_utf8(key).map_err(|e| {
                    Error::io(
                        "scan",
                        subject(),
                        io::Error::new(io::ErrorKind::InvalidData, e),
                    )
                })?;
                Ok((key, value))
            })
            .collect()
    }

    /// The writer connection's `PRAGMA data_version` (which changes when
    /// another connection, in any process, commits) plus the batches this
    /// backend committed itself; both only grow, so their sum changes
    /// whenever either does.
    fn change_counter(&self) -> Result<u64> {
        let data_version: i64 = self
            .writer()
            .pragma_query_value(None, "data_version", |row| row.get(0))
            .map_err(|e| sql_error("read data_version of", self.subject(), e))?;
        let own = self.inner.own_commits.load(Ordering::Relaxed);
        Ok((data_version as u64).wrapping_add(own))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn upper_bound_increments_the_last_byte() {
        assert_eq!(prefix_upper_bound(b"abc"), Some(b"abd".to_vec()));
        assert_eq!(prefix_upper_bound(b"a\xFF\xFF"), Some(b"b".to_vec()));
        assert_eq!(prefix_upper_bound(b"\xFF"), None);
        assert_eq!(prefix_upper_bound(b""), None);
        // The last byte of "é" is a continuation byte; its successor need not be UTF-8.
        assert_eq!(prefix_upper_bound("é".as_bytes()), Some(vec![0xC3, 0xAA]));
        assert_eq!(prefix_upper_bound(b"\xBF"), Some(vec![0xC0]));
    }

    proptest! {
        #[test]
        fn a_key_starts_with_the_prefix_iff_it_lies_in_the_range(
            prefix in proptest::collection::vec(any::<u8>(), 0..4),
            key in proptest::collection::vec(any::<u8>(), 0..6),
        ) {
            let in_range = key.as_slice() >= prefix.as_slice()
                && prefix_upper_bound(&prefix).is_none_or(|upper| key < upper);
            prop_assert_eq!(in_range, key.starts_with(&prefix));
        }
    }
}
