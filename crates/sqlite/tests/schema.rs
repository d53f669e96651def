//! Opening databases: migrations from every older schema version, refusal of
//! newer or foreign databases, and the pragmas every connection runs with.

mod common;

use std::fs;
use std::time::Duration;

use common::{Fixture, TestResult, db_path, raw};
use imgstore_backend::{Batch, ErrorKind, RecordStore, StoreBackend};
use imgstore_digest::Digest;
use imgstore_sqlite::schema::{MIGRATIONS, SCHEMA_VERSION};
use imgstore_sqlite::{SqliteBackend, SqliteOptions, Synchronous};
use rusqlite::{Connection, params};

/// A database built with the first `version` migration steps only, as a
/// release of that version would have left it.
fn database_at_version(version: u32) -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let conn = raw(&db_path(dir.path()));
    for step in MIGRATIONS.iter().take(version as usize) {
        conn.execute_batch(step.sql)
            .expect("apply an old migration step");
        conn.pragma_update(None, "user_version", step.version)
            .expect("set user_version");
    }
    (dir, conn)
}

fn user_version(conn: &Connection) -> u32 {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("read user_version")
}

#[test]
fn every_older_version_migrates_forward_and_keeps_its_data() -> TestResult {
    for version in 0..SCHEMA_VERSION {
        let (dir, conn) = database_at_version(version);
        // What a store at this version could hold.
        let config = br#"{"os":"linux"}"#;
        let digest = Digest::from_bytes(config);
        if version >= 1 {
            conn.execute(
                "INSERT INTO content (digest, size, data) VALUES (?1, ?2, ?3)",
                params![digest.as_str(), config.len() as i64, &config[..]],
            )?;
            conn.execute(
                "INSERT INTO metadata (digest, key, value) VALUES (?1, 'parent', x'70')",
                [digest.as_str()],
            )?;
        }
        if version >= 2 {
            conn.execute(
                "INSERT INTO records (bucket, key, value) VALUES ('names', 'busybox', x'01')",
                [],
            )?;
        }
        drop(conn);

        let store = SqliteBackend::open(db_path(dir.path()))?;
        assert_eq!(
            store.writer_settings()?.schema_version,
            SCHEMA_VERSION,
            "from version {version}"
        );
        if version >= 1 {
            assert_eq!(store.get(&digest)?, config, "from version {version}");
            assert_eq!(store.get_metadata(&digest, "parent")?, b"p");
        }
        if version >= 2 {
            assert_eq!(store.get_record("names", "busybox")?, Some(vec![1]));
        }
        // Everything the current schema offers works on the migrated database.
        let new = store.set(b"written after the migration")?;
        store.set_metadata(&new, "lastUpdated", b"now")?;
        let mut batch = Batch::new();
        batch.put("layers", "sha256:abc", b"1".to_vec());
        store.apply(&batch)?;
        drop(store);
        assert_eq!(user_version(&raw(&db_path(dir.path()))), SCHEMA_VERSION);
    }
    Ok(())
}

#[test]
fn two_stores_opening_an_old_database_at_once_migrate_it_once() -> TestResult {
    let (dir, conn) = database_at_version(1);
    drop(conn);
    let db = db_path(dir.path());
    let opened: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| SqliteBackend::open(&db).map(drop)))
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    for result in opened {
        result.map_err(|_| "an opening thread panicked")??;
    }
    assert_eq!(user_version(&raw(&db)), SCHEMA_VERSION);
    Ok(())
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() -> TestResult {
    let (dir, conn) = database_at_version(SCHEMA_VERSION);
    conn.execute_batch(
        "CREATE TABLE from_the_future (x); INSERT INTO from_the_future VALUES (1);",
    )?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)?;
    drop(conn);
    let db = db_path(dir.path());
    let before = fs::read(&db)?;

    let err = SqliteBackend::open(&db).expect_err("a newer schema must be refused");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    let message = err.to_string();
    assert!(
        message.contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
        "{message}"
    );
    assert!(message.contains("newer"), "{message}");

    assert_eq!(fs::read(&db)?, before, "the database file changed");
    assert!(
        !dir.path().join("imgstore.db-wal").exists(),
        "WAL was switched on"
    );
    assert!(
        !dir.path().join("imgstore.db.blobs").exists(),
        "blob dir was created"
    );
    assert_eq!(user_version(&raw(&db)), SCHEMA_VERSION + 1);
    Ok(())
}

