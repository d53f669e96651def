//! Everything the fs backend creates is 0600 (files) or 0700 (directories)
//! whatever the umask (issue 12, item 12). The umask is process-wide, so
//! this file holds one test and runs in a process of its own.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use imgstore_backend::{Batch, RecordStore, StoreBackend};
use imgstore_fs::FsBackend;

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
    // The root and a missing parent are created by the backend.
    let root = dir.path().join("parent/root");
    {
        let store = FsBackend::open(&root).expect("open");
        let id = store.set(b"foobar").expect("set");
        store.set_metadata(&id, "parent", b"x").expect("metadata");
        let blob = store
            .write_blob(None, &mut &b"a streamed blob"[..])
            .expect("write_blob");
        store
            .set_metadata(&blob.digest, "lastUpdated", b"y")
            .expect("metadata");
        // Enough batches to compact the log into a snapshot.
        for i in 0..2000 {
            let mut batch = Batch::new();
            batch.put("names", "k", vec![b'v'; 1024 + i % 2]);
            store.apply(&batch).expect("apply");
        }
    }
    let mut all = Vec::new();
    modes(&dir.path().join("parent"), &mut all);
    assert!(
        all.iter().any(|(p, _, _)| p.ends_with("records/snapshot")),
        "the log was compacted: {all:?}"
    );
    assert!(all.len() >= 12, "{all:?}");
    for (path, is_dir, mode) in &all {
        let expected = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(*mode, expected, "{path}");
    }
    let parent = fs::metadata(dir.path().join("parent")).expect("stat");
    assert_eq!(parent.permissions().mode() & 0o7777, 0o700);
}
