//! Behaviour of `FsBackend` beyond the shared suite: moby's on-disk layout,
//! modes, leftovers, the root lock, invalid roots, and the record log.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use imgstore_backend::{Batch, ErrorKind, RecordStore, StoreBackend};
use imgstore_digest::Digest;
use imgstore_fs::{FsBackend, FsOptions};

const FOO: &str = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
const FOOBAR: &str = "c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2";

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

fn digest(hex: &str) -> Digest {
    Digest::parse(&format!("sha256:{hex}")).expect("digest")
}

/// A tree as Docker leaves it in `image/overlay2/imagedb`, written by hand.
#[test]
fn moby_imagedb_tree_opens_read_write() {
    let dir = tempdir();
    let root = dir.path().join("imagedb");
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let id = Digest::from_bytes(config);
    let child_config = br#"{"architecture":"amd64","os":"linux","config":{}}"#;
    let child = Digest::from_bytes(child_config);
    fs::create_dir_all(root.join("content/sha256")).unwrap();
    fs::create_dir_all(root.join("metadata/sha256").join(child.encoded())).unwrap();
    fs::write(root.join("content/sha256").join(id.encoded()), config).unwrap();
    fs::write(
        root.join("content/sha256").join(child.encoded()),
        child_config,
    )
    .unwrap();
    let meta = root.join("metadata/sha256").join(child.encoded());
    fs::write(meta.join("parent"), id.as_str()).unwrap();
    fs::write(meta.join("lastUpdated"), "2024-05-01T10:00:00.000000000Z").unwrap();
    // moby's own interrupted AtomicWriteFile leaves these.
    fs::write(root.join("content/sha256/.tmp-abc123"), b"partial").unwrap();
    fs::write(meta.join(".tmp-parent456"), b"sha256:").unwrap();

    let store = FsBackend::open(&root).unwrap();
    let mut walked = Vec::new();
    store
        .walk(&mut |d| {
            walked.push(d.clone());
            Ok(())
        })
        .unwrap();
    walked.sort();
    let mut expected = vec![id.clone(), child.clone()];
    expected.sort();
    assert_eq!(walked, expected);
    assert_eq!(store.get(&id).unwrap(), config);
    assert_eq!(
        store.get_metadata(&child, "parent").unwrap(),
        id.as_str().as_bytes()
    );
    assert_eq!(
        store.get_metadata(&child, "lastUpdated").unwrap(),
        b"2024-05-01T10:00:00.000000000Z"
    );
    // Open lists no directory: the leftovers go with remove_leftovers.
    assert!(root.join("content/sha256/.tmp-abc123").exists());
    assert_eq!(store.remove_leftovers().unwrap(), (2, 14));
    assert!(
        !root.join("content/sha256/.tmp-abc123").exists(),
        "leftovers cleaned"
    );
    assert!(!meta.join(".tmp-parent456").exists(), "leftovers cleaned");

    // Writes land in moby's places, readable by moby.
    let new = store.set(b"{\"new\":true}").unwrap();
    store
        .set_metadata(&new, "parent", child.as_str().as_bytes())
        .unwrap();
    assert_eq!(
        fs::read(root.join("content/sha256").join(new.encoded())).unwrap(),
        b"{\"new\":true}"
    );
    assert_eq!(
        fs::read(
            root.join("metadata/sha256")
                .join(new.encoded())
                .join("parent")
        )
        .unwrap(),
        child.as_str().as_bytes()
    );
    store.delete(&child).unwrap();
    assert!(!meta.exists(), "delete removes the metadata directory");
    assert!(!root.join("content/sha256").join(child.encoded()).exists());
}

#[test]
fn open_creates_the_layout_with_private_modes() {
    let dir = tempdir();
    let root = dir.path().join("root");
    let store = FsBackend::open(&root).unwrap();
    let id = store.set(b"foo").unwrap();
    store.set_metadata(&id, "parent", b"p").unwrap();
    let mut batch = Batch::new();
    batch.put("b", "k", b"v".to_vec());
    store.apply(&batch).unwrap();
    for d in [
        "",
        "content",
        "content/sha256",
        "metadata",
        "metadata/sha256",
        "records",
    ] {
        assert_eq!(mode(&root.join(d)), 0o700, "directory {d:?}");
    }
    assert_eq!(mode(&root.join("metadata/sha256").join(FOO)), 0o700);
    for f in ["content/sha256", "records"] {
        assert!(root.join(f).is_dir());
    }
    let files = [
        root.join("content/sha256").join(FOO),
        root.join("metadata/sha256").join(FOO).join("parent"),
        root.join("records/log"),
        root.join("lock"),
    ];
    for f in &files {
        assert_eq!(mode(f), 0o600, "file {}", f.display());
    }
}

