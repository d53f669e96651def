//! Everything the SQLite backend creates is 0600 (files: the database, its
//! `-wal` and `-shm`, blob files) or 0700 (directories) whatever the umask
//! (issue 12, item 12). The umask is process-wide, so this file holds one
//! test and runs in a process of its own.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use imgstore_backend::{Batch, RecordStore, StoreBackend};
use imgstore_sqlite::{SqliteBackend, SqliteOptions};

/// Every entry under `dir` with its mode, as `(path, is_dir, mode)`.
fn modes(dir: &Path, out: &mut Vec<(String, bool, u32)>) {
    for entry in fs::read_dir(dir).expect("list") {
        let path = entry.expect("entry").path();
        let meta = fs::symlink_metadata(&path).expect("stat");
        out.push((
            path.display().to_string(),
            meta.is_dir(),
            meta.permissions().mode() & 0o7777,
        ));
        if meta.is_dir() {
            modes(&path, out);
        }
    }
}

#[test]
fn files_are_0600_and_directories_0700_under_umask_0() {
    // SAFETY: umask only sets the process's file mode mask.
    unsafe { libc::umask(0) };
    let dir = tempfile::tempdir().expect("tempdir");
    // Missing parents are created by the backend.
    let db = dir.path().join("parent/root/store.db");
    let options = SqliteOptions {
        inline_limit: 16,
        ..SqliteOptions::default()
    };
    let store = SqliteBackend::open_with(&db, options).expect("open");
    store.set(b"small").expect("set inline");
    let big = store
        .set(b"a blob larger than the inline limit")
        .expect("set a file");
    store
        .set_metadata(&big, "lastUpdated", b"x")
        .expect("metadata");
    let mut batch = Batch::new();
    batch.put("names", "k", b"v".to_vec());
    store.apply(&batch).expect("apply");
    let mut all = Vec::new();
    modes(&dir.path().join("parent"), &mut all);
    let names: Vec<&str> = all
        .iter()
        .filter_map(|(p, _, _)| p.rsplit('/').next())
        .collect();
    for expected in ["store.db", "store.db-wal", "store.db-shm", big.encoded()] {
        assert!(names.contains(&expected), "{expected} in {all:?}");
    }
    for (path, is_dir, mode) in &all {
        let expected = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(*mode, expected, "{path}");
    }
    let parent = fs::metadata(dir.path().join("parent")).expect("stat");
    assert_eq!(parent.permissions().mode() & 0o7777, 0o700);
    drop(store);
}
