//! `RefStore`: image records per namespace, in memory and in the backend.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use imgstore_backend::{Batch, ErrorKind, Precondition, RecordStore};
use imgstore_digest::Digest;

use crate::encoding::{decode, encode};
use crate::filters::Filter;
use crate::record::next_timestamp;
use crate::{Descriptor, ImageRecord, RefsError, validate_namespace};

/// The record bucket: key `<namespace>/<name>` (namespaces cannot contain
/// `/`), value the record without its name (see the `encoding` module docs).
pub const BUCKET: &str = "refs";

/// How often a write re-reads a record another process changed and tries
/// again before it gives up with [`RefsError::Conflict`].
const MAX_ATTEMPTS: usize = 64;

/// The longest a record key may be (the backend's limit).
const MAX_KEY_LEN: usize = 4096;

type Result<T, E = RefsError> = std::result::Result<T, E>;

/// A stored record with the bytes a compare-and-swap requires.
type StoredEntry = (Arc<ImageRecord>, Vec<u8>);

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

/// A stored record that [`RefStore::open`] or [`RefStore::reload`] skipped, and
/// why. Nothing is deleted: the record stays in the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreProblem {
    /// The record key (`<namespace>/<name>`).
    pub key: String,
    /// What was wrong.
    pub reason: String,
}

struct Entry {
    /// Shared with readers: `get` and `list` hand out clones of the `Arc`.
    record: Arc<ImageRecord>,
    /// The bytes in the backend: what a compare-and-swap requires.
    stored: Vec<u8>,
}

#[derive(Default)]
struct State {
    namespaces: HashMap<String, BTreeMap<String, Entry>>,
}

impl State {
    fn entry(&self, namespace: &str, name: &str) -> Option<&Entry> {
        self.namespaces.get(namespace)?.get(name)
    }

    fn insert(&mut self, namespace: &str, entry: Entry) {
        self.namespaces
            .entry(namespace.to_owned())
            .or_default()
            .insert(entry.record.name.clone(), entry);
    }

    fn remove(&mut self, namespace: &str, name: &str) {
        if let Some(names) = self.namespaces.get_mut(namespace) {
            names.remove(name);
            if names.is_empty() {
                self.namespaces.remove(namespace);
            }
        }
    }
}

/// Named image records, scoped by namespace: containerd's metadata image store.
///
/// Every record lives in the backend's [`RecordStore`] (bucket [`BUCKET`]) and
/// in an in-memory index loaded by [`open`](Self::open), so `get` and `list`
/// never touch the backend. Writes are atomic batches that compare-and-swap
/// the stored bytes, so two processes sharing one SQLite database never lose
/// each other's updates: a write that finds the record changed re-reads it
/// and merges again. Within a process writes take turns and the index changes
/// right after each batch commits; readers share a read lock and never wait
/// for the backend.
///
/// Another process's changes reach this index when this process writes the
/// same record (the compare-and-swap notices) or calls [`reload`](Self::reload).
pub struct RefStore<B: ?Sized> {
    backend: Arc<B>,
    state: RwLock<State>,
    writer: Mutex<()>,
    problems: RwLock<Vec<RestoreProblem>>,
}

impl<B: ?Sized> fmt::Debug for RefStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.read();
        f.debug_struct("RefStore")
            .field("namespaces", &state.namespaces.len())
            .field(
                "records",
                &state.namespaces.values().map(BTreeMap::len).sum::<usize>(),
            )
            .finish_non_exhaustive()
    }
}

fn record_key(namespace: &str, name: &str) -> String {
    let mut key = String::with_capacity(namespace.len() + 1 + name.len());
    key.push_str(namespace);
    key.push('/');
    key.push_str(name);
    key
}

fn not_found(namespace: &str, name: &str) -> RefsError {
    RefsError::NotFound {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    }
}

/// Reads every record of the bucket; what does not decode is reported, not fatal.
fn load<B: RecordStore + ?Sized>(backend: &B) -> Result<(State, Vec<RestoreProblem>)> {
    let mut state = State::default();
    let mut problems = Vec::new();
    backend.scan_records(BUCKET, "", &mut |key, value| {
        let problem = |reason: String| RestoreProblem {
            key: key.to_owned(),
            reason,
        };
        let Some((namespace, name)) = key.split_once('/') else {
            problems.push(problem("the key names no namespace".to_owned()));
            return Ok(());
        };
        if let Err(e) = validate_namespace(namespace) {
            problems.push(problem(e.to_string()));
            return Ok(());
        }
        match decode(name, value) {
            Ok(record) => state.insert(
                namespace,
                Entry {
                    record: Arc::new(record),
                    stored: value.to_vec(),
                },
            ),
            Err(reason) => problems.push(problem(reason)),
        }
        Ok(())
    })?;
    Ok((state, problems))
}