#[test]
fn temp_leftovers_are_ignored_by_walk_and_removed_by_remove_leftovers() {
    let dir = tempdir();
    let root = dir.path().join("root");
    let leftovers: Vec<PathBuf> = {
        let store = FsBackend::open(&root).unwrap();
        let id = store.set(b"foo").unwrap();
        store.set_metadata(&id, "k", b"v").unwrap();
        let leftovers = vec![
            root.join("content/sha256/.tmp-1-2-3"),
            root.join("content/sha256").join(format!(".tmp-{FOOBAR}")),
            root.join("metadata/sha256").join(FOO).join(".tmp-9"),
            root.join("records/.tmp-snapshot"),
        ];
        for path in &leftovers {
            fs::write(path, b"half written").unwrap();
        }
        let mut count = 0;
        store
            .walk(&mut |_| {
                count += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(count, 1, "walk lists no temp file");
        leftovers
    };
    let store = FsBackend::open(&root).unwrap();
    // The record store's own leftover goes on open (one small directory);
    // the blobs' and metadata's with remove_leftovers (it lists them all).
    assert!(!leftovers[3].exists(), "records' leftover removed on open");
    assert!(leftovers[..3].iter().all(|path| path.exists()));
    assert_eq!(store.remove_leftovers().unwrap(), (3, 36));
    for path in &leftovers {
        assert!(!path.exists(), "{} removed", path.display());
    }
    assert_eq!(store.get(&digest(FOO)).unwrap(), b"foo");
    assert_eq!(store.get_metadata(&digest(FOO), "k").unwrap(), b"v");
}

/// moby's TestFSInvalidRoot: a regular file where the root, `content` or
/// `metadata` should be; and the same for our own directories.
#[test]
fn a_file_in_place_of_a_directory_fails_open_naming_it() {
    for blocked in [
        "root",
        "root/content",
        "root/metadata",
        "root/content/sha256",
        "root/records",
    ] {
        let dir = tempdir();
        let path = dir.path().join(blocked);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"").unwrap();
        let e = FsBackend::open(dir.path().join("root")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition, "{blocked}: {e}");
        let message = e.to_string();
        assert!(
            message.contains(&path.display().to_string()),
            "{blocked}: {message}"
        );
        assert!(
            message.contains("failed to create storage backend"),
            "{message}"
        );
    }
}

/// moby's TestFSInvalidSet: a directory occupies the content path.
#[test]
fn set_over_a_directory_fails_and_stores_nothing() {
    let dir = tempdir();
    let root = dir.path().join("root");
    let store = FsBackend::open(&root).unwrap();
    fs::create_dir(root.join("content/sha256").join(FOOBAR)).unwrap();
    let e = store.set(b"foobar").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert!(e.to_string().contains("failed to write digest data"), "{e}");
    let mut count = 0;
    store
        .walk(&mut |_| {
            count += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(count, 0, "the directory is not content");
    assert!(!store.contains(&digest(FOOBAR)).unwrap());
    let names: Vec<_> = fs::read_dir(root.join("content/sha256")).unwrap().collect();
    assert_eq!(names.len(), 1, "no temp file left behind");
}

#[test]
fn set_repairs_corrupted_content_and_keeps_intact_content() {
    let dir = tempdir();
    let root = dir.path().join("root");
    let store = FsBackend::open(&root).unwrap();
    let id = store.set(b"foobar").unwrap();
    let path = root.join("content/sha256").join(FOOBAR);
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
    let before = inode(&path);
    store.set(b"foobar").unwrap();
    assert_eq!(inode(&path), before, "intact content is not rewritten");
    fs::write(&path, b"foo").unwrap();
    assert_eq!(
        store.get(&id).unwrap_err().kind(),
        ErrorKind::DataCorruption
    );
    store.set(b"foobar").unwrap();
    assert_eq!(
        store.get(&id).unwrap(),
        b"foobar",
        "set replaced the damaged copy"
    );
}

#[test]
fn truncated_or_emptied_content_is_corruption() {
    let dir = tempdir();
    let root = dir.path().join("root");
    let store = FsBackend::open(&root).unwrap();
    let id = store.set(b"foobar").unwrap();
    let path = root.join("content/sha256").join(FOOBAR);
    for damage in [&b"foob"[..], b""] {
        fs::write(&path, damage).unwrap();
        let e = store.get(&id).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DataCorruption, "{e}");
        assert!(e.to_string().contains(id.as_str()), "names the digest: {e}");
        let mut reader = store.open_blob(&id).unwrap();
        let mut sink = Vec::new();
        assert!(reader.read_to_end(&mut sink).is_err());
    }
}

// ---- the root lock ----------------------------------------------------------

const LOCK_CHILD_ENV: &str = "IMGSTORE_FS_TEST_LOCK_ROOT";

/// Not a test of its own: the child process of the lock tests. It opens the
/// root named by the environment, writes the record `b/from-child`, says so
/// on stdout, and keeps the store open until its stdin closes; then it
/// requires the record `b/from-parent` (its exit status says whether it saw it).
#[test]
fn lock_holder_child() {
    let Some(root) = std::env::var_os(LOCK_CHILD_ENV) else {
        return;
    };
    let store = FsBackend::open(&root).expect("child open");
    put(&store, "from-child", "1");
    println!("locked {}", std::process::id());
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    assert_eq!(record(&store, "from-parent").as_deref(), Some("2"));
    drop(store);
}

fn spawn_lock_holder(root: &Path) -> (std::process::Child, u32) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "lock_holder_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(LOCK_CHILD_ENV, root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let pid = loop {
        let line = lines.next().expect("child output").unwrap();
        // libtest may print "test lock_holder_child ... " on the same line first.
        if let Some((_, pid)) = line.split_once("locked ") {
            break pid.trim().parse::<u32>().unwrap();
        }
    };
    assert_eq!(pid, child.id());
    // Keep reading, so the child can print its test result and exit cleanly.
    std::thread::spawn(move || lines.for_each(drop));
    (child, pid)
}

