//! Against a server of its own (durable settings): restarts of the server
//! under a running client are retried through, no call fails and nothing
//! acknowledged is lost; a
//! server that stays down is a retryable error; the change lock times out
//! naming its holder; the change counter sees other instances' batches.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use imgstore_backend::{Batch, ErrorKind, RecordStore, StoreBackend};
use imgstore_postgres::testserver::{StopMode, TestServer};
use imgstore_postgres::{LockError, PostgresBackend, PostgresOptions};

fn open(url: &str, retry_for: Duration) -> PostgresBackend {
    let options = PostgresOptions {
        retry_for,
        ..PostgresOptions::default()
    };
    PostgresBackend::open_with(url, options).expect("open")
}

#[test]
fn restarts_of_the_server_are_retried_through_and_lose_nothing_committed() {
    let server = TestServer::start(true).expect("a server of its own");
    let url = server.create_database();
    let store = Arc::new(open(&url, Duration::from_secs(30)));
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let writer = {
        let (store, stop, committed) = (store.clone(), stop.clone(), committed.clone());
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let n = committed.load(Ordering::Relaxed);
                let mut batch = Batch::new();
                batch.require_absent("n", &format!("{n:06}"));
                batch.put("n", &format!("{n:06}"), n.to_string().into_bytes());
                match store.apply(&batch) {
                    Ok(()) => {
                        committed.fetch_add(1, Ordering::Relaxed);
                    }
                    // A COMMIT whose answer was lost: it may have landed.
                    Err(e) if e.is_retryable() => {
                        failures.push(e.to_string());
                        if store
                            .get_record("n", &format!("{n:06}"))
                            .ok()
                            .flatten()
                            .is_some()
                        {
                            committed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => panic!("batch {n}: {e}"),
                }
            }
            failures
        })
    };
    for mode in [StopMode::Fast, StopMode::Immediate, StopMode::Fast] {
        std::thread::sleep(Duration::from_millis(300));
        server.restart(mode).expect("restart");
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let failures = writer.join().expect("writer");
    let committed = committed.load(Ordering::Relaxed);
    assert!(committed > 20, "only {committed} batches committed");
    // Every failure was retried inside the call, and a COMMIT the restart
    // cut was resolved by asking the server what became of it.
    assert!(failures.is_empty(), "{failures:?}");
    let mut keys = Vec::new();
    store
        .scan_records("n", "", &mut |key, _| {
            keys.push(key.to_owned());
            Ok(())
        })
        .expect("scan");
    let expected: Vec<String> = (0..committed).map(|n| format!("{n:06}")).collect();
    assert_eq!(
        keys, expected,
        "every acknowledged batch is there, nothing else"
    );
}

#[test]
fn a_server_that_stays_down_is_a_retryable_error() {
    let server = TestServer::start(false).expect("a server of its own");
    let url = server.create_database();
    let store = open(&url, Duration::from_millis(300));
    let digest = store.set(b"before").expect("set");
    drop(server);
    let e = store.get(&digest).expect_err("no server");
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e.is_retryable(), "{e}");
}

#[test]
fn the_change_lock_times_out_naming_its_holder() {
    let (_, store) = common::fresh_store();
    let held = store
        .lock_changes(Duration::from_secs(5))
        .expect("first lock");
    let other = PostgresBackend::open_with(
        common::shared_database(),
        PostgresOptions::with_schema(&store.options().schema),
    )
    .expect("second instance");
    match other.lock_changes(Duration::from_millis(200)) {
        Err(LockError::TimedOut { waited, holders }) => {
            assert!(waited >= Duration::from_millis(200));
            let me = format!("(imgstore {}@", std::process::id());
            assert!(
                holders.starts_with("session ") && holders.contains(&me),
                "{holders}"
            );
            assert!(holders.ends_with(" from local"), "{holders}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    drop(held);
    let again = other.lock_changes(Duration::from_secs(5));
    assert!(again.is_ok(), "released on drop: {again:?}");
}

#[test]
fn change_locks_of_different_stores_are_apart() {
    let (_, one) = common::fresh_store();
    let (_, two) = common::fresh_store();
    let _held = one.lock_changes(Duration::from_secs(5)).expect("first");
    assert!(two.lock_changes(Duration::from_millis(100)).is_ok());
}

#[test]
fn the_change_counter_moves_with_other_instances_batches_only() {
    let (schema, one) = common::fresh_store();
    let two = PostgresBackend::open_with(
        common::shared_database(),
        PostgresOptions::with_schema(&schema),
    )
    .expect("second instance");
    let before = one.change_counter().expect("counter");
    assert_eq!(
        one.change_counter().expect("counter"),
        before,
        "reads change nothing"
    );
    let mut batch = Batch::new();
    batch.put("b", "k", vec![1]);
    two.apply(&batch).expect("apply");
    let after = one.change_counter().expect("counter");
    assert_ne!(after, before);
    let mut failing = Batch::new();
    failing.require_absent("b", "k").put("b", "j", vec![2]);
    assert_eq!(
        two.apply(&failing).expect_err("exists").kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        one.change_counter().expect("counter"),
        after,
        "a failed batch counts nothing"
    );
}

#[test]
fn large_blobs_are_chunked_and_deleted_with_their_chunks() {
    let (schema, store) = common::fresh_store();
    let data: Vec<u8> = (0..(imgstore_postgres::CHUNK * 2 + 10))
        .map(|i| (i % 251) as u8)
        .collect();
    let digest = store.set(&data).expect("set");
    let mut raw = common::raw(&schema);
    let chunks: i64 = raw
        .query_one("SELECT count(*) FROM chunks", &[])
        .expect("count")
        .get(0);
    assert_eq!(chunks, 3);
    assert_eq!(store.get(&digest).expect("get"), data);
    let mut streamed = Vec::new();
    std::io::Read::read_to_end(&mut store.open_blob(&digest).expect("open"), &mut streamed)
        .expect("read");
    assert_eq!(streamed, data);
    assert_eq!(store.set(&data).expect("again"), digest);
    let chunks: i64 = raw
        .query_one("SELECT count(*) FROM chunks", &[])
        .expect("count")
        .get(0);
    assert_eq!(chunks, 3, "a second write of the same blob stores nothing");
    store.delete(&digest).expect("delete");
    let chunks: i64 = raw
        .query_one("SELECT count(*) FROM chunks", &[])
        .expect("count")
        .get(0);
    assert_eq!(chunks, 0);
}

#[test]
fn changes_stop_once_the_change_lock_is_lost() {
    // A database of its own: the test ends every session holding an
    // advisory lock in it.
    let url = TestServer::shared().create_database();
    let store = PostgresBackend::open(&url).expect("open");
    let digest = store.set(b"kept while the lock is lost").expect("set");
    let held = store.lock_changes(Duration::from_secs(5)).expect("lock");
    let mut batch = Batch::new();
    batch.put("b", "during", vec![1]);
    store.apply(&batch).expect("a batch under the lock");
    // What a server restart does to the session holding the lock.
    postgres::Client::connect(&url, postgres::NoTls)
        .expect("a raw connection")
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks
             WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .expect("end the session holding the lock");
    let mut later = Batch::new();
    later.put("b", "after", vec![2]);
    let e = store.apply(&later).expect_err("the lock is gone");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(e.to_string().contains("the change lock was lost"), "{e}");
    let e = store.delete(&digest).expect_err("deletes stop too");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(store.get_record("b", "after").expect("read"), None);
    drop(held);
    store
        .apply(&later)
        .expect("without a lock held, batches go on");
    store.delete(&digest).expect("and deletes");
}
