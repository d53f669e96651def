//! `RefStore`: image records per namespace, read from the backend's records
//! on every call and changed in atomic batches with preconditions.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use imgstore_backend::{Batch, Error, Precondition, RecordStore, Subject, validate_record_key};
use imgstore_digest::Digest;

use crate::encoding::{decode, encode};
use crate::filters::Filter;
use crate::record::next_timestamp;
use crate::{Descriptor, ImageRecord, RefsError, validate_namespace};

/// The record bucket: key `<namespace>/<name>` (namespaces cannot contain
/// `/`), value the record without its name (see the `encoding` module docs).
pub const BUCKET: &str = "refs";

/// The longest a record key may be (the backend's limit).
const MAX_KEY_LEN: usize = 4096;

type Result<T, E = RefsError> = std::result::Result<T, E>;

/// What [`RefStore::set_targets`] did to one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetChange {
    /// The name was created.
    Created,
    /// The name was moved; the record as it was.
    Moved(Arc<ImageRecord>),
    /// The name already pointed there.
    Unchanged,
}

/// A stored record that [`RefStore::check`] found unusable, and why.
/// Reads skip it (`list`) or fail on it (`get`: [`RefsError::Corrupt`]);
/// nothing deletes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefProblem {
    /// A key with no `/`: it names no namespace.
    KeyWithoutNamespace {
        /// The record key.
        key: String,
    },
    /// A key whose part before the first `/` is not a containerd namespace.
    InvalidNamespace {
        /// The record key.
        key: String,
        /// Why the namespace is refused.
        reason: String,
    },
    /// A value that does not decode as a record.
    Undecodable {
        /// The record key.
        key: String,
        /// What did not decode.
        reason: String,
    },
    /// A record that decodes but that [`ImageRecord::validate`] refuses
    /// (an empty name, an empty media type, a label too long, ...).
    InvalidRecord {
        /// The record key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl RefProblem {
    /// The key of the record the problem is about (`<namespace>/<name>`).
    pub fn key(&self) -> &str {
        match self {
            RefProblem::KeyWithoutNamespace { key }
            | RefProblem::InvalidNamespace { key, .. }
            | RefProblem::Undecodable { key, .. }
            | RefProblem::InvalidRecord { key, .. } => key,
        }
    }
}

impl fmt::Display for RefProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefProblem::KeyWithoutNamespace { key } => {
                write!(f, "name record {key:?}: the key names no namespace")
            }
            RefProblem::InvalidNamespace { key, reason }
            | RefProblem::Undecodable { key, reason }
            | RefProblem::InvalidRecord { key, reason } => {
                write!(f, "name record {key:?}: {reason}")
            }
        }
    }
}

/// Named image records, scoped by namespace: containerd's metadata image store.
///
/// The records are the backend's [`RecordStore`] (bucket [`BUCKET`]); the
/// store keeps no copy. [`open`](Self::open) reads nothing; [`get`](Self::get)
/// is one record read; listings scan the namespace's records (O(names in the
/// namespace)). So every `RefStore` over one backend, in this process or
/// another, sees every change at once: there is nothing to reload.
///
/// Every change is ONE batch that requires what it read to be unchanged
/// (`Absent` for a name it creates, `Equals` on the stored bytes of a name it
/// updates or deletes): a concurrent change by anyone else makes it fail with
/// [`RefsError::Conflict`] (or `AlreadyExists`) and change nothing, never
/// lose the other change. The caller re-reads and retries if it wants.
/// Each change also comes as `stage_*`, which adds its ops to the caller's
/// batch instead of applying them, so that records the caller derives from
/// the names (or other stores' changes) commit in the same batch; then
/// [`commit`](Self::commit) applies it.
///
/// Within one process the applying calls take turns (a writer mutex), so
/// threads of one `RefStore` do not fail each other's preconditions.
pub struct RefStore<B: ?Sized> {
    backend: Arc<B>,
    writer: Mutex<()>,
}

impl<B: ?Sized> fmt::Debug for RefStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefStore").finish_non_exhaustive()
    }
}

fn record_key(namespace: &str, name: &str) -> String {
    let mut key = String::with_capacity(namespace.len() + 1 + name.len());
    key.push_str(namespace);
    key.push('/');
    key.push_str(name);
    key
}

/// The keys of `namespace`'s records start with this.
fn namespace_prefix(namespace: &str) -> String {
    record_key(namespace, "")
}

fn not_found(namespace: &str, name: &str) -> RefsError {
    RefsError::NotFound {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    }
}