#[test]
fn two_processes_share_a_root_and_see_each_others_batches() {
    let dir = tempdir();
    let root = dir.path().join("root");
    FsBackend::open(&root).unwrap().set(b"foo").unwrap();
    let (mut child, _) = spawn_lock_holder(&root);

    let started = Instant::now();
    let options = FsOptions {
        lock_timeout: Duration::from_millis(300),
    };
    let store = FsBackend::open_with(&root, options).unwrap();
    assert!(started.elapsed() < Duration::from_millis(300), "no wait");
    assert_eq!(store.get(&digest(FOO)).unwrap(), b"foo");
    assert_eq!(record(&store, "from-child").as_deref(), Some("1"));
    put(&store, "from-parent", "2");
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "the child saw our batch");
}

#[test]
fn a_killed_holder_releases_the_lock() {
    let dir = tempdir();
    let root = dir.path().join("root");
    let (mut child, _) = spawn_lock_holder(&root);
    child.kill().unwrap();
    child.wait().unwrap();
    let store = FsBackend::open_with(
        &root,
        FsOptions {
            lock_timeout: Duration::from_secs(5),
        },
    );
    assert!(store.is_ok(), "{:?}", store.err());
}

#[test]
fn leftovers_are_removed_only_when_asked_never_on_open() {
    let dir = tempdir();
    let root = dir.path().join("root");
    let first = FsBackend::open(&root).unwrap();
    // What an interrupted write (or one in progress) looks like.
    let live = root.join("content/sha256/.tmp-live");
    fs::write(&live, b"partial").unwrap();
    let second = FsBackend::open_with(
        &root,
        FsOptions {
            lock_timeout: Duration::from_millis(100),
        },
    )
    .unwrap();
    assert!(live.exists(), "a second opener leaves a live write alone");
    drop(first);
    drop(second);
    let alone = FsBackend::open(&root).unwrap();
    assert!(live.exists(), "open lists no directory, even alone");
    assert_eq!(alone.remove_leftovers().unwrap(), (1, 7));
    assert!(!live.exists(), "remove_leftovers removes it");
}

