//! Threads and processes sharing one database: idempotent concurrent sets,
//! readers beside a writer, two processes writing, busy databases.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Fixture, TestResult, bytes, db_path, inline_limit};
use imgstore_backend::{Batch, ErrorKind, Precondition, RecordStore, Result, StoreBackend};
use imgstore_digest::Digest;
use imgstore_sqlite::{SqliteBackend, SqliteOptions};

#[test]
fn eight_threads_setting_the_same_content_store_one_row() -> TestResult {
    for limit in [0, 1 << 20] {
        let fixture = Fixture::with(inline_limit(limit));
        let data = bytes(7, 5000);
        let digests: Vec<Result<Digest>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| fixture.store.set(&data)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a setting thread panicked"))
                .collect()
        });
        for digest in digests {
            assert_eq!(digest?, Digest::from_bytes(&data));
        }
        let rows: i64 = fixture
            .raw()
            .query_row("SELECT count(*) FROM content", [], |row| row.get(0))?;
        assert_eq!(rows, 1);
        let files = std::fs::read_dir(fixture.store.blob_dir().join("sha256"))?.count();
        assert_eq!(files, usize::from(limit == 0));
        assert_eq!(
            std::fs::read_dir(fixture.store.blob_dir().join("tmp"))?.count(),
            0
        );
    }
    Ok(())
}

#[test]
fn readers_run_beside_a_writer_and_always_see_whole_content() -> TestResult {
    let fixture = Fixture::new();
    let initial: Vec<Vec<u8>> = (0..100).map(|i| bytes(i, 1500)).collect();
    let refs: Vec<&[u8]> = initial.iter().map(Vec::as_slice).collect();
    let digests = fixture.store.set_many(&refs)?;
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| -> TestResult {
        let readers: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| -> Result<usize> {
                    let mut reads = 0;
                    while !stop.load(Ordering::Relaxed) {
                        for (digest, data) in digests.iter().zip(&initial) {
                            assert_eq!(&fixture.store.get(digest)?, data);
                            reads += 1;
                        }
                    }
                    Ok(reads)
                })
            })
            .collect();
        for i in 1000..1300 {
            fixture.store.set(&bytes(i, 1500))?;
            let mut batch = Batch::new();
            batch.put("counters", "writes", i.to_string().into_bytes());
            fixture.store.apply(&batch)?;
        }
        stop.store(true, Ordering::Relaxed);
        for reader in readers {
            assert!(reader.join().map_err(|_| "a reader panicked")?? > 0);
        }
        Ok(())
    })
}

#[test]
fn a_database_locked_by_another_connection_gives_a_retryable_io_error() -> TestResult {
    let fixture = Fixture::with(SqliteOptions {
        busy_timeout: Duration::from_millis(100),
        ..SqliteOptions::default()
    });
    let other = fixture.raw();
    other.execute_batch("BEGIN IMMEDIATE")?;
    let err = fixture
        .store
        .set(b"blocked")
        .expect_err("the database is locked");
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.is_retryable(), "{err}");
    let mut batch = Batch::new();
    batch.put("b", "k", Vec::new());
    assert!(
        fixture
            .store
            .apply(&batch)
            .expect_err("locked")
            .is_retryable()
    );
    // Readers are not blocked by the writer.
    assert!(!fixture.store.contains(&Digest::from_bytes(b"blocked"))?);
    other.execute_batch("COMMIT")?;
    fixture.store.set(b"blocked")?;
    Ok(())
}

#[test]
fn a_store_opens_and_reads_while_another_connection_holds_the_write_lock() -> TestResult {
    let fixture = Fixture::new();
    let digest = fixture.store.set(b"readable")?;
    let options = SqliteOptions {
        busy_timeout: Duration::from_millis(100),
        ..SqliteOptions::default()
    };
    let fixture = fixture.reopen(options.clone());
    let other = fixture.raw();
    other.execute_batch("BEGIN IMMEDIATE")?;
    let second = SqliteBackend::open_with(fixture.db(), options)?;
    assert_eq!(second.get(&digest)?, b"readable");
    other.execute_batch("ROLLBACK")?;
    Ok(())
}

/// Environment variable that turns a run of this test binary into the child
/// writer of `two_processes_write_one_database`.
const CHILD_DB: &str = "IMGSTORE_SQLITE_TEST_CHILD_DB";
const ROUNDS: u64 = 150;

/// What each process does: content small and large, a shared counter bumped
/// with compare-and-swap batches, and reopening (which cleans blob files
/// while the other process writes).
fn write_share(db: &Path, who: &str) -> Result<()> {
    let options = inline_limit(1024);
    let mut store = SqliteBackend::open_with(db, options.clone())?;
    for round in 0..ROUNDS {
        store.set(format!("{who} {round}").as_bytes())?;
        let seed = if who == "parent" {
            round
        } else {
            10_000 + round
        };
        store.set(&bytes(seed, 3000))?;
        loop {
            let current = store.get_record("counters", "rounds")?;
            let next = current.as_deref().map_or(0, |v| {
                String::from_utf8_lossy(v).parse::<u64>().unwrap_or(0)
            }) + 1;
            let mut batch = Batch::new();
            match current {
                Some(value) => batch.require("counters", "rounds", Precondition::Equals(value)),
                None => batch.require_absent("counters", "rounds"),
            };
            batch.put("counters", "rounds", next.to_string().into_bytes());
            match store.apply(&batch) {
                Ok(()) => break,
                Err(e) if matches!(e.kind(), ErrorKind::Conflict | ErrorKind::AlreadyExists) => {}
                Err(e) => return Err(e),
            }
        }
        if round % 50 == 49 {
            drop(store);
            store = SqliteBackend::open_with(db, options.clone())?;
        }
    }
    Ok(())
}

#[test]
fn two_processes_write_one_database() -> TestResult {
    if let Some(db) = std::env::var_os(CHILD_DB) {
        write_share(Path::new(&db), "child")?;
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let db = db_path(dir.path());
    drop(SqliteBackend::open(&db)?);
    // Output captured: the child's own test summary must not reach the log.
    let child = Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "two_processes_write_one_database",
            "--test-threads=1",
            "--quiet",
        ])
        .env(CHILD_DB, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let parent = write_share(&db, "parent");
    let output = child.wait_with_output()?;
    parent?;
    assert!(
        output.status.success(),
        "the child writer failed: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let store = SqliteBackend::open(&db)?;
    for who in ["parent", "child"] {
        for round in 0..ROUNDS {
            let data = format!("{who} {round}");
            assert_eq!(
                store.get(&Digest::from_bytes(data.as_bytes()))?,
                data.as_bytes()
            );
            let seed = if who == "parent" {
                round
            } else {
                10_000 + round
            };
            let large = bytes(seed, 3000);
            assert_eq!(store.get(&Digest::from_bytes(&large))?, large);
        }
    }
    assert_eq!(
        store.get_record("counters", "rounds")?,
        Some((2 * ROUNDS).to_string().into_bytes())
    );
    assert_eq!(store.gc_orphan_files()?.removed_files, 0);
    Ok(())
}

#[test]
fn stores_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SqliteBackend>();
}
