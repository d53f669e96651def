//! The store keeps no copy of the records: opening reads nothing, several
//! stores over one backend see each other's changes at once, a change made
//! by someone else between a call's read and its write fails that call with
//! `Conflict` and changes nothing, and the caller's own ops commit in the
//! same batch as a change (or not at all). Run against every backend.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use imgstore_backend::{Batch, ErrorKind, RecordStore, Result as BackendResult};
use imgstore_digest::Digest;
use imgstore_refs::{Descriptor, ImageRecord, RefStore, RefsError, TargetChange};

const NS: &str = "testing";

fn open_sqlite(dir: &Path) -> Arc<imgstore_sqlite::SqliteBackend> {
    Arc::new(imgstore_sqlite::SqliteBackend::open(dir.join("store.db")).unwrap())
}

fn open_fs(dir: &Path) -> Arc<imgstore_fs::FsBackend> {
    Arc::new(imgstore_fs::FsBackend::open(dir.join("fs")).unwrap())
}

imgstore_backend::backend_matrix!(
    [
        open_reads_nothing_and_get_is_one_read,
        two_stores_over_one_backend_see_each_others_changes,
        two_backends_over_one_directory_see_each_others_changes,
        a_change_between_read_and_write_fails_with_conflict_and_changes_nothing,
        extra_ops_commit_with_the_change_and_not_without_it,
    ]
    sqlite => open_sqlite,
    fs => open_fs,
);

type Open<B> = fn(&Path) -> Arc<B>;

type Hook<B> = Box<dyn FnOnce(&B) + Send>;

/// A backend that counts reads and can run a change of its own just before
/// the next batch is applied: another writer winning the race.
struct Watched<B> {
    inner: Arc<B>,
    reads: AtomicUsize,
    before_apply: Mutex<Option<Hook<B>>>,
}

impl<B> Watched<B> {
    fn new(inner: Arc<B>) -> Arc<Watched<B>> {
        Arc::new(Watched {
            inner,
            reads: AtomicUsize::new(0),
            before_apply: Mutex::new(None),
        })
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    fn race_next_apply(&self, change: impl FnOnce(&B) + Send + 'static) {
        *self.before_apply.lock().unwrap() = Some(Box::new(change));
    }
}

impl<B: RecordStore> RecordStore for Watched<B> {
    fn get_record(&self, bucket: &str, key: &str) -> BackendResult<Option<Vec<u8>>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get_record(bucket, key)
    }

    fn scan_records(
        &self,
        bucket: &str,
        prefix: &str,
        visit: &mut dyn FnMut(&str, &[u8]) -> BackendResult<()>,
    ) -> BackendResult<()> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.scan_records(bucket, prefix, visit)
    }

    fn first_records(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> BackendResult<Vec<(String, Vec<u8>)>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.first_records(bucket, prefix, limit)
    }

    fn apply(&self, batch: &Batch) -> BackendResult<()> {
        let hook = self.before_apply.lock().unwrap().take();
        if let Some(change) = hook {
            change(&self.inner);
        }
        self.inner.apply(batch)
    }
}

fn descriptor(seed: &[u8]) -> Descriptor {
    Descriptor::new(
        "application/vnd.oci.image.index.v1+json",
        Digest::from_bytes(seed),
        7,
    )
}

fn simple(name: &str) -> ImageRecord {
    ImageRecord::new(name, descriptor(b"one"))
}

fn open_reads_nothing_and_get_is_one_read<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let filler = RefStore::open(backend.clone()).unwrap();
    for i in 0..50 {
        filler.create(NS, simple(&format!("n{i:02}"))).unwrap();
    }
    let watched = Watched::new(backend);
    let refs = RefStore::open(watched.clone()).unwrap();
    assert_eq!(watched.reads(), 0, "open reads nothing");
    assert_eq!(refs.get(NS, "n07").unwrap().name, "n07");
    assert_eq!(watched.reads(), 1, "get is one record read");
    assert!(!refs.is_empty(NS).unwrap());
    assert!(refs.is_empty("other").unwrap());
    assert_eq!(watched.reads(), 3, "is_empty is one bounded probe");
    assert_eq!(refs.len(NS).unwrap(), 50);
    assert_eq!(refs.list(NS, &["name==n49"]).unwrap().len(), 1);
    assert_eq!(watched.reads(), 5, "len and list are one scan each");
}

