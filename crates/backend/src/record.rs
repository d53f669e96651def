//! Records: the state that is not content-addressed.

use crate::{Error, Result, Subject};

/// A condition a [`Batch`] checks before it writes anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// The key must be absent (else `AlreadyExists`).
    Absent,
    /// The key must be present (else `NotFound`).
    Present,
    /// The key must hold exactly these bytes (else `Conflict`, or `NotFound`
    /// when it is absent).
    Equals(Vec<u8>),
}

impl Precondition {
    /// Checks the condition against the record's current value (`None` when
    /// absent): `AlreadyExists`, `NotFound` or `Conflict` naming the record
    /// when it does not hold. Every backend decides preconditions here.
    pub fn check(&self, bucket: &str, key: &str, current: Option<&[u8]>) -> Result<()> {
        let subject = || Subject::Record {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        };
        match (self, current) {
            (Precondition::Absent, None) | (Precondition::Present, Some(_)) => Ok(()),
            (Precondition::Absent, Some(_)) => Err(Error::AlreadyExists { subject: subject() }),
            (Precondition::Present | Precondition::Equals(_), None) => {
                Err(Error::NotFound { subject: subject() })
            }
            (Precondition::Equals(expected), Some(value)) if value == expected.as_slice() => Ok(()),
            (Precondition::Equals(_), Some(_)) => Err(Error::Conflict {
                subject: subject(),
                reason: "the record holds other bytes than the batch requires".to_owned(),
            }),
        }
    }
}

/// One step of a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Checks a condition; the whole batch fails without effect if it does not hold.
    Require {
        /// Bucket of the key.
        bucket: String,
        /// The key checked.
        key: String,
        /// What must hold.
        condition: Precondition,
    },
    /// Sets a key to a value, creating or replacing it.
    Put {
        /// Bucket of the key.
        bucket: String,
        /// The key written.
        key: String,
        /// The new value.
        value: Vec<u8>,
    },
    /// Removes a key; removing an absent key is not an error.
    Delete {
        /// Bucket of the key.
        bucket: String,
        /// The key removed.
        key: String,
    },
}

/// Writes applied all together or not at all. Preconditions are checked
/// against the state before the batch, all before any write; writes apply in
/// order, so a later `Put` of the same key wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds a `Put`.
    pub fn put(&mut self, bucket: &str, key: &str, value: Vec<u8>) -> &mut Batch {
        self.ops.push(Op::Put {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            value,
        });
        self
    }

    /// Adds a `Delete`.
    pub fn delete(&mut self, bucket: &str, key: &str) -> &mut Batch {
        self.ops.push(Op::Delete {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        });
        self
    }

    /// Adds a precondition.
    pub fn require(&mut self, bucket: &str, key: &str, condition: Precondition) -> &mut Batch {
        self.ops.push(Op::Require {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            condition,
        });
        self
    }

    /// Requires the key to be absent (create-only semantics).
    pub fn require_absent(&mut self, bucket: &str, key: &str) -> &mut Batch {
        self.require(bucket, key, Precondition::Absent)
    }

    /// Appends every step of `other`, in order: how a caller joins the
    /// changes several stores staged into one atomic batch.
    ///
    /// ```
    /// use imgstore_backend::Batch;
    ///
    /// let mut names = Batch::new();
    /// names.require_absent("refs", "default/busybox").put("refs", "default/busybox", vec![1]);
    /// let mut derived = Batch::new();
    /// derived.put("name-images", "default/busybox", vec![2]);
    /// names.extend(&derived);
    /// assert_eq!(names.len(), 3);
    /// ```
    pub fn extend(&mut self, other: &Batch) -> &mut Batch {
        self.ops.extend_from_slice(&other.ops);
        self
    }

    /// The steps, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Checks every bucket and key name (see [`validate_bucket`](crate::validate_bucket)
    /// and [`validate_record_key`](crate::validate_record_key)); backends call
    /// this before touching storage.
    pub fn validate(&self) -> Result<()> {
        for op in &self.ops {
            let (Op::Require { bucket, key, .. }
            | Op::Put { bucket, key, .. }
            | Op::Delete { bucket, key }) = op;
            crate::validate_bucket(bucket)?;
            crate::validate_record_key(key)?;
        }
        Ok(())
    }
}

/// Buckets of `key -> bytes` with atomic batches: where the layer, image,
/// refs and CRI stores keep what is not content (reference counts, names).
///
/// Keys are ordered bytewise within a bucket. A batch that returned Ok is
/// durable; one that failed changed nothing.
pub trait RecordStore: Send + Sync {
    /// The value of one key, or `None`.
    fn get_record(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>>;

    /// Calls `visit(key, value)` for every key of `bucket` that starts with
    /// `prefix` (all keys for `""`), in ascending key order. The first error
    /// `visit` returns stops the scan and is returned.
    fn scan_records(
        &self,
        bucket: &str,
        prefix: &str,
        visit: &mut dyn FnMut(&str, &[u8]) -> Result<()>,
    ) -> Result<()>;

    /// Applies `batch` atomically (see [`Batch`]). A failed precondition is
    /// returned as `AlreadyExists`, `NotFound` or `Conflict` naming the record.
    fn apply(&self, batch: &Batch) -> Result<()>;

    /// At most `limit` records of `bucket` whose keys start with `prefix`,
    /// in ascending key order: a probe ("is any holder left?", limit 1) or
    /// a short-ID lookup (limit 2) that costs O(log n + limit), whatever the
    /// bucket's size. Backends override the default, which stops a full
    /// [`scan_records`](Self::scan_records) early.
    fn first_records(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let mut found = Vec::new();
        if limit == 0 {
            return Ok(found);
        }
        let mut stopped = false;
        let scanned = self.scan_records(bucket, prefix, &mut |key, value| {
            found.push((key.to_owned(), value.to_vec()));
            if found.len() >= limit {
                stopped = true;
                return Err(Error::invalid_argument(prefix, "scan stopped at its limit"));
            }
            Ok(())
        });
        match scanned {
            Err(_) if stopped => Ok(found),
            other => other.map(|()| found),
        }
    }

    /// A number that differs whenever any process may have changed the
    /// records since it was last read: what a long-lived cache compares
    /// before it trusts what it remembers (SQLite's `data_version` plus this
    /// process's own commits; the fs record log's generation and length).
    /// The default, 0 forever, suits a store that only this value changes
    /// and that keeps no caches.
    fn change_counter(&self) -> Result<u64> {
        Ok(0)
    }
}
