//! The catalog (`<root>/catalog/<namespace>`): `list_images_cached` answers
//! exactly as `Store::list_images` does while the store is unchanged, follows
//! every change made through any `Store` on the root, and refuses to answer
//! (so the caller opens the store) whenever it could be wrong.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use imgstore::backend::ErrorKind;
use imgstore::{
    Backend, ImageQuery, Options, Store, list_images_and_targets_cached, list_images_cached,
};

mod common;

use common::{BACKENDS, corpus, import_corpus, open};

const BASE: &str = "registry.demo.test/demo/base:v1";

fn options(backend: Backend) -> Options {
    Options {
        backend: Some(backend),
        ..Options::default()
    }
}

fn query(all: bool, filters: &[&str]) -> ImageQuery {
    ImageQuery {
        all,
        filters: filters.iter().map(|f| (*f).to_owned()).collect(),
    }
}

/// The queries the catalog answers, each compared with the opened store.
fn assert_cached_matches(root: &Path, backend: Backend, store: &Store) {
    for q in [
        query(false, &[]),
        query(true, &[]),
        query(true, &["dangling=true"]),
        query(false, &["dangling=false", "reference=*/demo/*"]),
        query(false, &["reference=registry.demo.test/demo/base"]),
    ] {
        let cached = list_images_cached(root, &options(backend), &q)
            .expect("cached listing")
            .unwrap_or_else(|| panic!("{backend:?}: the catalog did not answer {q:?}"));
        assert_eq!(cached, store.list_images(&q).expect("list"), "{q:?}");
    }
    // `--digests`: every listed name's target, as its record has it, when
    // that manifest came with the image (`Store::name_digests`).
    let (listed, targets) =
        list_images_and_targets_cached(root, &options(backend), &query(true, &[]))
            .expect("cached listing")
            .expect("current");
    let records: BTreeMap<String, String> = store
        .name_digests()
        .expect("names")
        .into_iter()
        .map(|(name, digest)| (name, digest.to_string()))
        .collect();
    let names: Vec<&String> = listed.iter().flat_map(|s| &s.references).collect();
    assert!(!names.is_empty());
    for name in names {
        assert_eq!(targets.get(name), records.get(name), "{name}");
    }
}

#[test]
fn the_catalog_lists_what_the_store_lists_and_follows_every_change() {
    let corpus = corpus();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        assert_eq!(
            list_images_cached(root, &options(backend), &query(false, &[])).expect("no store"),
            None,
            "no store, no catalog"
        );
        let store = open(root, backend);
        import_corpus(&store, &corpus);
        // Changes leave the catalog behind memory until a flush (or drop).
        assert_eq!(
            list_images_cached(root, &options(backend), &query(false, &[])).expect("read"),
            None
        );
        store.flush_catalog();
        assert_eq!(
            store.list_images(&query(false, &[])).expect("list").len(),
            5
        );
        assert_cached_matches(root, backend, &store);

        // Changes through a second store on the same root (another
        // process: the filesystem backend lets one open at a time).
        let first = (backend == Backend::Sqlite).then_some(store);
        let other = open(root, backend);
        other.tag(BASE, "app:v1").expect("tag");
        other.remove(BASE, false).expect("untag base");
        other
            .set_parent("app:v1", "registry.demo.test/demo/child:v1")
            .expect("parent");
        other.flush_catalog();
        assert_cached_matches(root, backend, &other);
        let listed = list_images_cached(root, &options(backend), &query(false, &[]))
            .expect("cached")
            .expect("current");
        assert!(
            listed
                .iter()
                .any(|s| s.references == ["docker.io/library/app:v1"])
        );
        assert!(
            !listed
                .iter()
                .any(|s| s.references.iter().any(|r| r == BASE))
        );

        // A store opened before catches up on its next change, then
        // rewrites the catalog.
        drop(other);
        let store = first.unwrap_or_else(|| open(root, backend));
        store.pin("app:v1").expect("pin");
        store.flush_catalog();
        assert_cached_matches(root, backend, &store);
        assert!(
            list_images_cached(root, &options(backend), &query(false, &[]))
                .expect("cached")
                .expect("current")
                .iter()
                .any(|s| s.pinned)
        );
    }
}

/// An SQLite store holding the corpus images, its catalog written.
fn flushed_corpus_store() -> Option<(tempfile::TempDir, Store)> {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), Backend::Sqlite);
    import_corpus(&store, &corpus);
    store.flush_catalog();
    Some((dir, store))
}

