//! One rule for symlinks inside the store: never followed. A symlink where
//! a content file, a metadata directory or key, a record file or the lock
//! belongs is refused the same way by every operation (issue 12, item 13):
//! reads see nothing there, writes replace it with the real thing, and
//! nothing outside the root is read, written or removed.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use imgstore_backend::{Batch, ErrorKind, RecordStore, StoreBackend};
use imgstore_digest::Digest;
use imgstore_fs::FsBackend;

const FOOBAR: &str = "c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2";

fn foobar() -> Digest {
    Digest::parse(&format!("sha256:{FOOBAR}")).expect("digest")
}

fn walked(store: &FsBackend) -> Vec<Digest> {
    let mut all = Vec::new();
    store
        .walk(&mut |digest| {
            all.push(digest.clone());
            Ok(())
        })
        .expect("walk");
    all
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

#[test]
fn a_symlinked_content_file_is_absent_for_every_read_and_replaced_by_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = dir.path().join("outside");
    fs::write(&outside, b"foobar").expect("outside file");
    let root = dir.path().join("root");
    let store = FsBackend::open(&root).expect("open");
    let path = root.join("content/sha256").join(FOOBAR);
    symlink(&outside, &path).expect("symlink");

    assert!(walked(&store).is_empty());
    assert!(!store.contains(&foobar()).expect("contains"));
    for e in [
        store.get(&foobar()).unwrap_err(),
        store.size(&foobar()).unwrap_err(),
        store.open_blob(&foobar()).err().expect("open_blob refused"),
        store.set_metadata(&foobar(), "parent", b"x").unwrap_err(),
        store.get_metadata(&foobar(), "parent").unwrap_err(),
        store.delete(&foobar()).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    }
    assert!(is_symlink(&path), "a refused call removes nothing");

    // set stores the content for real: it used to return Ok and leave the
    // symlink, so the image was gone after reopen.
    assert_eq!(store.set(b"foobar").expect("set"), foobar());
    assert!(fs::symlink_metadata(&path).expect("stat").is_file());
    assert_eq!(fs::read(&outside).expect("outside"), b"foobar", "untouched");
    drop(store);
    let store = FsBackend::open(&root).expect("reopen");
    assert_eq!(walked(&store), vec![foobar()]);
    assert_eq!(store.get(&foobar()).expect("get"), b"foobar");
}

#[test]
fn a_fifo_in_place_of_content_is_absent_and_never_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let store = FsBackend::open(&root).expect("open");
    let path = root.join("content/sha256").join(FOOBAR);
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let store = std::sync::Arc::new(store);
    let reader = std::sync::Arc::clone(&store);
    let (send, receive) = std::sync::mpsc::channel();
    // On another thread: an open that blocks fails the test, not the run.
    std::thread::spawn(move || {
        let _ = send.send((
            reader.get(&foobar()).map_err(|e| e.kind()),
            reader.open_blob(&foobar()).err().map(|e| e.kind()),
        ));
    });
    let (get, open_blob) = receive
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("reads return at once");
    assert_eq!(get, Err(ErrorKind::NotFound));
    assert_eq!(open_blob, Some(ErrorKind::NotFound));
    assert!(walked(&store).is_empty());
    store.set(b"foobar").expect("set replaces it");
    assert_eq!(store.get(&foobar()).expect("get"), b"foobar");
}

#[test]
fn a_symlinked_metadata_directory_is_not_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).expect("outside dir");
    fs::write(outside.join("parent"), b"outside").expect("outside key");
    let root = dir.path().join("root");
    let store = FsBackend::open(&root).expect("open");
    let id = store.set(b"foobar").expect("set");
    let meta = root.join("metadata/sha256").join(FOOBAR);
    symlink(&outside, &meta).expect("symlink");

    let e = store.get_metadata(&id, "parent").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    store
        .delete_metadata(&id, "parent")
        .expect("nothing to delete");
    assert_eq!(fs::read(outside.join("parent")).expect("kept"), b"outside");

    store.set_metadata(&id, "parent", b"inside").expect("set");
    assert!(fs::symlink_metadata(&meta).expect("stat").is_dir());
    assert_eq!(store.get_metadata(&id, "parent").expect("get"), b"inside");
    assert_eq!(fs::read(outside.join("parent")).expect("kept"), b"outside");
    assert_eq!(fs::read_dir(&outside).expect("list").count(), 1);
}

#[test]
fn a_symlinked_metadata_key_is_absent_and_replaced_by_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = dir.path().join("outside");
    fs::write(&outside, b"outside").expect("outside file");
    let root = dir.path().join("root");
    let store = FsBackend::open(&root).expect("open");
    let id = store.set(b"foobar").expect("set");
    store.set_metadata(&id, "other", b"o").expect("set other");
    let key = root.join("metadata/sha256").join(FOOBAR).join("parent");
    symlink(&outside, &key).expect("symlink");

    let e = store.get_metadata(&id, "parent").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    store.set_metadata(&id, "parent", b"inside").expect("set");
    assert!(fs::symlink_metadata(&key).expect("stat").is_file());
    assert_eq!(store.get_metadata(&id, "parent").expect("get"), b"inside");
    assert_eq!(fs::read(&outside).expect("kept"), b"outside");
}

#[test]
fn a_symlinked_record_file_fails_open_naming_it() {
    for name in ["log", "snapshot"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        {
            let store = FsBackend::open(&root).expect("open");
            let mut batch = Batch::new();
            batch.put("names", "a", b"1".to_vec());
            store.apply(&batch).expect("apply");
        }
        let outside = dir.path().join("outside");
        let path = root.join("records").join(name);
        if path.exists() {
            fs::rename(&path, &outside).expect("move aside");
        } else {
            fs::write(&outside, b"not a snapshot").expect("outside");
        }
        let before = fs::read(&outside).expect("outside");
        symlink(&outside, &path).expect("symlink");
        let e = FsBackend::open(&root).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition, "{name}: {e}");
        assert!(
            e.to_string()
                .contains(&format!("records/{name} is not a regular file")),
            "{e}"
        );
        assert_eq!(fs::read(&outside).expect("outside"), before, "untouched");
        assert!(is_symlink(&path), "nothing replaced");
    }
}

#[test]
fn a_symlinked_lock_file_is_not_written_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    drop(FsBackend::open(&root).expect("open"));
    let outside = dir.path().join("outside");
    fs::write(&outside, b"precious").expect("outside");
    fs::remove_file(root.join("lock")).expect("remove lock");
    symlink(&outside, root.join("lock")).expect("symlink");
    let e = FsBackend::open(&root).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert!(e.to_string().contains("lock"), "{e}");
    assert_eq!(fs::read(&outside).expect("outside"), b"precious");
}