/// A record as read: decoded, and the bytes a precondition requires.
struct Stored {
    record: Arc<ImageRecord>,
    bytes: Vec<u8>,
}

impl<B: RecordStore + ?Sized> RefStore<B> {
    /// A store over the records kept in `backend`. Reads nothing: O(1)
    /// whatever the number of names (never fails today; a `Result` so that
    /// a format check can be added without breaking callers).
    pub fn open(backend: Arc<B>) -> Result<RefStore<B>> {
        Ok(RefStore {
            backend,
            writer: Mutex::new(()),
        })
    }

    /// The backend the records live in.
    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// Checks every stored record, O(names in all namespaces): each key
    /// must be `<namespace>/<name>` with a valid namespace, and each value
    /// must decode into a record [`ImageRecord::validate`] accepts. Returns
    /// the problems in key order (empty when all is well); only a backend
    /// failure is an error. Nothing is changed.
    pub fn check(&self) -> Result<Vec<RefProblem>> {
        let mut problems = Vec::new();
        self.backend.scan_records(BUCKET, "", &mut |key, value| {
            let Some((namespace, name)) = key.split_once('/') else {
                problems.push(RefProblem::KeyWithoutNamespace {
                    key: key.to_owned(),
                });
                return Ok(());
            };
            if let Err(e) = validate_namespace(namespace) {
                problems.push(RefProblem::InvalidNamespace {
                    key: key.to_owned(),
                    reason: e.to_string(),
                });
                return Ok(());
            }
            match decode(name, value) {
                Err(reason) => problems.push(RefProblem::Undecodable {
                    key: key.to_owned(),
                    reason,
                }),
                Ok(record) => {
                    if let Err(e) = record.validate() {
                        problems.push(RefProblem::InvalidRecord {
                            key: key.to_owned(),
                            reason: e.to_string(),
                        });
                    }
                }
            }
            Ok(())
        })?;
        Ok(problems)
    }

    /// The record named `name` in `namespace`: one record read. `NotFound`
    /// when there is none; [`RefsError::Corrupt`] when it does not decode.
    pub fn get(&self, namespace: &str, name: &str) -> Result<Arc<ImageRecord>> {
        validate_namespace(namespace)?;
        self.read(namespace, name)?
            .map(|stored| stored.record)
            .ok_or_else(|| not_found(namespace, name))
    }

    /// The records of `namespace` that match any of `filters` (all of them
    /// with no filters), ordered by name. A filter that does not parse is
    /// `InvalidArgument` ([`RefsError::Filter`]). For example
    /// `&["labels.env==prod,name~=^docker.io/", "name==busybox"]` lists the
    /// production images from Docker Hub, and busybox. O(names in the
    /// namespace): one scan of its records.
    pub fn list(&self, namespace: &str, filters: &[&str]) -> Result<Vec<Arc<ImageRecord>>> {
        validate_namespace(namespace)?;
        let filter = Filter::parse_all(filters)?;
        self.list_filtered(namespace, &filter)
    }

    /// [`list`](Self::list) with a filter parsed beforehand, applied while
    /// scanning. Records that do not decode are skipped ([`check`](Self::check)
    /// reports them).
    pub fn list_filtered(&self, namespace: &str, filter: &Filter) -> Result<Vec<Arc<ImageRecord>>> {
        validate_namespace(namespace)?;
        let prefix = namespace_prefix(namespace);
        let mut records = Vec::new();
        self.backend
            .scan_records(BUCKET, &prefix, &mut |key, value| {
                if let Ok(record) = decode(&key[prefix.len()..], value)
                    && filter.matches(&record)
                {
                    records.push(Arc::new(record));
                }
                Ok(())
            })?;
        Ok(records)
    }

    /// How many records `namespace` holds: O(names in the namespace).
    pub fn len(&self, namespace: &str) -> Result<usize> {
        validate_namespace(namespace)?;
        let mut count = 0;
        self.backend
            .scan_records(BUCKET, &namespace_prefix(namespace), &mut |_, _| {
                count += 1;
                Ok(())
            })?;
        Ok(count)
    }

    /// True when `namespace` holds no record: one bounded probe.
    pub fn is_empty(&self, namespace: &str) -> Result<bool> {
        validate_namespace(namespace)?;
        let first = self
            .backend
            .first_records(BUCKET, &namespace_prefix(namespace), 1)?;
        Ok(first.is_empty())
    }