#[test]
fn a_stale_torn_or_foreign_catalog_is_never_used() {
    let Some((dir, store)) = flushed_corpus_store() else {
        return;
    };
    let root = dir.path();
    let default = query(false, &[]);
    let cached = || list_images_cached(root, &options(Backend::Sqlite), &default).expect("read");
    assert!(cached().is_some());

    // Another backend is refused as an open refuses it (the root records
    // its backend); another namespace has its own catalog (none here).
    let err = list_images_cached(root, &options(Backend::Fs), &default).expect_err("fs");
    assert!(
        matches!(err, imgstore::Error::BackendMismatch { .. }),
        "{err}"
    );
    let other_namespace = Options {
        namespace: "k8s.io".into(),
        ..Options::default()
    };
    assert_eq!(
        list_images_cached(root, &other_namespace, &default).expect("read"),
        None
    );

    // A failed change bumped the generation: the catalog is stale until a
    // flush, which reloads memory before trusting it.
    let err = store
        .tag("no-such-image", "x:1")
        .expect_err("nothing to tag");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(cached(), None, "a failed change leaves the catalog stale");
    store.flush_catalog();
    assert_eq!(
        cached().expect("flushed after a reload"),
        store.list_images(&default).expect("list")
    );

    // Written on drop; an open that finds it current leaves it alone.
    store.tag(BASE, "y:1").expect("tag");
    assert_eq!(cached(), None);
    drop(store);
    let written = cached().expect("written on drop");
    let store = Store::open(root).expect("reopen");
    assert_eq!(written, store.list_images(&default).expect("list"));

    // One flipped byte: refused, whatever it hit.
    let path = root.join("catalog/default");
    let mut bytes = fs::read(&path).expect("catalog");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    fs::write(&path, &bytes).expect("damage");
    assert_eq!(cached(), None);
    fs::write(&path, b"").expect("empty");
    assert_eq!(cached(), None);

    // What a crash in the middle of a catalog write leaves, gc removes.
    let leftover = root.join("catalog/.default.4242.0.tmp");
    fs::write(&leftover, b"half a catalog").expect("leftover");
    let report = store.gc().expect("gc");
    assert_eq!(report.orphan_files_removed, 1, "{report:?}");
    assert!(!leftover.exists());
    store.flush_catalog();
    assert_eq!(
        cached().expect("gc commits a catalog"),
        store.list_images(&default).expect("list")
    );
}

#[test]
fn queries_that_need_configs_open_the_store_and_bad_filters_are_refused() {
    let Some((dir, store)) = flushed_corpus_store() else {
        return;
    };
    let root = dir.path();
    for filters in [
        &["label=a=b"][..],
        &["before="][..],
        &["since=x"][..],
        &["bogus=1"][..],
    ] {
        assert_eq!(
            list_images_cached(root, &options(Backend::Sqlite), &query(false, filters))
                .expect("not answered"),
            None,
            "{filters:?}"
        );
    }
    let err = list_images_cached(
        root,
        &options(Backend::Sqlite),
        &query(false, &["dangling=maybe"]),
    )
    .expect_err("malformed");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        err.to_string(),
        store
            .list_images(&query(false, &["dangling=maybe"]))
            .expect_err("malformed")
            .to_string()
    );
    let escaping = Options {
        namespace: "../../etc".into(),
        ..Options::default()
    };
    let err = list_images_cached(root, &escaping, &query(false, &[])).expect_err("namespace");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

/// Flushing is best effort and never waits: while another process holds
/// the root's change lock it leaves the catalog marked for later.
#[test]
fn a_flush_while_another_process_changes_the_store_waits_for_nothing() {
    use std::os::fd::AsRawFd;

    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let store = open(root, Backend::Sqlite);
    import_corpus(&store, &corpus);
    let cached =
        || list_images_cached(root, &options(Backend::Sqlite), &query(false, &[])).expect("read");

    // Another process's change: its exclusive flock on store.lock.
    let other = fs::File::open(root.join("store.lock")).expect("lock file");
    // SAFETY: flock on a valid, open descriptor has no memory effects.
    assert_eq!(unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX) }, 0);
    let began = std::time::Instant::now();
    store.flush_catalog();
    assert!(began.elapsed() < std::time::Duration::from_secs(1));
    drop(other); // the other process's change ends

    assert_eq!(cached(), None, "nothing was written while it ran");
    store.flush_catalog();
    assert_eq!(
        cached().expect("written once the lock is free"),
        store.list_images(&query(false, &[])).expect("list")
    );
}
