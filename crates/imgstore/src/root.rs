//! The store root: where it lives when the user does not say, which backend
//! it was created with, and who may use it.
//!
//! A root records its backend in `<root>/store.json` when it is created, so
//! later opens use that backend without being told and an explicit different
//! one is refused (two stores of different backends in one directory would
//! each look empty to the other). Roots made before the record existed are
//! recognised by their files (`content.db`/`images.db` or
//! `content/`/`imagedb/`) and get their record on the next open.
//!
//! Everything under a root is for its owner only: the root is created 0700
//! whatever the umask, a root owned by another user or writable by group or
//! others is refused (a stranger could plant a catalog, or hold the lock
//! file forever), and an existing root of the owner's that others can read
//! is narrowed to 0700.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{Backend, Error, Options, Result};

/// The default store root: `$IMGSTORE_ROOT`, else `$XDG_DATA_HOME/imgstore`,
/// else `~/.local/share/imgstore` (the XDG default for user data), else
/// `./imgstore` when not even `$HOME` is set. Empty variables count as
/// unset, as the XDG specification says.
///
/// ```
/// let root = imgstore::default_root();
/// assert!(root.is_absolute() || root.ends_with("imgstore"));
/// ```
pub fn default_root() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(root) = var("IMGSTORE_ROOT") {
        return PathBuf::from(root);
    }
    let data = var("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("imgstore")
}

/// The file naming a root's backend.
const RECORD: &str = "store.json";

/// What `<root>/store.json` holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct RootRecord {
    backend: String,
    /// A PostgreSQL store's database, without its password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
}

/// What [`prepare`] decided about a root.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The backend to open.
    pub(crate) backend: Backend,
    /// The root records no backend yet: [`record`] it once the backend's
    /// files exist (a crash in between leaves a root recognised by them).
    pub(crate) unrecorded: bool,
    /// The database of a PostgreSQL store (`Some` exactly for it).
    pub(crate) database_url: Option<String>,
}

/// Makes `root` ready for [`Store::open_with`](crate::Store::open_with):
/// creates it (0700) when `options.create` allows, checks who may use it,
/// and decides the backend: the recorded one, else the one whose files a
/// root made before roots recorded their backend holds, else (a new
/// store) the one asked for.
///
/// A recorded store whose files are gone (an SQLite root without
/// `content.db`) is `InvalidRoot`, never silently replaced by an empty one.
pub(crate) fn prepare(root: &Path, options: &Options) -> Result<Prepared> {
    match fs::metadata(root) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if !options.create {
                return Err(Error::NoStore {
                    root: root.to_path_buf(),
                });
            }
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root)
                .map_err(io_error("create store root", root))?;
        }
        Err(source) => return Err(io_error("read store root", root)(source)),
    }
    check_owner(root)?;
    let record = read_record(root)?;
    let (backend, unrecorded) = match record.as_ref().map(|(backend, _)| *backend) {
        Some(recorded) => (recorded, false),
        None => match found_backend(root)? {
            Some(found) => (found, true),
            None if options.create => (options.backend.unwrap_or_default(), true),
            None => {
                return Err(Error::NoStore {
                    root: root.to_path_buf(),
                });
            }
        },
    };
    let backend = matches_request(root, backend, options)?;
    // Only a recorded store must have all its files: an unrecorded root
    // with some of them is a creation a crash cut short (or a store of
    // older code), which opening completes.
    if !unrecorded {
        let missing: Vec<&str> = backend
            .files()
            .iter()
            .copied()
            .filter(|name| !root.join(name).exists())
            .collect();
        if !missing.is_empty() {
            return Err(Error::InvalidRoot {
                root: root.to_path_buf(),
                reason: format!(
                    "the {backend} store there lacks {}: its data is gone or was moved; \
                     refusing to start an empty store in its place",
                    missing.join(" and ")
                ),
            });
        }
    }
    let database_url = match backend {
        Backend::Postgres => Some(database_url(
            root,
            options.database_url.as_deref(),
            record.and_then(|(_, url)| url),
        )?),
        Backend::Sqlite | Backend::Fs => None,
    };
    Ok(Prepared {
        backend,
        unrecorded,
        database_url,
    })
}

