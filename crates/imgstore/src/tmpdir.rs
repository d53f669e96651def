//! `<root>/tmp/`: the one place for temporary files of imports (the
//! decompressed copy of a gzip-compressed tarball), 0700.
//!
//! Each temporary file is held under an exclusive `flock` for as long as
//! its import runs and removed when the import ends. A process killed
//! mid-import leaves its file behind, unlocked: the next open of the root
//! and `gc` remove every file of the directory nobody holds locked (another
//! process importing right now keeps its lock, so its file stays), and
//! `fsck` reports them.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The directory of temporary files, under the root.
const TMP_DIR: &str = "tmp";

/// Tries to take an exclusive `flock` without waiting; the lock lives as
/// long as the open file.
fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a valid, open descriptor has no memory effects.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(error)
    }
}

/// A temporary file of `<root>/tmp/`, locked while this value lives and
/// removed when it is dropped.
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
    file: File,
}

impl TempFile {
    /// Creates a new, empty, locked temporary file (0600) in `<root>/tmp/`
    /// (created 0700 if needed); `purpose` starts its name.
    pub(crate) fn create(root: &Path, purpose: &str) -> io::Result<TempFile> {
        let dir = root.join(TMP_DIR);
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let path = dir.join(format!("{purpose}-{}-{nanos}.tmp", std::process::id()));
            let file = match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            try_lock(&file)?;
            // A cleanup may have removed the file between its creation and
            // the lock (it was unlocked then): start again with a new one.
            match fs::metadata(&path) {
                Ok(meta) if meta.ino() == file.metadata()?.ino() => {
                    return Ok(TempFile { path, file });
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, for writing.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Removed while still locked, so no cleanup can mistake it for a
        // leftover and no new file can take its name meanwhile.
        let _ = fs::remove_file(&self.path);
    }
}

/// The temporary files of `<root>/tmp/` no live process holds (leftovers of
/// interrupted imports), with their sizes. With `remove`, they are removed
/// (each while this process holds its lock). Older versions left
/// `<root>/import-<pid>-<nanos>.tar.tmp`, unlocked: those whose process is
/// gone count too.
pub(crate) fn leftover_temp_files(root: &Path, remove: bool) -> io::Result<Vec<(PathBuf, u64)>> {
    let mut leftovers = legacy_leftovers(root, remove)?;
    leftovers.extend(unlocked_temp_files(root, remove)?);
    Ok(leftovers)
}

/// Whether process `pid` exists (on this machine; a root shared over a
/// network file system would need more, which older versions did not do).
fn process_exists(pid: libc::pid_t) -> bool {
    if pid <= 0 {
        return true;
    }
    // SAFETY: kill with signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    // EPERM: it exists, owned by another user.
    io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// `<root>/import-<pid>-<nanos>.tar.tmp` files of older versions whose
/// process is gone.
fn legacy_leftovers(root: &Path, remove: bool) -> io::Result<Vec<(PathBuf, u64)>> {
    let mut leftovers = Vec::new();
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(leftovers),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("import-"))
            .and_then(|n| n.strip_suffix(".tar.tmp"))
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, nanos)| {
                nanos.parse::<u128>().ok()?;
                pid.parse::<libc::pid_t>().ok()
            })
        else {
            continue;
        };
        let meta = entry.metadata()?;
        if !meta.is_file() || process_exists(pid) {
            continue;
        }
        take_leftover(entry.path(), meta.len(), remove, &mut leftovers)?;
    }
    Ok(leftovers)
}

/// The files of `<root>/tmp/` nobody holds locked.
fn unlocked_temp_files(root: &Path, remove: bool) -> io::Result<Vec<(PathBuf, u64)>> {
    let dir = root.join(TMP_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut leftovers = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(file) => file,
            // Removed meanwhile by its import; or not a file this store
            // wrote (a symlink): left alone.
            Err(_) => continue,
        };
        let meta = file.metadata()?;
        if !meta.is_file() || !try_lock(&file)? {
            continue;
        }
        take_leftover(path, meta.len(), remove, &mut leftovers)?;
    }
    Ok(leftovers)
}

/// Lists a leftover (removing it first when asked); one another cleanup
/// removed meanwhile is not listed.
fn take_leftover(
    path: PathBuf,
    size: u64,
    remove: bool,
    leftovers: &mut Vec<(PathBuf, u64)>,
) -> io::Result<()> {
    if remove {
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    leftovers.push((path, size));
    Ok(())
}
