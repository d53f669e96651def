//! `flock`s: the root lock on `<root>/lock`, shared by every open
//! `FsBackend` of the root, and [`wait_for`], the one way this crate waits
//! for a lock (with a timeout, never a hang).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use imgstore_backend::{Error, Result, Subject};

use crate::sys::{self, LockKind};

/// Name of the lock file in the root.
pub(crate) const LOCK_FILE: &str = "lock";

/// Opens (creating, mode 0600) a lock file; never through a symlink.
pub(crate) fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            Error::io(
                "open lock file",
                Subject::Store(path.display().to_string()),
                e,
            )
        })
}

/// Takes a `flock` of `kind` on `file` (the lock file at `path`), waiting
/// up to `timeout` for conflicting holders; then `FailedPrecondition`
/// naming the pid the file holds (the last exclusive holder writes it).
pub(crate) fn wait_for(file: &File, path: &Path, kind: LockKind, timeout: Duration) -> Result<()> {
    let subject = || Subject::Store(path.display().to_string());
    let started = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        if sys::try_lock(file, kind).map_err(|e| Error::io("lock", subject(), e))? {
            return Ok(());
        }
        let waited = started.elapsed();
        if waited >= timeout {
            let mut holder = String::new();
            let _ = (&*file).seek(SeekFrom::Start(0));
            let _ = (&*file).read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "an unknown process".to_owned(),
                pid => format!("process {pid}"),
            };
            return Err(Error::FailedPrecondition {
                subject: subject(),
                reason: format!("locked by {holder}; gave up after waiting {waited:.1?}"),
            });
        }
        std::thread::sleep(pause.min(timeout - waited));
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Writes this process's pid into a lock file it holds exclusively, for the
/// error of whoever waits for it: one `pwrite` of a fixed-width line, so a
/// longer pid left by an earlier holder is overwritten whole.
pub(crate) fn write_pid(file: &File, path: &Path) -> Result<()> {
    let pid = format!("{:<20}\n", std::process::id());
    file.write_all_at(pid.as_bytes(), 0).map_err(|e| {
        Error::io(
            "write pid to",
            Subject::Store(path.display().to_string()),
            e,
        )
    })
}

/// A shared lock on a store root, held for the backend's lifetime: any
/// number of backends (in this process or others) share a root, and the
/// record store orders their writes. An opener waits only while another
/// holds it exclusively (a version that cleaned leftovers on open did).
/// Released when dropped, or when the process dies.
#[derive(Debug)]
pub(crate) struct RootLock {
    _file: File,
}

impl RootLock {
    /// Takes the root's lock shared, waiting up to `timeout` for an
    /// exclusive holder to let go.
    pub(crate) fn acquire(root: &Path, timeout: Duration) -> Result<RootLock> {
        let path = root.join(LOCK_FILE);
        let file = open_lock_file(&path)?;
        wait_for(&file, &path, LockKind::Shared, timeout)?;
        Ok(RootLock { _file: file })
    }
}