/// The database a PostgreSQL root uses: the one given, which must name the
/// database the root records (a password may come with it), else the one
/// recorded.
fn database_url(root: &Path, given: Option<&str>, recorded: Option<String>) -> Result<String> {
    let invalid = |reason: String| Error::InvalidRoot {
        root: root.to_path_buf(),
        reason,
    };
    match (given, recorded) {
        (Some(given), Some(recorded)) if imgstore_postgres::redact_url(given) != recorded => {
            Err(invalid(format!(
                "its store is in the database {recorded}, not {}",
                imgstore_postgres::redact_url(given)
            )))
        }
        (Some(given), _) => Ok(given.to_owned()),
        (None, Some(recorded)) => Ok(recorded),
        (None, None) => Err(invalid(
            "a postgres store needs the URL of its database (--database-url or \
             IMGSTORE_DATABASE_URL, postgres://user@host/db)"
                .to_owned(),
        )),
    }
}

/// `backend`, unless `options` asked for another.
fn matches_request(root: &Path, backend: Backend, options: &Options) -> Result<Backend> {
    match options.backend {
        Some(requested) if requested != backend => Err(Error::BackendMismatch {
            root: root.to_path_buf(),
            recorded: backend,
            requested,
        }),
        _ => Ok(backend),
    }
}

/// Removes `<root>/catalog/`, the image lists earlier versions kept beside
/// the records (the records are the index now); returns how many files and
/// bytes went. Best effort: gc calls it under the exclusive lock.
pub(crate) fn remove_old_catalogs(root: &Path) -> (usize, u64) {
    let dir = root.join("catalog");
    let Ok(entries) = fs::read_dir(&dir) else {
        return (0, 0);
    };
    let (mut files, mut bytes) = (0, 0);
    for entry in entries.flatten() {
        let size = entry.metadata().map_or(0, |m| m.len());
        if fs::remove_file(entry.path()).is_ok() {
            files += 1;
            bytes += size;
        }
    }
    let _ = fs::remove_dir(&dir);
    (files, bytes)
}

/// The backend `<root>/store.json` records; `None` when there is none.
pub(crate) fn recorded_backend(root: &Path) -> Result<Option<Backend>> {
    Ok(read_record(root)?.map(|(backend, _)| backend))
}

/// The backend and database URL `<root>/store.json` records.
fn read_record(root: &Path) -> Result<Option<(Backend, Option<String>)>> {
    let path = root.join(RECORD);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io_error("read", &path)(source)),
    };
    let invalid = |reason: String| Error::InvalidRoot {
        root: root.to_path_buf(),
        reason,
    };
    let record: RootRecord = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("{RECORD} is not the root's record: {e}")))?;
    let backend = record.backend.parse().map_err(|()| {
        invalid(format!(
            "{RECORD} names an unknown backend {:?}",
            record.backend
        ))
    })?;
    Ok(Some((backend, record.database_url)))
}

/// The backend whose files a root made before `store.json` existed holds.
fn found_backend(root: &Path) -> Result<Option<Backend>> {
    let has = |backend: Backend| backend.files().iter().any(|name| root.join(name).exists());
    let (sqlite, fs) = (has(Backend::Sqlite), has(Backend::Fs));
    match (sqlite, fs) {
        (true, true) => Err(Error::InvalidRoot {
            root: root.to_path_buf(),
            reason: "it holds both an SQLite store (content.db, images.db) and an fs store \
                     (content/, imagedb/) and records neither; move one away"
                .to_owned(),
        }),
        (true, false) => Ok(Some(Backend::Sqlite)),
        (false, true) => Ok(Some(Backend::Fs)),
        (false, false) => Ok(None),
    }
}

