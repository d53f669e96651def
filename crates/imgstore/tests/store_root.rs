//! The store root: it records its backend, read-only opens create nothing,
//! it is its owner's alone (0700/0600 whatever the umask, a stranger's or
//! world-writable root refused), and a lock held by another process makes a
//! change fail after the timeout, naming the holder.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use imgstore::backend::ErrorKind;
use imgstore::{Backend, Error, Options, Store};

mod common;
use common::{BACKENDS, corpus};

fn options(backend: Option<Backend>) -> Options {
    Options {
        backend,
        ..Options::default()
    }
}

fn quirk_id() -> String {
    common::expected_image(&corpus(), "quirk")["image_id"]
        .as_str()
        .expect("image_id")
        .to_owned()
}

/// A store at `root` created with `backend`, holding the corpus's quirk image.
fn store_with_quirk(root: &Path, backend: Backend) {
    let store = Store::open_with(root, options(Some(backend))).expect("open");
    store
        .import(corpus().join("oci/quirk-unterminated"))
        .expect("import");
}

#[test]
fn a_root_opens_with_the_backend_it_was_created_with() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        store_with_quirk(dir.path(), backend);
        let store = Store::open(dir.path()).expect("reopen without a backend");
        let ids: Vec<String> = store
            .images()
            .expect("list images")
            .iter()
            .map(|i| i.id.to_string())
            .collect();
        assert_eq!(ids, [quirk_id()], "{backend:?}");
        drop(store);
        // No second store was made beside the first.
        let other = match backend {
            Backend::Sqlite => Backend::Fs,
            Backend::Fs | Backend::Postgres => Backend::Sqlite,
        };
        for name in files(other) {
            assert!(!dir.path().join(name).exists(), "{backend:?}: {name}");
        }
    }
}

#[test]
fn an_explicit_other_backend_is_refused_naming_the_recorded_one() {
    for (created, asked) in [
        (Backend::Fs, Backend::Sqlite),
        (Backend::Sqlite, Backend::Fs),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        store_with_quirk(dir.path(), created);
        let before = listing(dir.path());
        let err = Store::open_with(dir.path(), options(Some(asked))).expect_err("mismatch");
        assert!(
            matches!(&err, Error::BackendMismatch { recorded, requested, .. }
                if *recorded == created && *requested == asked),
            "{err}"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(
            err.to_string()
                .contains(&format!("uses the {created} backend, not {asked}")),
            "{err}"
        );
        assert_eq!(
            listing(dir.path()),
            before,
            "nothing created by the refusal"
        );
    }
}

/// Every path under `root`, sorted.
fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(
                path.strip_prefix(root)
                    .expect("below root")
                    .display()
                    .to_string(),
            );
        }
    }
    out.sort();
    out
}

#[test]
fn a_root_made_before_roots_recorded_their_backend_keeps_its_backend() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        store_with_quirk(dir.path(), backend);
        fs::remove_file(dir.path().join("store.json")).expect("as older code left it");
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(store.images().expect("list images").len(), 1, "{backend:?}");
        drop(store);
        let record = fs::read_to_string(dir.path().join("store.json")).expect("recorded again");
        assert!(record.contains(backend.name()), "{record}");
    }
}

#[test]
fn a_store_whose_database_was_moved_away_is_refused_not_recreated_empty() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        store_with_quirk(dir.path(), backend);
        let content = dir.path().join(files(backend)[0]);
        fs::rename(&content, dir.path().join("moved")).expect("rename");
        let err = Store::open(dir.path()).expect_err("content gone");
        assert!(
            matches!(err, Error::InvalidRoot { .. }),
            "{backend:?}: {err}"
        );
        assert!(
            err.to_string().contains(&format!(
                "the {backend} store there lacks {}",
                files(backend)[0]
            )),
            "{err}"
        );
        assert!(!content.exists(), "{backend:?}: recreated");
    }
}

/// What each backend keeps at the root (its content part first; a
/// postgres store keeps its state in its database).
fn files(backend: Backend) -> &'static [&'static str] {
    match backend {
        Backend::Sqlite => &["content.db", "images.db"],
        Backend::Fs => &["content", "imagedb"],
        Backend::Postgres => &[],
    }
}

#[test]
fn opening_without_create_makes_nothing_where_there_is_no_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nonexistent/deep");
    let no_create = Options {
        create: false,
        ..Options::default()
    };
    let err = Store::open_with(&missing, no_create.clone()).expect_err("no store");
    assert!(
        matches!(&err, Error::NoStore { root } if *root == missing),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(!dir.path().join("nonexistent").exists());
    // An empty directory is no store either, and stays empty.
    let err = Store::open_with(dir.path(), no_create).expect_err("empty dir");
    assert!(matches!(err, Error::NoStore { .. }), "{err}");
    assert!(listing(dir.path()).is_empty());
}