    /// The namespaces that hold at least one record, sorted: O(names in all
    /// namespaces), one scan of the bucket. Keys of no valid namespace are
    /// skipped ([`check`](Self::check) reports them).
    pub fn namespaces(&self) -> Result<Vec<String>> {
        let mut namespaces = BTreeSet::new();
        // Keys under one namespace are contiguous: compare with the last one.
        let mut last = String::new();
        self.backend.scan_records(BUCKET, "", &mut |key, _| {
            if let Some((namespace, _)) = key.split_once('/')
                && namespace != last
            {
                last = namespace.to_owned();
                if validate_namespace(namespace).is_ok() {
                    namespaces.insert(last.clone());
                }
            }
            Ok(())
        })?;
        Ok(namespaces.into_iter().collect())
    }

    /// Stores a new record and returns it as stored: both timestamps set to
    /// now (the caller's are ignored), labels and annotations with empty values
    /// dropped. `AlreadyExists` when the name is taken (also when another
    /// process took it since the check); `InvalidArgument` for a record
    /// [`ImageRecord::validate`] refuses.
    pub fn create(&self, namespace: &str, record: ImageRecord) -> Result<ImageRecord> {
        let _writer = self.lock_writer();
        let mut batch = Batch::new();
        let created = self.stage_create(namespace, record, &mut batch)?;
        self.commit(&batch)?;
        Ok(created)
    }

    /// [`create`](Self::create)'s checks, then its ops added to `batch` (a
    /// precondition that the name is absent, the put); nothing is written
    /// until the caller commits the batch (see [`commit`](Self::commit)).
    pub fn stage_create(
        &self,
        namespace: &str,
        record: ImageRecord,
        batch: &mut Batch,
    ) -> Result<ImageRecord> {
        validate_namespace(namespace)?;
        record.validate()?;
        let key = checked_key(namespace, &record.name)?;
        let mut record = record;
        record.drop_empty_values();
        if self.backend.get_record(BUCKET, &key)?.is_some() {
            return Err(RefsError::AlreadyExists {
                namespace: namespace.to_owned(),
                name: record.name,
            });
        }
        let now = SystemTime::now();
        record.created_at = now;
        record.updated_at = now;
        batch
            .require_absent(BUCKET, &key)
            .put(BUCKET, &key, encode(&record));
        Ok(record)
    }

    /// Changes the record named `record.name` and returns it as stored.
    ///
    /// With no `fieldpaths` the whole record is replaced (the name stays);
    /// otherwise only the paths given, in order: `labels` (all labels),
    /// `labels.<key>` (one label; a key `record` lacks removes it),
    /// `annotations`, `annotations.<key>` (the target's), `target` (the whole
    /// descriptor). Any other path is `InvalidArgument`. `created_at` is kept;
    /// `updated_at` becomes now, and at least 1 ns later than before.
    /// `InvalidArgument` for an empty name (before the lookup), `NotFound`
    /// when there is no such record: an update cannot rename.
    /// [`RefsError::Conflict`] when the record changed (or went) between the
    /// read and the write: nothing is written.
    pub fn update(
        &self,
        namespace: &str,
        record: ImageRecord,
        fieldpaths: &[&str],
    ) -> Result<ImageRecord> {
        let _writer = self.lock_writer();
        let mut batch = Batch::new();
        let updated = self.stage_update(namespace, record, fieldpaths, &mut batch)?;
        self.commit(&batch)?;
        Ok(updated)
    }

    /// [`update`](Self::update)'s read and checks, then its ops added to
    /// `batch`: a precondition that the record still holds the bytes read,
    /// the put.
    pub fn stage_update(
        &self,
        namespace: &str,
        record: ImageRecord,
        fieldpaths: &[&str],
        batch: &mut Batch,
    ) -> Result<ImageRecord> {
        validate_namespace(namespace)?;
        if record.name.is_empty() {
            return Err(RefsError::InvalidRecord {
                name: String::new(),
                reason: "image name is required for update".to_owned(),
            });
        }
        let name = record.name.as_str();
        let current = self
            .read(namespace, name)?
            .ok_or_else(|| not_found(namespace, name))?;
        let mut updated = ImageRecord::merged(&current.record, &record, fieldpaths)?;
        updated.name = record.name.clone();
        updated.validate()?;
        updated.drop_empty_values();
        updated.created_at = current.record.created_at;
        updated.updated_at = next_timestamp(current.record.updated_at);
        let key = record_key(namespace, name);
        batch
            .require(BUCKET, &key, Precondition::Equals(current.bytes))
            .put(BUCKET, &key, encode(&updated));
        Ok(updated)
    }