impl<B: RecordStore + ?Sized> RefStore<B> {
    /// Opens the records kept in `backend`, loading all of them into memory.
    /// A record that does not decode is skipped and listed by
    /// [`restore_problems`](Self::restore_problems); only a backend failure
    /// fails the open.
    pub fn open(backend: Arc<B>) -> Result<RefStore<B>> {
        let (state, problems) = load(&*backend)?;
        Ok(RefStore {
            backend,
            state: RwLock::new(state),
            writer: Mutex::new(()),
            problems: RwLock::new(problems),
        })
    }

    /// Re-reads every record from the backend, picking up what other processes
    /// changed, and replaces the in-memory index.
    pub fn reload(&self) -> Result<()> {
        let _writer = self.lock_writer();
        let (state, problems) = load(&*self.backend)?;
        *self.write() = state;
        *self
            .problems
            .write()
            .unwrap_or_else(PoisonError::into_inner) = problems;
        Ok(())
    }

    /// The records the last open or reload skipped.
    pub fn restore_problems(&self) -> Vec<RestoreProblem> {
        self.problems
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The backend the records live in.
    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// The record named `name` in `namespace`; `NotFound` when there is none.
    ///
    /// Reads hand out the stored record itself, shared and immutable (no copy
    /// is made); clone it (`ImageRecord::clone(&record)`) to change it.
    pub fn get(&self, namespace: &str, name: &str) -> Result<Arc<ImageRecord>> {
        validate_namespace(namespace)?;
        self.read()
            .entry(namespace, name)
            .map(|entry| Arc::clone(&entry.record))
            .ok_or_else(|| not_found(namespace, name))
    }

    /// The records of `namespace` that match any of `filters` (all of them
    /// with no filters), ordered by name. A filter that does not parse is
    /// `InvalidArgument` ([`RefsError::Filter`]). For example
    /// `&["labels.env==prod,name~=^docker.io/", "name==busybox"]` lists the
    /// production images from Docker Hub, and busybox.
    pub fn list(&self, namespace: &str, filters: &[&str]) -> Result<Vec<Arc<ImageRecord>>> {
        validate_namespace(namespace)?;
        let filter = Filter::parse_all(filters)?;
        self.list_filtered(namespace, &filter)
    }

    /// [`list`](Self::list) with a filter parsed beforehand.
    pub fn list_filtered(&self, namespace: &str, filter: &Filter) -> Result<Vec<Arc<ImageRecord>>> {
        validate_namespace(namespace)?;
        let state = self.read();
        let Some(names) = state.namespaces.get(namespace) else {
            return Ok(Vec::new());
        };
        if filter.is_always() {
            return Ok(names.values().map(|e| Arc::clone(&e.record)).collect());
        }
        Ok(names
            .values()
            .filter(|e| filter.matches(&*e.record))
            .map(|e| Arc::clone(&e.record))
            .collect())
    }

    /// How many records `namespace` holds.
    pub fn len(&self, namespace: &str) -> Result<usize> {
        validate_namespace(namespace)?;
        Ok(self
            .read()
            .namespaces
            .get(namespace)
            .map_or(0, BTreeMap::len))
    }

    /// True when `namespace` holds no record.
    pub fn is_empty(&self, namespace: &str) -> Result<bool> {
        Ok(self.len(namespace)? == 0)
    }

    /// The namespaces that hold at least one record, sorted.
    pub fn namespaces(&self) -> Vec<String> {
        let mut namespaces: Vec<String> = self.read().namespaces.keys().cloned().collect();
        namespaces.sort();
        namespaces
    }

    /// Stores a new record and returns it as stored: both timestamps set to
    /// now (the caller's are ignored), labels and annotations with empty values
    /// dropped. `AlreadyExists` when the name is taken; `InvalidArgument` for
    /// a record [`ImageRecord::validate`] refuses.
    pub fn create(&self, namespace: &str, record: ImageRecord) -> Result<ImageRecord> {
        validate_namespace(namespace)?;
        record.validate()?;
        let key = self.checked_key(namespace, &record.name)?;
        let mut record = record;
        record.drop_empty_values();

        let _writer = self.lock_writer();
        let already_exists = || RefsError::AlreadyExists {
            namespace: namespace.to_owned(),
            name: record.name.clone(),
        };
        if self.read().entry(namespace, &record.name).is_some() {
            return Err(already_exists());
        }
        let now = SystemTime::now();
        record.created_at = now;
        record.updated_at = now;
        let stored = encode(&record);
        let mut batch = Batch::new();
        batch
            .require_absent(BUCKET, &key)
            .put(BUCKET, &key, stored.clone());
        match self.backend.apply(&batch) {
            Ok(()) => {
                self.write().insert(
                    namespace,
                    Entry {
                        record: Arc::new(record.clone()),
                        stored,
                    },
                );
                Ok(record)
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                // Another process created it: learn the record, report the clash.
                self.refresh(namespace, &record.name, &key)?;
                Err(already_exists())
            }
            Err(e) => Err(e.into()),
        }
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
    pub fn update(
        &self,
        namespace: &str,
        record: ImageRecord,
        fieldpaths: &[&str],
    ) -> Result<ImageRecord> {
        validate_namespace(namespace)?;
        if record.name.is_empty() {
            return Err(RefsError::InvalidRecord {
                name: String::new(),
                reason: "image name is required for update".to_owned(),
            });
        }
        let name = record.name.as_str();
        let key = record_key(namespace, name);
        let _writer = self.lock_writer();
        for _ in 0..MAX_ATTEMPTS {
            let (current, current_bytes) = {
                let state = self.read();
                let entry = state
                    .entry(namespace, name)
                    .ok_or_else(|| not_found(namespace, name))?;
                (Arc::clone(&entry.record), entry.stored.clone())
            };
            let mut updated = ImageRecord::merged(&current, &record, fieldpaths)?;
            updated.name = record.name.clone();
            updated.validate()?;
            updated.drop_empty_values();
            updated.created_at = current.created_at;
            updated.updated_at = next_timestamp(current.updated_at);
            let stored = encode(&updated);
            let mut batch = Batch::new();
            batch
                .require(BUCKET, &key, Precondition::Equals(current_bytes))
                .put(BUCKET, &key, stored.clone());
            match self.backend.apply(&batch) {
                Ok(()) => {
                    self.write().insert(
                        namespace,
                        Entry {
                            record: Arc::new(updated.clone()),
                            stored,
                        },
                    );
                    return Ok(updated);
                }
                Err(e) if matches!(e.kind(), ErrorKind::Conflict | ErrorKind::NotFound) => {
                    self.refresh(namespace, name, &key)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(RefsError::Conflict {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Removes the record named `name`. With `expected_target`, only when the
    /// stored target has that digest: otherwise [`RefsError::TargetMismatch`]
    /// (kind `NotFound`, as containerd). `NotFound` when there is no record.
    pub fn delete(
        &self,
        namespace: &str,
        name: &str,
        expected_target: Option<&Digest>,
    ) -> Result<()> {
        validate_namespace(namespace)?;
        let key = record_key(namespace, name);
        let _writer = self.lock_writer();
        for _ in 0..MAX_ATTEMPTS {
            let condition = {
                let state = self.read();
                let entry = state
                    .entry(namespace, name)
                    .ok_or_else(|| not_found(namespace, name))?;
                match expected_target {
                    Some(expected) if entry.record.target.digest != *expected => {
                        return Err(RefsError::TargetMismatch {
                            name: name.to_owned(),
                            stored: entry.record.target.digest.clone(),
                            expected: expected.clone(),
                        });
                    }
                    Some(_) => Precondition::Equals(entry.stored.clone()),
                    None => Precondition::Present,
                }
            };
            let mut batch = Batch::new();
            batch.require(BUCKET, &key, condition).delete(BUCKET, &key);
            match self.backend.apply(&batch) {
                Ok(()) => {
                    self.write().remove(namespace, name);
                    return Ok(());
                }
                Err(e) if matches!(e.kind(), ErrorKind::Conflict | ErrorKind::NotFound) => {
                    self.refresh(namespace, name, &key)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(RefsError::Conflict {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Removes every name of `names` in one atomic batch and returns the
    /// records removed, in order: all of them or none. `NotFound` when one
    /// is not stored (nothing removed); [`RefsError::Conflict`] when another
    /// process changed one meanwhile (nothing removed, the names re-read).
    /// One backend write however many names (`rmi -f` of an image with 10k).
    pub fn delete_many(&self, namespace: &str, names: &[String]) -> Result<Vec<Arc<ImageRecord>>> {
        validate_namespace(namespace)?;
        let _writer = self.lock_writer();
        let mut batch = Batch::new();
        let mut removed = Vec::with_capacity(names.len());
        let mut keys = Vec::with_capacity(names.len());
        {
            let state = self.read();
            let mut seen = std::collections::HashSet::new();
            for name in names {
                if !seen.insert(name.as_str()) {
                    continue;
                }
                let entry = state
                    .entry(namespace, name)
                    .ok_or_else(|| not_found(namespace, name))?;
                let key = record_key(namespace, name);
                batch
                    .require(BUCKET, &key, Precondition::Equals(entry.stored.clone()))
                    .delete(BUCKET, &key);
                removed.push(Arc::clone(&entry.record));
                keys.push(key);
            }
        }
        if removed.is_empty() {
            return Ok(removed);
        }
        match self.backend.apply(&batch) {
            Ok(()) => {
                let mut state = self.write();
                for record in &removed {
                    state.remove(namespace, &record.name);
                }
                Ok(removed)
            }
            Err(e) if matches!(e.kind(), ErrorKind::Conflict | ErrorKind::NotFound) => {
                for (record, key) in removed.iter().zip(&keys) {
                    self.refresh(namespace, &record.name, key)?;
                }
                Err(RefsError::Conflict {
                    namespace: namespace.to_owned(),
                    name: removed
                        .first()
                        .map(|record| record.name.clone())
                        .unwrap_or_default(),
                })
            }
            Err(e) => Err(e.into()),
        }
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
    /// nothing is written); [`RefsError::Conflict`] when another process
    /// changed one of the names meanwhile (nothing written, the names
    /// re-read).
    pub fn set_targets(
        &self,
        namespace: &str,
        targets: &[(String, Descriptor)],
    ) -> Result<Vec<TargetChange>> {
        validate_namespace(namespace)?;
        let _writer = self.lock_writer();
        // Per distinct name: the stored entry (bytes, record) and the new record.
        let mut order: Vec<String> = Vec::new();
        let mut planned: HashMap<String, (Option<StoredEntry>, ImageRecord)> = HashMap::new();
        {
            let state = self.read();
            for (name, target) in targets {
                if let Some((_, new)) = planned.get_mut(name) {
                    new.target = target.clone();
                    continue;
                }
                let stored = state
                    .entry(namespace, name)
                    .map(|entry| (Arc::clone(&entry.record), entry.stored.clone()));
                let new = match &stored {
                    Some((current, _)) => {
                        let mut moved = ImageRecord::clone(current);
                        moved.target = target.clone();
                        moved
                    }
                    None => ImageRecord::new(name.clone(), target.clone()),
                };
                order.push(name.clone());
                planned.insert(name.clone(), (stored, new));
            }
        }
        let now = SystemTime::now();
        let mut batch = Batch::new();
        let mut written: Vec<(String, Entry)> = Vec::new();
        let mut changes = Vec::with_capacity(order.len());
        for name in &order {
            let Some((stored, mut record)) = planned.remove(name) else {
                continue;
            };
            record.validate()?;
            record.drop_empty_values();
            let key = self.checked_key(namespace, name)?;
            match stored {
                // As an import compares: the same blob of the same type.
                Some((current, _))
                    if current.target.digest == record.target.digest
                        && current.target.media_type == record.target.media_type =>
                {
                    changes.push(TargetChange::Unchanged);
                    continue;
                }
                Some((current, bytes)) => {
                    record.created_at = current.created_at;
                    record.updated_at = next_timestamp(current.updated_at);
                    batch.require(BUCKET, &key, Precondition::Equals(bytes));
                    changes.push(TargetChange::Moved(current));
                }
                None => {
                    record.created_at = now;
                    record.updated_at = now;
                    batch.require_absent(BUCKET, &key);
                    changes.push(TargetChange::Created);
                }
            }
            let bytes = encode(&record);
            batch.put(BUCKET, &key, bytes.clone());
            written.push((
                key,
                Entry {
                    record: Arc::new(record),
                    stored: bytes,
                },
            ));
        }
        if written.is_empty() {
            return Ok(changes);
        }
        match self.backend.apply(&batch) {
            Ok(()) => {
                let mut state = self.write();
                for (_, entry) in written {
                    state.insert(namespace, entry);
                }
                Ok(changes)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Conflict | ErrorKind::AlreadyExists | ErrorKind::NotFound
                ) =>
            {
                for (key, entry) in &written {
                    self.refresh(namespace, &entry.record.name, key)?;
                }
                Err(RefsError::Conflict {
                    namespace: namespace.to_owned(),
                    name: written
                        .first()
                        .map(|(_, entry)| entry.record.name.clone())
                        .unwrap_or_default(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The record key, or `InvalidArgument` when the name makes it too long.
    fn checked_key(&self, namespace: &str, name: &str) -> Result<String> {
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

    /// Re-reads one record after a batch found it other than memory said.
    fn refresh(&self, namespace: &str, name: &str, key: &str) -> Result<()> {
        let stored = self.backend.get_record(BUCKET, key)?;
        let mut state = self.write();
        match stored {
            None => {
                state.remove(namespace, name);
                Ok(())
            }
            Some(bytes) => match decode(name, &bytes) {
                Ok(record) => {
                    state.insert(
                        namespace,
                        Entry {
                            record: Arc::new(record),
                            stored: bytes,
                        },
                    );
                    Ok(())
                }
                Err(reason) => {
                    state.remove(namespace, name);
                    Err(RefsError::Corrupt {
                        key: key.to_owned(),
                        reason,
                    })
                }
            },
        }
    }
}

impl<B: ?Sized> RefStore<B> {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