#[test]
fn everything_under_a_new_root_is_the_owners_alone_whatever_the_umask() {
    // umask is per process: a child process (this test binary's own
    // `load`) runs under umask 0 and the test checks what it left.
    let dir = tempfile::tempdir().expect("tempdir");
    for backend in BACKENDS {
        let root = dir.path().join(backend.name()).join("store");
        let status = Command::new("sh")
            .arg("-c")
            .arg("umask 0; exec \"$0\" --exact umask_child --nocapture")
            .arg(std::env::current_exe().expect("test binary"))
            .env("IMGSTORE_UMASK_CHILD_ROOT", &root)
            .env("IMGSTORE_UMASK_CHILD_BACKEND", backend.name())
            .status()
            .expect("run the child");
        assert!(status.success(), "{backend:?}: the child failed");
        let mut checked = 0;
        for path in std::iter::once(String::new()).chain(listing(&root)) {
            let full = root.join(&path);
            let metadata = fs::symlink_metadata(&full).expect("stat");
            let mode = metadata.mode() & 0o777;
            let wanted = if metadata.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(mode, wanted, "{backend:?}: {path:?} is {mode:o}");
            checked += 1;
        }
        assert!(checked > 4, "{backend:?}: only {checked} paths");
    }
}

/// The child of the umask test: loads an image into the root it is given
/// (a no-op when run as an ordinary test).
#[test]
fn umask_child() {
    let (Some(root), Some(backend)) = (
        std::env::var_os("IMGSTORE_UMASK_CHILD_ROOT"),
        std::env::var("IMGSTORE_UMASK_CHILD_BACKEND").ok(),
    ) else {
        return;
    };
    let backend: Backend = backend.parse().expect("backend name");
    store_with_quirk(Path::new(&root), backend);
    let store = Store::open(&root).expect("reopen");
    store.tag(&quirk_id(), "quirk:latest").expect("tag");
}

#[test]
fn a_root_others_may_write_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    store_with_quirk(&root, Backend::Sqlite);
    fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).expect("chmod");
    let err = Store::open(&root).expect_err("world-writable");
    assert!(matches!(err, Error::UnsafeRoot { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    assert!(
        err.to_string().contains("writable by others (mode 0777)"),
        "{err}"
    );
}

#[test]
fn an_existing_root_others_may_read_is_narrowed_to_0700() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    store_with_quirk(&root, Backend::Sqlite);
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).expect("chmod");
    Store::open(&root).expect("open");
    let mode = fs::metadata(&root).expect("stat").mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn a_root_owned_by_another_user_is_refused() {
    // As root, a directory given to `nobody`; as anyone else, `/`, which
    // root owns. Either way nothing may be created in it.
    let dir = tempfile::tempdir().expect("tempdir");
    // SAFETY: geteuid has no preconditions.
    let user = unsafe { libc::geteuid() };
    let root = if user == 0 {
        let root = dir.path().join("theirs");
        fs::create_dir(&root).expect("mkdir");
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).expect("chmod");
        std::os::unix::fs::chown(&root, Some(65534), Some(65534)).expect("chown");
        root
    } else {
        Path::new("/").to_path_buf()
    };
    let before = listing_top(&root);
    let err = Store::open(&root).expect_err("another user's root");
    assert!(matches!(err, Error::UnsafeRoot { .. }), "{err}");
    let owner = fs::metadata(&root).expect("stat").uid();
    assert!(
        err.to_string().contains(&format!(
            "owned by uid {owner}, not by this user (uid {user})"
        )),
        "{err}"
    );
    assert_eq!(listing_top(&root), before);
}

fn listing_top(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_change_waiting_on_a_held_lock_times_out_naming_the_holder() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        store_with_quirk(dir.path(), backend);
        // Another process holds the change lock and sleeps: flock(1)
        // without forking, so the holder is the process started here.
        let lock = dir.path().join("store.lock");
        let mut holder = Command::new("flock")
            .args(["--exclusive", "--no-fork"])
            .arg(&lock)
            .args(["sleep", "30"])
            .spawn()
            .expect("run flock(1)");
        // Wait until the lock is taken.
        let file = fs::File::open(&lock).expect("open the lock");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        // SAFETY: flock on an open descriptor has no memory effects.
        while unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
            // SAFETY: as above.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
            assert!(
                std::time::Instant::now() < deadline,
                "flock never took the lock"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let store = Store::open_with(
            dir.path(),
            Options {
                lock_timeout: Duration::from_millis(300),
                ..Options::default()
            },
        );
        let err = match store {
            // The open waits for the shared lock too.
            Err(err) => err,
            Ok(store) => store
                .tag(&quirk_id(), "x:1")
                .expect_err("tag under a held lock"),
        };
        holder.kill().expect("kill the holder");
        let _ = holder.wait();
        assert!(
            matches!(err, Error::LockTimeout { .. }),
            "{backend:?}: {err}"
        );
        assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
        let message = err.to_string();
        assert!(
            message.contains(&format!("held by process {} (sleep)", holder.id())),
            "{backend:?}: {message}"
        );
    }
}