// ---- the record log ---------------------------------------------------------

fn put(store: &FsBackend, key: &str, value: &str) {
    let mut batch = Batch::new();
    batch.put("b", key, value.as_bytes().to_vec());
    store.apply(&batch).unwrap();
}

fn record(store: &FsBackend, key: &str) -> Option<String> {
    store
        .get_record("b", key)
        .unwrap()
        .map(|v| String::from_utf8(v).unwrap())
}

#[test]
fn a_torn_last_frame_is_dropped_at_every_cut() {
    let dir = tempdir();
    let root = dir.path().join("root");
    let log = root.join("records/log");
    let (before_last, full) = {
        let store = FsBackend::open(&root).unwrap();
        put(&store, "one", "1");
        put(&store, "two", "2");
        let before_last = fs::metadata(&log).unwrap().len();
        let mut batch = Batch::new();
        batch.put("b", "three", b"3".to_vec()).delete("b", "one");
        store.apply(&batch).unwrap();
        (before_last, fs::read(&log).unwrap())
    };
    for cut in before_last + 1..full.len() as u64 {
        fs::write(&log, &full[..cut as usize]).unwrap();
        let store = FsBackend::open(&root).unwrap();
        assert_eq!(record(&store, "one").as_deref(), Some("1"), "cut at {cut}");
        assert_eq!(record(&store, "two").as_deref(), Some("2"));
        assert_eq!(record(&store, "three"), None, "the torn batch is all gone");
        assert_eq!(fs::metadata(&log).unwrap().len(), before_last, "truncated");
        // New batches go after the valid prefix and survive.
        put(&store, "four", "4");
        drop(store);
        let store = FsBackend::open(&root).unwrap();
        assert_eq!(record(&store, "four").as_deref(), Some("4"));
    }
    // Zeros after the last frame (a file extended but never written) also count as torn.
    let mut zeros = full.clone();
    zeros.extend_from_slice(&[0u8; 100]);
    fs::write(&log, &zeros).unwrap();
    let store = FsBackend::open(&root).unwrap();
    assert_eq!(record(&store, "three").as_deref(), Some("3"));
    drop(store);
    // So does a last frame whose first bytes never reached the disk while
    // later ones did (pages written out of order before a power cut).
    let mut holes = full.clone();
    holes[before_last as usize..before_last as usize + 8].fill(0);
    fs::write(&log, &holes).unwrap();
    let store = FsBackend::open(&root).unwrap();
    assert_eq!(record(&store, "three"), None);
    assert_eq!(record(&store, "two").as_deref(), Some("2"));
}

#[test]
fn damage_before_the_end_of_the_log_fails_open() {
    let dir = tempdir();
    let root = dir.path().join("root");
    let log = root.join("records/log");
    let first_frame_end = {
        let store = FsBackend::open(&root).unwrap();
        put(&store, "one", "1");
        let end = fs::metadata(&log).unwrap().len();
        put(&store, "two", "2");
        end
    };
    let mut bytes = fs::read(&log).unwrap();
    bytes[first_frame_end as usize - 1] ^= 0xff;
    fs::write(&log, &bytes).unwrap();
    let e = FsBackend::open(&root).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition, "{e}");
    assert!(
        e.to_string().contains("records"),
        "names the record store: {e}"
    );
}

#[test]
fn compaction_keeps_every_record_and_a_stale_log_is_ignored() {
    let dir = tempdir();
    let root = dir.path().join("root");
    let log = root.join("records/log");
    let snapshot = root.join("records/snapshot");
    // Write until a compaction has just happened (the log is a bare header),
    // keeping the log as it was before it: the state a crash between the
    // snapshot's rename and the new log's would leave.
    let (last, old_log) = {
        let store = FsBackend::open(&root).unwrap();
        let value = "x".repeat(1000);
        put(&store, "kept", "yes");
        let mut i = 0;
        loop {
            let before =
                (fs::metadata(&log).unwrap().len() > 200_000).then(|| fs::read(&log).unwrap());
            put(&store, &format!("k{}", i % 10), &format!("{i}{value}"));
            if fs::metadata(&log).unwrap().len() == 16 {
                assert!(snapshot.exists());
                break (i, before.expect("compacted only once the log is large"));
            }
            i += 1;
            assert!(i < 2000, "the log was never compacted");
        }
    };
    let expected = |k: u64| (0..=last).filter(|i| i % 10 == k).max().unwrap();
    let check = |store: &FsBackend| {
        assert_eq!(record(store, "kept").as_deref(), Some("yes"));
        for k in 0..10 {
            let value = record(store, &format!("k{k}")).unwrap();
            let expected = format!("{}x", expected(k));
            assert!(
                value.starts_with(&expected),
                "k{k}: {} (want {expected})",
                &value[..8]
            );
        }
    };
    check(&FsBackend::open(&root).unwrap());
    fs::write(&log, old_log).unwrap();
    let store = FsBackend::open(&root).unwrap();
    check(&store);
    put(&store, "after", "stale");
    drop(store);
    let store = FsBackend::open(&root).unwrap();
    check(&store);
    assert_eq!(record(&store, "after").as_deref(), Some("stale"));
}