#[test]
fn another_applications_database_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = db_path(dir.path());
    raw(&db).execute_batch("CREATE TABLE customers (name TEXT);")?;
    let err = SqliteBackend::open(&db).expect_err("a foreign database must be refused");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    assert!(
        err.to_string().contains("not an imgstore database"),
        "{err}"
    );

    let other = db_path(&dir.path().join("other"));
    fs::create_dir(dir.path().join("other"))?;
    raw(&other).pragma_update(None, "application_id", 42)?;
    let err = SqliteBackend::open(&other).expect_err("another application id must be refused");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    Ok(())
}

#[test]
fn a_file_that_is_not_sqlite_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = db_path(dir.path());
    fs::write(&db, vec![b'x'; 4096])?;
    let err = SqliteBackend::open(&db).expect_err("garbage must be refused");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert_eq!(fs::read(&db)?, vec![b'x'; 4096]);
    Ok(())
}

#[test]
fn connections_run_in_wal_with_normal_sync_and_foreign_keys_by_default() -> TestResult {
    let fixture = Fixture::new();
    for settings in [
        fixture.store.writer_settings()?,
        fixture.store.reader_settings()?,
    ] {
        assert_eq!(settings.journal_mode, "wal");
        assert_eq!(settings.synchronous, Some(Synchronous::Normal));
        assert!(settings.foreign_keys);
        assert_eq!(settings.busy_timeout, Duration::from_secs(5));
        assert_eq!(settings.schema_version, SCHEMA_VERSION);
    }
    // WAL is a property of the file: a plain connection sees it too.
    let mode: String = fixture
        .raw()
        .pragma_query_value(None, "journal_mode", |row| row.get(0))?;
    assert_eq!(mode, "wal");
    Ok(())
}

#[test]
fn full_sync_and_busy_timeout_options_reach_every_connection() -> TestResult {
    let fixture = Fixture::with(SqliteOptions {
        synchronous: Synchronous::Full,
        busy_timeout: Duration::from_millis(1500),
        ..SqliteOptions::default()
    });
    for settings in [
        fixture.store.writer_settings()?,
        fixture.store.reader_settings()?,
    ] {
        assert_eq!(settings.synchronous, Some(Synchronous::Full));
        assert_eq!(settings.busy_timeout, Duration::from_millis(1500));
    }
    Ok(())
}

#[test]
fn unusable_options_are_invalid_arguments() {
    let dir = tempfile::tempdir().expect("a temp dir");
    for options in [
        SqliteOptions {
            pool_size: 0,
            ..SqliteOptions::default()
        },
        SqliteOptions {
            inline_limit: imgstore_sqlite::MAX_INLINE_LIMIT + 1,
            ..SqliteOptions::default()
        },
    ] {
        let err = SqliteBackend::open_with(db_path(dir.path()), options)
            .expect_err("options must be refused");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
    assert!(
        !db_path(dir.path()).exists(),
        "nothing is created for refused options"
    );
}

#[test]
fn open_creates_missing_parent_directories() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("var/lib/imgstore/store.db");
    let store = SqliteBackend::open(&db)?;
    let digest = store.set(b"x")?;
    assert!(db.exists());
    assert!(store.blob_dir().ends_with("store.db.blobs"));
    assert_eq!(store.get(&digest)?, b"x");
    Ok(())
}