/// Records `backend` (and a PostgreSQL store's database, without its
/// password) durably, unless a concurrent open recorded one first: returns
/// the backend the root records afterwards.
pub(crate) fn record(root: &Path, backend: Backend, database_url: Option<&str>) -> Result<Backend> {
    let path = root.join(RECORD);
    let temp = root.join(format!(".{RECORD}.{}.tmp", std::process::id()));
    let record = serde_json::to_vec(&RootRecord {
        backend: backend.name().to_owned(),
        database_url: database_url.map(imgstore_postgres::redact_url),
    })
    .map_err(|e| io_error("encode", &path)(io::Error::other(e)))?;
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(&record)?;
            file.sync_all()
        });
    if let Err(source) = written {
        let _ = fs::remove_file(&temp);
        return Err(io_error("write", &temp)(source));
    }
    // A link never replaces: of two opens creating the root at once, the
    // first record wins and the other reads it.
    let linked = fs::hard_link(&temp, &path);
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            File::open(root)
                .and_then(|dir| dir.sync_all())
                .map_err(io_error("sync", root))?;
            Ok(backend)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            recorded_backend(root)?.ok_or_else(|| Error::InvalidRoot {
                root: root.to_path_buf(),
                reason: format!("{RECORD} vanished while the root was being created"),
            })
        }
        Err(source) => Err(io_error("write", &path)(source)),
    }
}

/// Refuses a root another user owns or others may write; narrows one of
/// the user's own that others may read to 0700.
fn check_owner(root: &Path) -> Result<()> {
    let metadata = fs::metadata(root).map_err(io_error("read store root", root))?;
    let unsafe_root = |reason: String| Error::UnsafeRoot {
        root: root.to_path_buf(),
        reason,
    };
    if !metadata.is_dir() {
        return Err(unsafe_root("it is not a directory".to_owned()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let user = unsafe { libc::geteuid() };
    if metadata.uid() != user {
        return Err(unsafe_root(format!(
            "it is owned by uid {}, not by this user (uid {user})",
            metadata.uid()
        )));
    }
    let mode = metadata.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(unsafe_root(format!(
            "it is writable by {} (mode {mode:04o}); `chmod 700` it after checking its contents",
            if mode & 0o002 != 0 {
                "others"
            } else {
                "its group"
            }
        )));
    }
    if mode & 0o077 != 0 {
        fs::set_permissions(root, fs::Permissions::from_mode(0o700))
            .map_err(io_error("narrow the permissions of", root))?;
    }
    Ok(())
}

fn io_error(operation: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io {
        operation,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(backend: Option<Backend>, create: bool) -> Options {
        Options {
            backend,
            create,
            ..Options::default()
        }
    }

    #[test]
    fn a_new_root_records_the_backend_it_was_created_with() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("store");
        let prepared = prepare(&root, &options(Some(Backend::Fs), true)).expect("prepare");
        assert_eq!(prepared.backend, Backend::Fs);
        assert!(prepared.unrecorded);
        for name in Backend::Fs.files() {
            fs::create_dir(root.join(name)).expect("what the backend creates");
        }
        record(&root, Backend::Fs, None).expect("record");
        assert_eq!(recorded_backend(&root).expect("read"), Some(Backend::Fs));
        let reopened = prepare(&root, &options(None, false)).expect("reopen");
        assert_eq!(reopened.backend, Backend::Fs);
        assert!(!reopened.unrecorded);
        let mode = fs::metadata(&root).expect("stat").mode() & 0o777;
        assert_eq!(mode, 0o700);
        let record = fs::metadata(root.join(RECORD)).expect("stat").mode() & 0o777;
        assert_eq!(record, 0o600);
    }

    #[test]
    fn a_root_made_before_the_record_is_recognised_by_its_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["content", "imagedb"] {
            fs::create_dir(dir.path().join(name)).expect("mkdir");
        }
        let prepared = prepare(dir.path(), &options(None, false)).expect("prepare");
        assert_eq!(prepared.backend, Backend::Fs);
        assert!(prepared.unrecorded);
    }

    #[test]
    fn a_recorded_store_whose_files_are_gone_is_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("images.db"), b"").expect("write");
        record(dir.path(), Backend::Sqlite, None).expect("record");
        let err = prepare(dir.path(), &options(None, true)).expect_err("content.db gone");
        assert!(
            err.to_string()
                .contains("the sqlite store there lacks content.db"),
            "{err}"
        );
        assert!(!dir.path().join("content.db").exists());
    }

    #[test]
    fn a_garbage_record_is_an_invalid_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(RECORD), b"{\"backend\":\"tape\"}").expect("write");
        let err = prepare(dir.path(), &options(None, true)).expect_err("garbage");
        assert!(matches!(err, Error::InvalidRoot { .. }), "{err}");
        assert!(err.to_string().contains("\"tape\""), "{err}");
    }
}