#[test]
fn record_keys_never_become_paths() {
    let dir = tempdir();
    let root = dir.path().join("root");
    let store = FsBackend::open(&root).unwrap();
    for key in ["../../escape", "/etc/passwd", "a/b/c"] {
        put(&store, key, "v");
    }
    drop(store);
    let mut names: Vec<String> = fs::read_dir(root.join("records"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["lock", "log"]);
    assert!(!dir.path().join("escape").exists());
}

#[test]
fn a_compaction_by_one_backend_is_seen_by_another() {
    let dir = tempdir();
    let root = dir.path().join("root");
    let log = root.join("records/log");
    let a = FsBackend::open(&root).unwrap();
    let b = FsBackend::open(&root).unwrap();
    put(&a, "kept", "yes");
    let value = "x".repeat(1000);
    let mut i = 0;
    let counter_before = b.change_counter().unwrap();
    while fs::metadata(&log).unwrap().len() != 16 {
        put(&a, &format!("k{}", i % 10), &format!("{i}{value}"));
        i += 1;
        assert!(i < 2000, "the log was never compacted");
    }
    assert_ne!(b.change_counter().unwrap(), counter_before);
    assert_eq!(record(&b, "kept").as_deref(), Some("yes"));
    let last = i - 1;
    let expected = format!("{last}{value}");
    assert_eq!(
        record(&b, &format!("k{}", last % 10)).as_deref(),
        Some(expected.as_str())
    );
    // b appends to the new log; a follows it.
    put(&b, "after", "compaction");
    assert_eq!(record(&a, "after").as_deref(), Some("compaction"));
    assert!(fs::metadata(&log).unwrap().len() > 16);
}

#[test]
fn a_frame_being_written_is_not_read_and_a_writer_cuts_a_torn_one() {
    let dir = tempdir();
    let root = dir.path().join("root");
    let log = root.join("records/log");
    let a = FsBackend::open(&root).unwrap();
    let b = FsBackend::open(&root).unwrap();
    put(&a, "one", "1");
    let valid = fs::metadata(&log).unwrap().len();
    // Half a frame at the end: what a reader sees while another backend's
    // append is in flight, or what a crash leaves.
    put(&a, "two", "2");
    let full = fs::read(&log).unwrap();
    fs::write(&log, &full[..full.len() - 3]).unwrap();
    let b_counter = b.change_counter().unwrap();
    // Readers apply whole frames only (`a` too: the log on disk is now
    // shorter than what it had replayed, so it loads the files again).
    assert_eq!(record(&b, "two"), None);
    assert_eq!(record(&a, "two"), None);
    assert_eq!(record(&b, "one").as_deref(), Some("1"));
    assert_eq!(
        fs::metadata(&log).unwrap().len(),
        full.len() as u64 - 3,
        "a reader cuts nothing"
    );
    assert_eq!(b.change_counter().unwrap(), b_counter);
    // The next writer (here b) cuts the torn frame before it appends.
    put(&b, "three", "3");
    assert_eq!(record(&a, "three").as_deref(), Some("3"));
    assert!(fs::metadata(&log).unwrap().len() > valid);
    assert_ne!(b.change_counter().unwrap(), b_counter);
    drop((a, b));
    let store = FsBackend::open(&root).unwrap();
    assert_eq!(record(&store, "two"), None, "the torn batch is gone");
    assert_eq!(record(&store, "three").as_deref(), Some("3"));
}
