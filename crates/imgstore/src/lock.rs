//! The writers' lock between processes sharing one root.
//!
//! The records are the index (`docs/STATE_ON_DISK.md`): nothing is kept in
//! memory that another process could make stale, so nothing is reloaded.
//! What needs serialising is a change's read-check-write across its stores
//! (a layer's "any holder left?" probe and the delete it decides, a name's
//! index derived from the images stored): every change takes
//! `<root>/store.lock`'s exclusive `flock` (after the in-process mutex) for
//! its duration. Readers take no lock: each read is a backend read of
//! committed records. The lock waits at most the store's timeout and then
//! names the processes holding it.
//!
//! A PostgreSQL store's nodes share no file: there the same lock is the
//! content schema's session-level advisory lock
//! ([`PostgresBackend::lock_changes`]), held by a connection for the
//! change's duration and released with it, also when the process dies.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use imgstore_postgres::{ChangeLock, LockError, PostgresBackend};

use crate::changes::ChangeCount;
use crate::{Error, Result};

/// The lock of a root: its lock file, or a PostgreSQL store's lock in the database.
pub(crate) struct StoreLock {
    held_in: HeldIn,
    /// How long to wait for another process's hold of the lock.
    timeout: Duration,
    in_process: Mutex<()>,
    /// `<root>/store.changes`, moved by every change; `None` where it
    /// cannot be opened or mapped (readers then ask the backends).
    changes: Option<ChangeCount>,
}

/// Where the lock between processes is.
enum HeldIn {
    /// `<root>/store.lock`.
    File { path: PathBuf, file: File },
    /// The database every node of the store shares.
    Database(PostgresBackend),
}

/// Held while one change runs: the in-process mutex and the file's
/// exclusive lock (released on drop).
///
/// Fields drop in declaration order, so the file lock must come first: a
/// thread that took the mutex while this one still held the `flock` would
/// find it already held (one open file description) and go on, and this
/// one's unlock would then leave it changing the store without the lock
/// (found by the concurrency campaign: another process's change slipped in).
///
/// The change count ends first of all, while both locks are still held.
pub(crate) struct ChangeGuard<'a> {
    _counted: Counted<'a>,
    _file: Held<'a>,
    _in_process: MutexGuard<'a, ()>,
}

/// A change counted in [`ChangeCount`]: begun when taken, ended on drop.
struct Counted<'a>(Option<&'a ChangeCount>);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        if let Some(changes) = self.0 {
            changes.end();
        }
    }
}

/// The lock between processes, held.
enum Held<'a> {
    File(#[allow(dead_code)] FileLock<'a>),
    Database(#[allow(dead_code)] Box<ChangeLock>),
}

/// A change of a [`Store`](crate::Store) in progress: the locks, held
/// until it is committed or dropped.
pub(crate) struct Change<'a> {
    _guard: ChangeGuard<'a>,
}

impl<'a> Change<'a> {
    pub(crate) fn new(guard: ChangeGuard<'a>) -> Change<'a> {
        Change { _guard: guard }
    }

    /// Called when the change succeeded; lets go of the locks.
    pub(crate) fn commit(self) {}

    /// Commits when `result` is Ok, and passes it on.
    pub(crate) fn finish<T>(self, result: crate::Result<T>) -> crate::Result<T> {
        if result.is_ok() {
            self.commit();
        }
        result
    }
}

/// A held `flock`, released on drop.
struct FileLock<'a>(&'a File);

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        // Unlocking a lock we hold cannot fail in a way we could act on; the
        // kernel drops it with the descriptor anyway.
        // SAFETY: flock on a valid, open descriptor has no memory effects.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

fn flock(file: &File, operation: libc::c_int) -> io::Result<FileLock<'_>> {
    loop {
        // SAFETY: flock on a valid, open descriptor has no memory effects.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(FileLock(file));
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Why a wait for the lock ended without it.
enum WaitError {
    /// The lock was still held after the timeout.
    TimedOut(Duration),
    /// `flock` itself failed.
    Io(io::Error),
}

/// `flock(operation)`, waiting at most `timeout` for other holders: a
/// stranger (any process that can open the file) holding it forever must
/// not hang every command.
fn flock_within(
    file: &File,
    operation: libc::c_int,
    timeout: Duration,
) -> Result<FileLock<'_>, WaitError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match flock(file, operation | libc::LOCK_NB) {
            Ok(lock) => return Ok(lock),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(WaitError::Io(e)),
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(WaitError::TimedOut(waited));
        }
        std::thread::sleep(pause.min(timeout - waited));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The processes holding a lock on `file`, as the kernel lists them in
