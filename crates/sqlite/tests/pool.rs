//! The reader pool: its connections never create the database, and it
//! starts no threads of its own (issue 12, item 16; issue 13, item 13).

use std::path::Path;
use std::time::Duration;

use imgstore_backend::{RecordStore, StoreBackend};
use imgstore_sqlite::{SqliteBackend, SqliteOptions};

/// Names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

fn count_named(prefix: &str) -> usize {
    thread_names()
        .iter()
        .filter(|name| name.starts_with(prefix))
        .count()
}

fn remove_database(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
    let mut blobs = db.as_os_str().to_owned();
    blobs.push(".blobs");
    let _ = std::fs::remove_dir_all(blobs);
}

/// Reads on several threads at once, so the pool opens more connections.
fn busy_reads(store: &SqliteBackend) {
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let _ = store.get_record("b", "k");
                let _ = store.reader_settings();
            });
        }
    });
}

#[test]
fn a_dropped_backend_never_recreates_its_deleted_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("store.db");
    for round in 0..40 {
        let store = SqliteBackend::open(&db).expect("open");
        store.set(b"content").expect("set");
        busy_reads(&store);
        drop(store);
        remove_database(&db);
        // Connections the pool was still opening on its thread run now.
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            !db.exists(),
            "round {round}: the database reappeared after its backend was dropped"
        );
    }
}

#[test]
fn pools_share_one_thread_and_start_no_r2d2_workers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stores: Vec<SqliteBackend> = (0..6)
        .map(|i| {
            let options = SqliteOptions {
                pool_size: 4,
                ..SqliteOptions::default()
            };
            SqliteBackend::open_with(dir.path().join(format!("{i}.db")), options).expect("open")
        })
        .collect();
    for store in &stores {
        busy_reads(store);
    }
    assert_eq!(count_named("r2d2-worker"), 0, "{:?}", thread_names());
    assert_eq!(count_named("imgstore-sqlite"), 1, "{:?}", thread_names());
    drop(stores);
    assert_eq!(count_named("imgstore-sqlite"), 1, "one thread per process");
}
