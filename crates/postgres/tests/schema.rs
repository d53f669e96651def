//! Migrations: a store of every older schema version opens, migrated, with
//! what it held; a store of a newer version is refused untouched.

mod common;

use imgstore_backend::{Batch, ErrorKind, RecordStore, StoreBackend};
use imgstore_postgres::schema::{MIGRATIONS, SCHEMA_VERSION};
use imgstore_postgres::{PostgresBackend, PostgresOptions};

fn options(schema: &str) -> PostgresOptions {
    PostgresOptions::with_schema(schema)
}

#[test]
fn a_store_of_every_older_version_migrates_and_keeps_its_content() {
    for from in 0..SCHEMA_VERSION {
        let schema = format!("migrate_from_{from}_{}", std::process::id());
        let old =
            PostgresBackend::open_at_version(common::shared_database(), options(&schema), from)
                .expect("open at an old version");
        assert_eq!(old.schema_version().expect("version"), from);
        // Version 1 has content; what it stored must survive.
        let stored = (from >= 1).then(|| old.set(b"kept across migrations").expect("set"));
        drop(old);

        let store = PostgresBackend::open_with(common::shared_database(), options(&schema))
            .expect("open migrates");
        assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
        if let Some(digest) = stored {
            assert_eq!(store.get(&digest).expect("get"), b"kept across migrations");
        }
        let mut batch = Batch::new();
        batch.put("names", "n", b"v".to_vec());
        store
            .apply(&batch)
            .expect("records work after the migration");
        assert_eq!(
            store.get_record("names", "n").expect("get"),
            Some(b"v".to_vec())
        );
    }
    assert_eq!(MIGRATIONS.len() as u32, SCHEMA_VERSION);
}

#[test]
fn a_newer_store_is_refused_and_left_alone() {
    let (schema, store) = common::fresh_store();
    drop(store);
    let mut raw = common::raw(&schema);
    raw.batch_execute("UPDATE schema_version SET version = 99")
        .expect("pretend a newer imgstore wrote it");
    let e = PostgresBackend::open_with(common::shared_database(), options(&schema))
        .expect_err("a newer store");
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
    assert!(
        e.to_string().contains(
            "has schema version 99, newer than the 2 this imgstore understands; open it with a \
             newer imgstore (the database was not changed)"
        ),
        "{e}"
    );
    let version: i32 = raw
        .query_one("SELECT version FROM schema_version", &[])
        .expect("read")
        .get(0);
    assert_eq!(version, 99);
}

#[test]
fn opening_at_once_from_many_threads_migrates_once() {
    let schema = format!("migrate_race_{}", std::process::id());
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let schema = schema.clone();
            std::thread::spawn(move || {
                PostgresBackend::open_with(common::shared_database(), options(&schema))
                    .map(|store| store.schema_version().expect("version"))
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(
            thread.join().expect("thread").expect("open"),
            SCHEMA_VERSION
        );
    }
}

#[test]
fn a_bad_url_or_schema_is_an_invalid_argument_without_the_password() {
    let e =
        PostgresBackend::open("postgres://user:hunter2@host:notaport/db").expect_err("bad port");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(
        e.to_string().contains("postgres://user@host:notaport/db"),
        "{e}"
    );
    let e = PostgresBackend::open_with(common::shared_database(), options("Robert'); DROP"))
        .expect_err("bad schema");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}
