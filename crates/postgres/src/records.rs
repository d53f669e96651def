//! Records: [`RecordStore`] for [`PostgresBackend`] over the table
//! `records (bucket, key, value)`, keys as `bytea` (ordered bytewise).
//!
//! A batch is one `READ COMMITTED` transaction that first takes a
//! transaction-level advisory lock on every record it names (in one
//! statement, in key order, so two batches never deadlock), then checks its
//! preconditions, then writes. Row locks alone could not do it: a
//! precondition that a record is absent has no row to lock, and two
//! batches could both see it absent. `SERIALIZABLE` could, but it fails
//! whole batches on false conflicts of its predicate locks (index pages),
//! which then need retries under load; the advisory locks only make
//! batches naming the same record wait for each other.

use std::collections::BTreeMap;

use imgstore_backend::{
    Batch, Error, Op, RecordStore, Result, Subject, validate_bucket, validate_record_key,
};
use postgres::types::Type;

use crate::backend::{PostgresBackend, fnv1a};
use crate::error::{Failed, PgResultExt};
use crate::fault;

/// Rows fetched per page by `scan_records`, which holds no connection between pages.
const SCAN_PAGE: i64 = 1000;

/// Greater than every UTF-8 string: no UTF-8 byte is 0xFF.
const ABOVE_ALL_KEYS: &[u8] = &[0xFF];

/// The least byte string greater than every string that starts with
/// `prefix`: drop trailing 0xFF bytes, then add one to the last byte. `None`
/// when there is no such bound (empty, or all 0xFF).
fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut bound = prefix.to_vec();
    while let Some(last) = bound.pop() {
        if last < 0xFF {
            bound.push(last + 1);
            return Some(bound);
        }
    }
    None
}

fn record(bucket: &str, key: &str) -> Subject {
    Subject::Record {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
    }
}

fn bucket_subject(bucket: &str) -> Subject {
    Subject::Store(format!("bucket {bucket:?}"))
}

/// Keys are validated UTF-8 when written; bytes that are not are a damaged row.
fn key_text(bucket: &str, key: Vec<u8>) -> Result<String, Failed> {
    String::from_utf8(key).map_err(|e| {
        Failed::from(Error::io(
            "scan",
            bucket_subject(bucket),
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        ))
    })
}

impl PostgresBackend {
    /// The rows of `bucket` with `lower <= key < upper`, at most `limit`.
    fn key_range(
        &self,
        bucket: &str,
        lower: &[u8],
        upper: &[u8],
        limit: i64,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        self.run(|client| {
            let rows = client
                .query_typed(
                    "SELECT key, value FROM records
                     WHERE bucket = $1 AND key >= $2 AND key < $3 ORDER BY key LIMIT $4",
                    &[
                        (&bucket, Type::TEXT),
                        (&lower, Type::BYTEA),
                        (&upper, Type::BYTEA),
                        (&limit, Type::INT8),
                    ],
                )
                .pg("scan", || bucket_subject(bucket))?;
            rows.iter()
                .map(|row| {
                    let key: Vec<u8> = row.try_get(0).pg("scan", || bucket_subject(bucket))?;
                    let value: Vec<u8> = row.try_get(1).pg("scan", || bucket_subject(bucket))?;
                    Ok((key_text(bucket, key)?, value))
                })
                .collect()
        })
    }

    /// The advisory lock key of one record of this store.
    fn record_lock_key(&self, bucket: &str, key: &str) -> i64 {
        fnv1a(&[
            self.inner.options.schema.as_bytes(),
            bucket.as_bytes(),
            key.as_bytes(),
        ])
    }
}

/// What a batch leaves in each record it writes: the last write wins.
type FinalState<'a> = BTreeMap<(&'a str, &'a str), Option<&'a [u8]>>;

fn final_state(batch: &Batch) -> FinalState<'_> {
    let mut state = FinalState::new();
    for op in batch.ops() {
        match op {
            Op::Require { .. } => {}
            Op::Put { bucket, key, value } => {
                state.insert((bucket, key), Some(value));
            }
            Op::Delete { bucket, key } => {
                state.insert((bucket, key), None);
            }
        }
    }
    state
}

/// How many of the change locks this process holds (classid, objid, pid)
/// are no longer held by the session that took them.
pub(crate) const FENCE_CHECK: &str = "
    SELECT count(*) FROM unnest($1::int8[], $2::int8[], $3::int4[]) AS f (high, low, pid)
    WHERE NOT EXISTS (
        SELECT 1 FROM pg_locks AS l
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid::bigint = f.high AND l.objid::bigint = f.low AND l.pid = f.pid)";

/// `Conflict`: the change lock this process held was lost.
pub(crate) fn lost_lock(subject: Subject) -> Error {
    Error::Conflict {
        subject,
        reason: "the change lock was lost (its session ended: a server restart or a cut \
                 connection); another node may be changing the store, so this change stops"
            .to_owned(),
    }
}

