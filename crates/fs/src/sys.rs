//! The few system calls std does not wrap: `*at` calls relative to an open
//! directory (fewer path walks on the hot paths, and no path is ever built
//! from more than a digest and a validated key), `flock`, and `fsync` of a
//! directory.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};

/// A NUL-terminated copy of `name` on the stack (names here are at most a
/// 64-hex digest plus `/` plus a 128-byte key).
struct CName {
    buf: [u8; 256],
}

impl CName {
    fn new(name: &str) -> io::Result<CName> {
        if name.len() >= 256 || name.as_bytes().contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "unusable file name",
            ));
        }
        let mut buf = [0u8; 256];
        buf[..name.len()].copy_from_slice(name.as_bytes());
        Ok(CName { buf })
    }

    fn as_c_str(&self) -> &CStr {
        // The buffer is zero-filled past the name and the name holds no NUL.
        CStr::from_bytes_until_nul(&self.buf).unwrap_or(c"")
    }
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn retry<F: FnMut() -> libc::c_int>(mut call: F) -> io::Result<libc::c_int> {
    loop {
        match check(call()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Opens `name` (relative to `dir`) for reading.
pub(crate) fn open_read(dir: &File, name: &str) -> io::Result<File> {
    let name = CName::new(name)?;
    // SAFETY: a valid directory fd and a NUL-terminated name; the returned fd is owned here.
    let fd = retry(|| unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_c_str().as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Opens the directory `name` (relative to `dir`).
pub(crate) fn open_dir(dir: &File, name: &str) -> io::Result<File> {
    let name = CName::new(name)?;
    // SAFETY: as in `open_read`.
    let fd = retry(|| unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_c_str().as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Creates `name` (relative to `dir`) exclusively, write-only, mode 0600.
pub(crate) fn create_new(dir: &File, name: &str) -> io::Result<File> {
    let name = CName::new(name)?;
    // SAFETY: as in `open_read`; the mode is passed as the variadic argument O_CREAT needs.
    let fd = retry(|| unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_c_str().as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
            0o600 as libc::c_uint,
        )
    })?;
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Renames `from` to `to`, both relative to `dir`, replacing `to` atomically.
pub(crate) fn rename(dir: &File, from: &str, to: &str) -> io::Result<()> {
    let (from, to) = (CName::new(from)?, CName::new(to)?);
    // SAFETY: valid fd and NUL-terminated names.
    retry(|| unsafe {
        libc::renameat(
            dir.as_raw_fd(),
            from.as_c_str().as_ptr(),
            dir.as_raw_fd(),
            to.as_c_str().as_ptr(),
        )
    })?;
    Ok(())
}

/// Removes the file `name` (relative to `dir`).
pub(crate) fn unlink(dir: &File, name: &str) -> io::Result<()> {
    let name = CName::new(name)?;
    // SAFETY: valid fd and NUL-terminated name.
    retry(|| unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_c_str().as_ptr(), 0) })?;
    Ok(())
}

/// Creates the directory `name` (relative to `dir`) with mode 0700; false
/// when it existed already.
pub(crate) fn mkdir(dir: &File, name: &str) -> io::Result<bool> {
    let name = CName::new(name)?;
    // SAFETY: valid fd and NUL-terminated name.
    match retry(|| unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_c_str().as_ptr(), 0o700) }) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// What `stat` says about `name` (relative to `dir`), without following a
/// final symlink: `None` when absent.
pub(crate) fn stat(dir: &File, name: &str) -> io::Result<Option<Stat>> {
    let name = CName::new(name)?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid fd, NUL-terminated name, and `st` is written by the call on success.
    let ret = retry(|| unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_c_str().as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    });
    match ret {
        Ok(_) => {
            // SAFETY: fstatat returned success, so `st` is initialised.
            let st = unsafe { st.assume_init() };
            Ok(Some(Stat {
                is_file: st.st_mode & libc::S_IFMT == libc::S_IFREG,
                size: st.st_size as u64,
            }))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The part of `stat` the backend uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stat {
    pub(crate) is_file: bool,
    pub(crate) size: u64,
}

/// Tries to take an exclusive `flock` without waiting: false when another
/// open file description holds it.
pub(crate) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    // SAFETY: valid fd.
    match retry(|| unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}