    /// Removes the record named `name`. With `expected_target`, only when the
    /// stored target has that digest: otherwise [`RefsError::TargetMismatch`]
    /// (kind `NotFound`, as containerd). `NotFound` when there is no record;
    /// [`RefsError::Conflict`] when it changed between the read and the
    /// write (nothing removed).
    pub fn delete(
        &self,
        namespace: &str,
        name: &str,
        expected_target: Option<&Digest>,
    ) -> Result<()> {
        let _writer = self.lock_writer();
        let mut batch = Batch::new();
        self.stage_delete(namespace, name, expected_target, &mut batch)?;
        self.commit(&batch)
    }

    /// [`delete`](Self::delete)'s read and checks, then its ops added to
    /// `batch`: a precondition that the record still holds the bytes read,
    /// the delete. Returns the record as read.
    pub fn stage_delete(
        &self,
        namespace: &str,
        name: &str,
        expected_target: Option<&Digest>,
        batch: &mut Batch,
    ) -> Result<Arc<ImageRecord>> {
        validate_namespace(namespace)?;
        let current = self
            .read(namespace, name)?
            .ok_or_else(|| not_found(namespace, name))?;
        if let Some(expected) = expected_target
            && current.record.target.digest != *expected
        {
            return Err(RefsError::TargetMismatch {
                name: name.to_owned(),
                stored: current.record.target.digest.clone(),
                expected: expected.clone(),
            });
        }
        let key = record_key(namespace, name);
        batch
            .require(BUCKET, &key, Precondition::Equals(current.bytes))
            .delete(BUCKET, &key);
        Ok(current.record)
    }

    /// Removes every name of `names` in one atomic batch and returns the
    /// records removed, in order (a name given twice counts once): all of
    /// them or none. `NotFound` when one is not stored (nothing removed);
    /// [`RefsError::Conflict`] when one changed meanwhile (nothing removed).
    /// One backend write however many names (`rmi -f` of an image with 10k).
    pub fn delete_many(&self, namespace: &str, names: &[String]) -> Result<Vec<Arc<ImageRecord>>> {
        let _writer = self.lock_writer();
        let mut batch = Batch::new();
        let removed = self.stage_delete_many(namespace, names, &mut batch)?;
        self.commit(&batch)?;
        Ok(removed)
    }

    /// [`delete_many`](Self::delete_many)'s reads and checks, then its ops
    /// added to `batch` (per name: a precondition on the bytes read, the
    /// delete).
    pub fn stage_delete_many(
        &self,
        namespace: &str,
        names: &[String],
        batch: &mut Batch,
    ) -> Result<Vec<Arc<ImageRecord>>> {
        validate_namespace(namespace)?;
        let mut removed = Vec::with_capacity(names.len());
        let mut seen = HashSet::new();
        let mut staged = Batch::new();
        for name in names {
            if !seen.insert(name.as_str()) {
                continue;
            }
            removed.push(self.stage_delete(namespace, name, None, &mut staged)?);
        }
        batch.extend(&staged);
        Ok(removed)
    }

    /// Points every name of `targets` at its descriptor in one atomic batch,
    /// as an import does: a name not stored is created (as
    /// [`create`](Self::create) would), a stored one with another target is
    /// moved (as [`update`](Self::update) of `target` would: labels kept,
    /// `updated_at` now), one already pointing there is left alone. A name
    /// given twice ends at its last target. Returns what each distinct name
    /// was before, in the order first given. One backend write for the whole
    /// set, so naming one image 10k times costs one commit, not 10k.
    /// `InvalidArgument` for a record [`ImageRecord::validate`] refuses (then
    /// nothing is written); [`RefsError::Conflict`] (or `AlreadyExists`)
    /// when another process changed one of the names meanwhile (nothing
    /// written).
    pub fn set_targets(
        &self,
        namespace: &str,
        targets: &[(String, Descriptor)],
    ) -> Result<Vec<TargetChange>> {
        let _writer = self.lock_writer();
        let mut batch = Batch::new();
        let changes = self.stage_set_targets(namespace, targets, &mut batch)?;
        self.commit(&batch)?;
        Ok(changes)
    }