fn two_stores_over_one_backend_see_each_others_changes<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let a = RefStore::open(backend.clone()).unwrap();
    let b = RefStore::open(backend).unwrap();
    see_each_other(&a, &b);
}

fn two_backends_over_one_directory_see_each_others_changes<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let a = RefStore::open(open(dir.path())).unwrap();
    let b = RefStore::open(open(dir.path())).unwrap();
    see_each_other(&a, &b);
}

fn see_each_other<A: RecordStore, B: RecordStore>(a: &RefStore<A>, b: &RefStore<B>) {
    let created = a.create(NS, simple("x")).unwrap();
    assert_eq!(*b.get(NS, "x").unwrap(), created);
    assert_eq!(b.namespaces().unwrap(), [NS]);
    let updated = b
        .update(NS, simple("x").with_label("by", "b"), &["labels.by"])
        .unwrap();
    assert_eq!(*a.get(NS, "x").unwrap(), updated);
    assert_eq!(a.list(NS, &["labels.by==b"]).unwrap().len(), 1);
    let changes = a
        .set_targets(NS, &[("x".to_owned(), descriptor(b"two"))])
        .unwrap();
    assert_eq!(changes, [TargetChange::Moved(Arc::new(updated))]);
    assert_eq!(b.get(NS, "x").unwrap().target, descriptor(b"two"));
    b.delete(NS, "x", None).unwrap();
    assert_eq!(a.get(NS, "x").unwrap_err().kind(), ErrorKind::NotFound);
    assert!(a.is_empty(NS).unwrap());
    assert_eq!(a.namespaces().unwrap(), Vec::<String>::new());
}

