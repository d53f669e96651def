//! The facade over a PostgreSQL store, against a server the test starts:
//! the corpus imports to the same images, names and layers as on SQLite;
//! tag, untag, remove, gc and fsck behave the same; the root records the
//! database and holds no state; the change lock lives in the database and
//! times out naming the session that holds it.

mod common;

use std::time::Duration;

use common::{corpus, import_corpus, snapshot};
use imgstore::{Backend, Error, Options, Store};
use imgstore_postgres::testserver::TestServer;

fn postgres(url: &str) -> Options {
    Options {
        backend: Some(Backend::Postgres),
        database_url: Some(url.to_owned()),
        ..Options::default()
    }
}

#[test]
fn the_corpus_imports_and_changes_as_on_sqlite() {
    let corpus = corpus();
    let url = TestServer::shared().create_database();
    let (pg_root, sqlite_root) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let pg = Store::open_with(pg_root.path(), postgres(&url)).expect("open postgres");
    let sqlite = common::open(sqlite_root.path(), Backend::Sqlite);
    for store in [&pg, &sqlite] {
        import_corpus(store, &corpus);
    }
    assert_eq!(snapshot(&pg), snapshot(&sqlite));
    for store in [&pg, &sqlite] {
        store
            .tag("registry.demo.test/demo/base:v1", "base:extra")
            .expect("tag");
        store.untag("base:extra").expect("untag");
        store
            .remove("registry.demo.test/demo/quirk:v1", false)
            .expect("remove");
    }
    assert_eq!(snapshot(&pg), snapshot(&sqlite));
    let (pg_gc, sqlite_gc) = (pg.gc().expect("gc"), sqlite.gc().expect("gc"));
    assert_eq!(pg_gc.blobs_removed, sqlite_gc.blobs_removed);
    assert_eq!(pg_gc.layers_removed, sqlite_gc.layers_removed);
    let (pg_fsck, sqlite_fsck) = (
        pg.fsck(false).expect("fsck"),
        sqlite.fsck(false).expect("fsck"),
    );
    assert!(pg_fsck.is_clean(), "{:?}", pg_fsck.problems);
    assert_eq!(pg_fsck.blobs_checked, sqlite_fsck.blobs_checked);
    assert_eq!(pg_fsck.layers_checked, sqlite_fsck.layers_checked);
    assert_eq!(pg_fsck.names_checked, sqlite_fsck.names_checked);
    drop(pg);

    // Reopened without a URL: the root's record names the database.
    let reopened = Store::open(pg_root.path()).expect("reopen");
    assert_eq!(snapshot(&reopened), snapshot(&sqlite));
    let mut entries: Vec<String> = std::fs::read_dir(pg_root.path())
        .expect("read the root")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name != "tmp")
        .collect();
    entries.sort();
    assert_eq!(entries, ["store.json"], "no lock file, no database files");
}

#[test]
fn a_change_waits_for_another_nodes_change_and_times_out_naming_it() {
    let url = TestServer::shared().create_database();
    let (one, two) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let first = Store::open_with(one.path(), postgres(&url)).expect("open");
    import_corpus(&first, &corpus());
    let second = Store::open_with(
        two.path(),
        Options {
            lock_timeout: Duration::from_millis(300),
            ..postgres(&url)
        },
    )
    .expect("open the second node");
    // Another node's change in progress: its session holds the lock.
    let content = first
        .content()
        .as_postgres()
        .expect("a postgres store")
        .clone();
    let held = content.lock_changes(Duration::from_secs(5)).expect("lock");
    match second.tag("registry.demo.test/demo/base:v1", "base:blocked") {
        Err(Error::LockTimeout {
            path,
            waited,
            holders,
        }) => {
            assert_eq!(path.to_str(), Some(format!("database {url}").as_str()));
            assert!(waited >= Duration::from_millis(300));
            assert!(
                holders.contains(&format!("(imgstore {}@", std::process::id())),
                "{holders}"
            );
        }
        other => panic!("expected a lock timeout, got {other:?}"),
    }
    drop(held);
    second
        .tag("registry.demo.test/demo/base:v1", "base:after")
        .expect("the lock is free again");
    assert!(
        first.images().expect("list").iter().any(|image| image
            .references
            .contains(&"docker.io/library/base:after".to_owned())),
        "the first node sees the second's name"
    );
}

#[test]
fn a_postgres_root_without_a_database_url_is_refused() {
    let root = tempfile::tempdir().expect("dir");
    let e = Store::open_with(
        root.path(),
        Options {
            backend: Some(Backend::Postgres),
            ..Options::default()
        },
    )
    .expect_err("no URL");
    assert!(matches!(e, Error::InvalidRoot { .. }), "{e}");
    assert!(!root.path().join("store.json").exists());
}