    /// [`set_targets`](Self::set_targets)'s reads and checks, then its ops
    /// added to `batch` (per name changed: `Absent` for a new name or
    /// `Equals` on the bytes read, the put). Nothing is added for names
    /// left alone, nor anything at all when a record is refused.
    pub fn stage_set_targets(
        &self,
        namespace: &str,
        targets: &[(String, Descriptor)],
        batch: &mut Batch,
    ) -> Result<Vec<TargetChange>> {
        validate_namespace(namespace)?;
        // The last target of each distinct name, in the order first given.
        let mut order: Vec<&str> = Vec::new();
        let mut last: HashMap<&str, &Descriptor> = HashMap::new();
        for (name, target) in targets {
            if last.insert(name.as_str(), target).is_none() {
                order.push(name);
            }
        }
        let now = SystemTime::now();
        let mut staged = Batch::new();
        let mut changes = Vec::with_capacity(order.len());
        for name in order {
            let target = last[name];
            let key = checked_key(namespace, name)?;
            let stored = self.read(namespace, name)?;
            let mut record = match &stored {
                Some(current) => {
                    let mut moved = ImageRecord::clone(&current.record);
                    moved.target = target.clone();
                    moved
                }
                None => ImageRecord::new(name, target.clone()),
            };
            record.validate()?;
            record.drop_empty_values();
            match stored {
                // As an import compares: the same blob of the same type.
                Some(current)
                    if current.record.target.digest == record.target.digest
                        && current.record.target.media_type == record.target.media_type =>
                {
                    changes.push(TargetChange::Unchanged);
                    continue;
                }
                Some(current) => {
                    record.created_at = current.record.created_at;
                    record.updated_at = next_timestamp(current.record.updated_at);
                    staged.require(BUCKET, &key, Precondition::Equals(current.bytes));
                    changes.push(TargetChange::Moved(current.record));
                }
                None => {
                    record.created_at = now;
                    record.updated_at = now;
                    staged.require_absent(BUCKET, &key);
                    changes.push(TargetChange::Created);
                }
            }
            staged.put(BUCKET, &key, encode(&record));
        }
        batch.extend(&staged);
        Ok(changes)
    }

    /// Applies a batch holding staged changes (and whatever the caller
    /// added), atomically. A precondition on a name record that no longer
    /// holds is [`RefsError::AlreadyExists`] (a name created meanwhile) or
    /// [`RefsError::Conflict`] (changed or removed meanwhile), naming it;
    /// any other failure, the caller's own preconditions included, is
    /// [`RefsError::Backend`] with the backend's error. Nothing is written
    /// when it fails.
    pub fn commit(&self, batch: &Batch) -> Result<()> {
        self.backend.apply(batch).map_err(name_conflict)
    }

    /// The record stored under `namespace`/`name`, `None` when absent (or
    /// when no record can have that name).
    fn read(&self, namespace: &str, name: &str) -> Result<Option<Stored>> {
        let key = record_key(namespace, name);
        if validate_record_key(&key).is_err() {
            return Ok(None);
        }
        let Some(bytes) = self.backend.get_record(BUCKET, &key)? else {
            return Ok(None);
        };
        match decode(name, &bytes) {
            Ok(record) => Ok(Some(Stored {
                record: Arc::new(record),
                bytes,
            })),
            Err(reason) => Err(RefsError::Corrupt { key, reason }),
        }
    }
}

impl<B: ?Sized> RefStore<B> {
    fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The record key, or `InvalidArgument` when the name makes it too long.
fn checked_key(namespace: &str, name: &str) -> Result<String> {
    if namespace.len() + 1 + name.len() > MAX_KEY_LEN {
        return Err(RefsError::InvalidRecord {
            name: name.chars().take(150).collect(),
            reason: format!(
                "image name longer than {} bytes in namespace {namespace:?}",
                MAX_KEY_LEN - 1 - namespace.len()
            ),
        });
    }
    Ok(record_key(namespace, name))
}

/// A failed precondition on one of this store's records, as the refs error
/// naming it; anything else as it is.
fn name_conflict(e: Error) -> RefsError {
    let (Error::AlreadyExists { subject }
    | Error::NotFound { subject }
    | Error::Conflict { subject, .. }) = &e
    else {
        return e.into();
    };
    let Subject::Record { bucket, key } = subject else {
        return e.into();
    };
    let Some((namespace, name)) = key.split_once('/').filter(|_| bucket == BUCKET) else {
        return e.into();
    };
    let (namespace, name) = (namespace.to_owned(), name.to_owned());
    match e {
        Error::AlreadyExists { .. } => RefsError::AlreadyExists { namespace, name },
        _ => RefsError::Conflict { namespace, name },
    }
}