/// `/proc/locks` (`process 1234 (imgstore)`); "an unknown process" where
/// that list is not available.
fn lock_holders(file: &File) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(metadata) = file.metadata() else {
        return "an unknown process".to_owned();
    };
    let dev = metadata.dev();
    // /proc/locks writes the device as hex major:minor and the inode in decimal.
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let id = format!("{major:02x}:{minor:02x}:{}", metadata.ino());
    let listed = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    let holders: Vec<String> = listed
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // "1: FLOCK  ADVISORY  WRITE 2049 fe:00:1234 0 EOF"; a waiter's
            // line has "->" after the number.
            let at = fields.iter().position(|f| *f == id)?;
            if fields.get(1) == Some(&"->") || at < 1 {
                return None;
            }
            let pid = fields[at - 1];
            let command = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            Some(match command.trim() {
                "" => format!("process {pid}"),
                command => format!("process {pid} ({command})"),
            })
        })
        .collect();
    if holders.is_empty() {
        "an unknown process".to_owned()
    } else {
        holders.join(", ")
    }
}

/// Opens a root-level file for reading and writing, creating it empty and
/// 0600 if missing (the umask can only narrow that).
pub(crate) fn open_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

impl StoreLock {
    /// Opens (creating, 0600) `<root>/store.lock`; waits for the file lock
    /// will give up after `timeout`.
    pub(crate) fn open(root: &Path, timeout: Duration) -> Result<StoreLock> {
        let path = root.join("store.lock");
        let file = open_private(&path).map_err(|source| Error::Io {
            operation: "open the lock file",
            path: path.clone(),
            source,
        })?;
        Ok(StoreLock {
            held_in: HeldIn::File { path, file },
            timeout,
            in_process: Mutex::new(()),
            changes: ChangeCount::open(root).ok(),
        })
    }

    /// The change lock of a PostgreSQL store, in its database.
    pub(crate) fn in_database(database: PostgresBackend, timeout: Duration) -> StoreLock {
        StoreLock {
            held_in: HeldIn::Database(database),
            timeout,
            in_process: Mutex::new(()),
            // Other nodes change the store without this root: only the
            // database's own change counter sees them.
            changes: None,
        }
    }

    /// The exclusive lock between processes, waiting at most the timeout.
    fn wait(&self) -> Result<Held<'_>> {
        match &self.held_in {
            HeldIn::File { path, file } => flock_within(file, libc::LOCK_EX, self.timeout)
                .map(Held::File)
                .map_err(|e| match e {
                    WaitError::TimedOut(waited) => Error::LockTimeout {
                        path: path.clone(),
                        waited,
                        holders: lock_holders(file),
                    },
                    WaitError::Io(source) => Error::Io {
                        operation: "lock",
                        path: path.clone(),
                        source,
                    },
                }),
            HeldIn::Database(database) => database
                .lock_changes(self.timeout)
                .map(|lock| Held::Database(Box::new(lock)))
                .map_err(|e| match e {
                    LockError::TimedOut { waited, holders } => Error::LockTimeout {
                        path: PathBuf::from(format!("database {}", database.url())),
                        waited,
                        holders,
                    },
                    LockError::Backend(e) => e.into(),
                }),
        }
    }

    /// Takes the locks for a change: this process's mutex, then the
    /// exclusive lock between processes.
    pub(crate) fn change(&self) -> Result<ChangeGuard<'_>> {
        let in_process = self.lock_in_process();
        let held = self.wait()?;
        if let Some(changes) = &self.changes {
            changes.begin();
        }
        Ok(ChangeGuard {
            _counted: Counted(self.changes.as_ref()),
            _in_process: in_process,
            _file: held,
        })
    }

    /// The root's change count, when it could be mapped.
    pub(crate) fn changes(&self) -> Option<&ChangeCount> {
        self.changes.as_ref()
    }

    fn lock_in_process(&self) -> MutexGuard<'_, ()> {
        self.in_process
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