fn a_change_between_read_and_write_fails_with_conflict_and_changes_nothing<B>(open: Open<B>)
where
    B: RecordStore + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let watched = Watched::new(backend.clone());
    let refs = RefStore::open(watched.clone()).unwrap();
    let other = Arc::new(RefStore::open(backend).unwrap());
    refs.create(NS, simple("x")).unwrap();
    refs.create(NS, simple("y")).unwrap();

    // The other writer relabels `x` after `update` read it.
    let racer = Arc::clone(&other);
    watched.race_next_apply(move |_| {
        racer
            .update(
                NS,
                simple("x").with_label("winner", "other"),
                &["labels.winner"],
            )
            .unwrap();
    });
    let err = refs
        .update(NS, simple("x").with_label("loser", "us"), &["labels.loser"])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(
        matches!(&err, RefsError::Conflict { namespace, name } if namespace == NS && name == "x"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "image \"x\" in namespace \"testing\" was changed by another writer meanwhile"
    );
    let stored = refs.get(NS, "x").unwrap();
    assert_eq!(
        stored.labels.get("winner").map(String::as_str),
        Some("other")
    );
    assert!(
        !stored.labels.contains_key("loser"),
        "the other change is not lost"
    );

    // delete, delete_many and set_targets the same way.
    let racer = Arc::clone(&other);
    watched.race_next_apply(move |_| {
        racer
            .update(NS, simple("y").with_label("again", "1"), &["labels.again"])
            .unwrap();
    });
    assert_eq!(
        refs.delete(NS, "y", None).unwrap_err().kind(),
        ErrorKind::Conflict
    );
    assert_eq!(refs.get(NS, "y").unwrap().labels["again"], "1");

    let racer = Arc::clone(&other);
    watched.race_next_apply(move |_| racer.delete(NS, "y", None).unwrap());
    assert_eq!(
        refs.delete_many(NS, &["x".to_owned(), "y".to_owned()])
            .unwrap_err()
            .kind(),
        ErrorKind::Conflict
    );
    assert_eq!(refs.get(NS, "x").unwrap(), stored, "x is not deleted");

    let racer = Arc::clone(&other);
    watched.race_next_apply(move |_| {
        racer.create(NS, simple("y")).unwrap();
    });
    let err = refs
        .set_targets(
            NS,
            &[
                ("x".to_owned(), descriptor(b"two")),
                ("y".to_owned(), descriptor(b"two")),
            ],
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(refs.get(NS, "x").unwrap(), stored, "x is not moved");
    assert_eq!(refs.get(NS, "y").unwrap().target, descriptor(b"one"));

    // A create that lost the race to the same name.
    let racer = Arc::clone(&other);
    watched.race_next_apply(move |_| {
        racer
            .create(NS, simple("z").with_label("first", "other"))
            .unwrap();
    });
    let err = refs.create(NS, simple("z")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(refs.get(NS, "z").unwrap().labels["first"], "other");
}

fn extra_ops_commit_with_the_change_and_not_without_it<B>(open: Open<B>)
where
    B: RecordStore + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let watched = Watched::new(backend.clone());
    let refs = RefStore::open(watched.clone()).unwrap();
    let derived = |name: &str| {
        backend
            .get_record("name-images", &format!("{NS}/{name}"))
            .unwrap()
    };

    // Staged and committed together.
    let mut batch = Batch::new();
    let created = refs.stage_create(NS, simple("a"), &mut batch).unwrap();
    assert_eq!(
        refs.get(NS, "a").unwrap_err().kind(),
        ErrorKind::NotFound,
        "staging writes nothing"
    );
    batch.put("name-images", "testing/a", b"image-1".to_vec());
    refs.commit(&batch).unwrap();
    assert_eq!(*refs.get(NS, "a").unwrap(), created);
    assert_eq!(derived("a").as_deref(), Some(&b"image-1"[..]));

    // Another writer changes the name first: neither the change nor the
    // caller's ops are written.
    let mut batch = Batch::new();
    let changes = refs
        .stage_set_targets(NS, &[("a".to_owned(), descriptor(b"two"))], &mut batch)
        .unwrap();
    assert_eq!(changes, [TargetChange::Moved(Arc::new(created.clone()))]);
    let mut own = Batch::new();
    own.put("name-images", "testing/a", b"image-2".to_vec())
        .delete("image-names", "image-1 testing/a");
    batch.extend(&own);
    let other = RefStore::open(backend.clone()).unwrap();
    other
        .update(
            NS,
            simple("a").with_label("meanwhile", "yes"),
            &["labels.meanwhile"],
        )
        .unwrap();
    let err = refs.commit(&batch).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(refs.get(NS, "a").unwrap().target, descriptor(b"one"));
    assert_eq!(
        derived("a").as_deref(),
        Some(&b"image-1"[..]),
        "the extra op is not written"
    );

    // The caller's own precondition fails: the backend's error, naming its
    // record, and the name change is not written either.
    let mut batch = Batch::new();
    refs.stage_delete(NS, "a", None, &mut batch).unwrap();
    batch.require_absent("name-images", "testing/a");
    let err = refs.commit(&batch).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert!(matches!(err, RefsError::Backend(_)), "{err:?}");
    assert!(refs.get(NS, "a").is_ok(), "the name is not deleted");

    // delete_many and update stage the same way.
    refs.create(NS, simple("b")).unwrap();
    let mut batch = Batch::new();
    let removed = refs
        .stage_delete_many(
            NS,
            &["a".to_owned(), "b".to_owned(), "a".to_owned()],
            &mut batch,
        )
        .unwrap();
    assert_eq!(removed.len(), 2);
    batch.delete("name-images", "testing/a");
    refs.commit(&batch).unwrap();
    assert!(refs.is_empty(NS).unwrap());
    assert_eq!(derived("a"), None);

    // A refused change adds nothing to the caller's batch.
    let mut batch = Batch::new();
    let bad = [
        ("fine".to_owned(), descriptor(b"one")),
        (String::new(), descriptor(b"one")),
    ];
    assert_eq!(
        refs.stage_set_targets(NS, &bad, &mut batch)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
    assert!(batch.is_empty());
}