impl PostgresBackend {
    /// Whether transaction `xid` committed (`pg_xact_status`), asked on a
    /// fresh connection and again while it is still in progress (a server
    /// finishing it), within [`PostgresOptions::retry_for`](crate::PostgresOptions::retry_for);
    /// `None` when the server cannot say.
    fn commit_status(&self, xid: &str) -> Option<bool> {
        let deadline = std::time::Instant::now() + self.inner.options.retry_for;
        loop {
            let status: Option<String> = self
                .run(|client| {
                    client
                        .query_typed_one(
                            "SELECT pg_xact_status($1::text::xid8)::text",
                            &[(&xid, Type::TEXT)],
                        )
                        .and_then(|row| row.try_get(0))
                        .pg("ask for the outcome of a batch on", || self.subject())
                })
                .ok()?;
            match status.as_deref() {
                Some("committed") => return Some(true),
                Some("aborted") => return Some(false),
                Some("in progress") if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                _ => return None,
            }
        }
    }
}

impl RecordStore for PostgresBackend {
    fn get_record(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        validate_bucket(bucket)?;
        validate_record_key(key)?;
        self.run(|client| {
            client
                .query_typed_opt(
                    "SELECT value FROM records WHERE bucket = $1 AND key = $2",
                    &[(&bucket, Type::TEXT), (&key.as_bytes(), Type::BYTEA)],
                )
                .pg("read", || record(bucket, key))?
                .map(|row| row.try_get(0).pg("read", || record(bucket, key)))
                .transpose()
        })
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
        // Keyset pages: no connection is held while `visit` runs.
        let mut lower = prefix.as_bytes().to_vec();
        loop {
            let page = self.key_range(bucket, &lower, upper, SCAN_PAGE)?;
            let full = page.len() as i64 == SCAN_PAGE;
            for (key, value) in &page {
                visit(key, value)?;
            }
            match page.into_iter().last() {
                Some((last, _)) if full => {
                    // The least key after `last`.
                    lower = last.into_bytes();
                    lower.push(0);
                }
                _ => return Ok(()),
            }
        }
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
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.key_range(bucket, prefix.as_bytes(), upper, limit)
    }

