//! The kit's crash harness against SQLite: a writer child SIGKILLed at random
//! points, after each of which the store must open with every acknowledged
//! write. Two campaigns of about 100 kills, each bounded to 60 s (`cargo xtask
//! stress` runs more): default options (everything inline), and a small
//! inline limit so streamed blobs go through the blob-file path.

mod common;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Sqlite;
use imgstore_backend::StoreBackend;
use imgstore_backend::testkit::crash;
use imgstore_sqlite::SqliteBackend;

fn campaign(harness: &Sqlite, child_test: &str) {
    let config = crash::CrashConfig::from_env(100, Duration::from_secs(60));
    let report = crash::run(harness, &|| crash::self_test_command(child_test), &config);
    eprintln!("{report}");
    assert!(report.kills > 0, "no kill ran: {report}");
}

/// Re-invoked by the harness as the writer child; returns at once otherwise.
#[test]
fn crash_writer_child_inline() {
    crash::child_main(&Sqlite::DEFAULT);
}

/// Re-invoked by the harness as the writer child; returns at once otherwise.
#[test]
fn crash_writer_child_files() {
    crash::child_main(&Sqlite::MIXED);
}

#[test]
fn crash_kills_lose_no_acknowledged_write_inline() {
    campaign(&Sqlite::DEFAULT, "crash_writer_child_inline");
}

#[test]
fn crash_kills_lose_no_acknowledged_write_with_blob_files() {
    campaign(&Sqlite::MIXED, "crash_writer_child_files");
}

/// Set by `crash_leaves_no_orphan_blob_files` on its writer child: the
/// database to write blob files into until killed.
const BLOB_CHILD_DB: &str = "IMGSTORE_SQLITE_BLOB_CHILD_DB";

/// The writer child of `crash_leaves_no_orphan_blob_files`: every blob in a
/// file, set and deleted in a loop, until SIGKILL.
#[test]
fn blob_file_writer_child() {
    let Some(db) = std::env::var_os(BLOB_CHILD_DB) else {
        return;
    };
    let store = SqliteBackend::open_with(&db, common::inline_limit(0)).expect("child open");
    let seed = std::process::id() as u64;
    for round in 0.. {
        let data = common::bytes(seed * 1_000_000 + round, 32 * 1024 + round as usize % 5000);
        let digest = store.set(&data).expect("child set");
        if round % 3 == 0 {
            store.delete(&digest).expect("child delete");
        } else if round % 3 == 1 {
            store
                .write_blob(None, &mut &data[..1000 + round as usize % 9000])
                .expect("child write_blob");
        }
    }
}

#[test]
fn crash_leaves_no_orphan_blob_files_after_reopening() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = common::db_path(dir.path());
    drop(SqliteBackend::open(&db).expect("create the store"));
    let started = Instant::now();
    let mut kills = 0;
    let mut leftovers = 0;
    while kills < 20 && started.elapsed() < Duration::from_secs(20) {
        let mut child = crash::self_test_command("blob_file_writer_child")
            .env(BLOB_CHILD_DB, &db)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the writer child");
        std::thread::sleep(Duration::from_millis(20 + 7 * kills));
        child.kill().expect("SIGKILL the writer");
        child.wait().expect("reap the writer");
        kills += 1;
        leftovers +=
            std::fs::read_dir(dir.path().join("imgstore.db.blobs/tmp")).map_or(0, Iterator::count);

        let store = SqliteBackend::open_with(&db, common::inline_limit(0)).expect("reopen");
        let conn = common::raw(&db);
        let external: BTreeSet<String> = conn
            .prepare("SELECT digest FROM content WHERE data IS NULL")
            .and_then(|mut stmt| {
                stmt.query_map([], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<_>>()
            })
            .expect("list rows naming files");
        let files: BTreeSet<String> = std::fs::read_dir(store.blob_dir().join("sha256"))
            .expect("list blob files")
            .map(|e| format!("sha256:{}", e.expect("entry").file_name().to_string_lossy()))
            .collect();
        assert_eq!(files, external, "after kill {kills}: files and rows differ");
        let temps = std::fs::read_dir(store.blob_dir().join("tmp"))
            .expect("tmp")
            .count();
        assert_eq!(temps, 0, "after kill {kills}: temp files left");
        for digest in &external {
            let digest: imgstore_digest::Digest = digest.parse().expect("a digest row");
            store
                .get(&digest)
                .expect("every file row reads back verified");
        }
    }
    assert!(kills > 0);
    eprintln!("{kills} kills left {leftovers} temp files behind, all cleaned on open");
}
