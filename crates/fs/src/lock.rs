//! The advisory lock on the store root: `flock` on `<root>/lock`, held for
//! the backend's lifetime, the file holding the holder's pid.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use imgstore_backend::{Error, Result, Subject};

use crate::sys;

/// Name of the lock file in the root.
pub(crate) const LOCK_FILE: &str = "lock";

/// An exclusive lock on a store root; released when dropped (or when the
/// process dies: the kernel drops `flock`s with the last descriptor).
#[derive(Debug)]
pub(crate) struct RootLock {
    _file: File,
}

impl RootLock {
    /// Takes the lock, waiting up to `timeout` for another holder (another
    /// process, or another `FsBackend` of this one: `flock` locks belong to
    /// the open file, not to the process) to let go.
    pub(crate) fn acquire(root: &Path, timeout: Duration) -> Result<RootLock> {
        let path = root.join(LOCK_FILE);
        let subject = || Subject::Store(path.display().to_string());
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            // Never write the pid through a symlink.
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| Error::io("open lock file", subject(), e))?;
        let started = Instant::now();
        loop {
            if sys::try_lock_exclusive(&file).map_err(|e| Error::io("lock", subject(), e))? {
                break;
            }
            let waited = started.elapsed();
            if waited >= timeout {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "an unknown process".to_owned(),
                    pid => format!("process {pid}"),
                };
                return Err(Error::FailedPrecondition {
                    subject: subject(),
                    reason: format!(
                        "the store is locked by {holder}; gave up after waiting {:.1?}",
                        waited
                    ),
                });
            }
            std::thread::sleep((timeout - waited).min(Duration::from_millis(10)));
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .map_err(|e| Error::io("write pid to", subject(), e))?;
        Ok(RootLock { _file: file })
    }
}