    fn apply(&self, batch: &Batch) -> Result<()> {
        batch.validate()?;
        if batch.is_empty() {
            return Ok(());
        }
        // Every record the batch names, locked in key order.
        let mut lock_keys: Vec<i64> = batch
            .ops()
            .iter()
            .map(|op| {
                let (Op::Require { bucket, key, .. }
                | Op::Put { bucket, key, .. }
                | Op::Delete { bucket, key }) = op;
                self.record_lock_key(bucket, key)
            })
            .collect();
        lock_keys.sort_unstable();
        lock_keys.dedup();
        let required: Vec<(&str, &str, &imgstore_backend::Precondition)> = batch
            .ops()
            .iter()
            .filter_map(|op| match op {
                Op::Require {
                    bucket,
                    key,
                    condition,
                } => Some((bucket.as_str(), key.as_str(), condition)),
                _ => None,
            })
            .collect();
        let required_buckets: Vec<&str> = required.iter().map(|(b, _, _)| *b).collect();
        let required_keys: Vec<&[u8]> = required.iter().map(|(_, k, _)| k.as_bytes()).collect();
        let state = final_state(batch);
        let (mut put_buckets, mut put_keys, mut put_values) = (Vec::new(), Vec::new(), Vec::new());
        let (mut delete_buckets, mut delete_keys) = (Vec::new(), Vec::new());
        for ((bucket, key), value) in &state {
            match value {
                Some(value) => {
                    put_buckets.push(*bucket);
                    put_keys.push(key.as_bytes());
                    put_values.push(*value);
                }
                None => {
                    delete_buckets.push(*bucket);
                    delete_keys.push(key.as_bytes());
                }
            }
        }
        let slot = self.inner.counter_slot;
        let (fence_high, fence_low, fence_pids) = self.fences();
        let subject = || self.subject();
        // The transaction id of an attempt whose COMMIT went unanswered.
        let mut unanswered: Option<String> = None;
        let applied = self.run(|client| {
            unanswered = None;
            let mut tx = client.transaction().pg("begin a batch on", subject)?;
            // The locks, and the transaction's id for asking the server
            // later whether it committed, should the COMMIT go unanswered.
            let xid: String = tx
                .query_typed_one(
                    "SELECT pg_current_xact_id()::text, count(*) FROM (
                         SELECT pg_advisory_xact_lock(k) FROM unnest($1::int8[]) AS k ORDER BY k
                     ) AS locked",
                    &[(&lock_keys, Type::INT8_ARRAY)],
                )
                .and_then(|row| row.try_get(0))
                .pg("lock the records of a batch on", subject)?;
            if !fence_pids.is_empty() {
                let lost: i64 = tx
                    .query_typed_one(FENCE_CHECK, &[
                        (&fence_high, Type::INT8_ARRAY),
                        (&fence_low, Type::INT8_ARRAY),
                        (&fence_pids, Type::INT4_ARRAY),
                    ])
                    .and_then(|row| row.try_get(0))
                    .pg("check the change lock of", subject)?;
                if lost > 0 {
                    return Err(Failed::from(lost_lock(self.subject())));
                }
            }
            if !required.is_empty() {
                let rows = tx
                    .query_typed(
                        "SELECT r.bucket, r.key, r.value FROM records AS r
                         JOIN unnest($1::text[], $2::bytea[]) AS q (bucket, key)
                           ON r.bucket = q.bucket AND r.key = q.key",
                        &[
                            (&required_buckets, Type::TEXT_ARRAY),
                            (&required_keys, Type::BYTEA_ARRAY),
                        ],
                    )
                    .pg("check the preconditions of a batch on", subject)?;
                let mut current: BTreeMap<(String, Vec<u8>), Vec<u8>> = BTreeMap::new();
                for row in &rows {
                    let bucket: String = row.try_get(0).pg("read", subject)?;
                    let key: Vec<u8> = row.try_get(1).pg("read", subject)?;
                    let value: Vec<u8> = row.try_get(2).pg("read", subject)?;
                    current.insert((bucket, key), value);
                }
                // Every precondition against the state before the batch.
                for (bucket, key, condition) in &required {
                    let value = current.get(&((*bucket).to_owned(), key.as_bytes().to_vec()));
                    condition.check(bucket, key, value.map(Vec::as_slice))?;
                }
            }
            // One statement writes everything and counts the change.
            tx.execute_typed(
                "WITH deleted AS (
                     DELETE FROM records AS r USING unnest($1::text[], $2::bytea[]) AS d (bucket, key)
                     WHERE r.bucket = d.bucket AND r.key = d.key),
                 counted AS (
                     UPDATE change_counter SET value = value + 1 WHERE slot = $6)
                 INSERT INTO records (bucket, key, value)
                 SELECT * FROM unnest($3::text[], $4::bytea[], $5::bytea[])
                 ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value",
                &[
                    (&delete_buckets, Type::TEXT_ARRAY),
                    (&delete_keys, Type::BYTEA_ARRAY),
                    (&put_buckets, Type::TEXT_ARRAY),
                    (&put_keys, Type::BYTEA_ARRAY),
                    (&put_values, Type::BYTEA_ARRAY),
                    (&slot, Type::INT4),
                ],
            )
            .pg("write a batch on", subject)?;
            fault::sync("postgres: commit")
                .map_err(|e| Error::io("commit batch on", subject(), e))?;
            let committed = tx.commit().at_commit(subject);
            if committed.is_err() {
                unanswered = Some(xid);
            }
            committed
        });
        match (applied, unanswered) {
            (Ok(()), _) => Ok(()),
            (Err(error), None) => Err(error),
            // The COMMIT was sent and its answer lost (the connection or
            // the server went): ask the server what became of it.
            (Err(error), Some(xid)) => match self.commit_status(&xid) {
                Some(true) => Ok(()),
                // Rolled back: nothing happened, so the batch may run again.
                Some(false) => self.apply(batch),
                None => Err(error),
            },
        }
    }

    /// The sum of the `change_counter` slots: every batch of every node adds
    /// one in its own transaction, so the sum changes with every commit
    /// and never with a rolled-back batch.
    fn change_counter(&self) -> Result<u64> {
        let total: i64 = self.run(|client| {
            client
                .query_typed_one("SELECT sum(value)::bigint FROM change_counter", &[])
                .and_then(|row| row.try_get(0))
                .pg("read the change counter of", || self.subject())
        })?;
        Ok(total as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bound_increments_the_last_byte() {
        assert_eq!(prefix_upper_bound(b"abc"), Some(b"abd".to_vec()));
        assert_eq!(prefix_upper_bound(b"a\xFF\xFF"), Some(b"b".to_vec()));
        assert_eq!(prefix_upper_bound(b""), None);
    }

    #[test]
    fn the_last_write_of_a_key_wins() {
        let mut batch = Batch::new();
        batch
            .put("b", "k", vec![1])
            .delete("b", "k")
            .put("b", "j", vec![2])
            .delete("b", "gone")
            .put("b", "gone", vec![3])
            .delete("b", "gone");
        let state = final_state(&batch);
        assert_eq!(state.get(&("b", "k")), Some(&None));
        assert_eq!(state.get(&("b", "j")), Some(&Some(&[2u8][..])));
        assert_eq!(state.get(&("b", "gone")), Some(&None));
    }
}
