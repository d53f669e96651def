//! The few system calls std does not wrap: `*at` calls relative to an open
//! directory (fewer path walks on the hot paths, and no path is ever built
//! from more than a digest and a validated key), `flock`, and `fsync` of a
//! directory.
//!
//! One rule for links: the store's own entries (content files, metadata
//! directories and keys, record files, the lock) are never reached through
//! a symlink. Every open here passes `O_NOFOLLOW`, and a read opens only a
//! regular file, so `get` agrees with `walk` and `contains`, which list
//! regular files only; writes rename over whatever is there, which
//! replaces a symlink rather than writing through it. (The root and its
//! fixed directories may be symlinks: a relocated `/var/lib/docker`.)

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

/// `syncfs(2)` of the filesystem holding `file`: every dirty page and
/// inode of it written and the journal committed. Since Linux 5.8 it
/// reports a writeback error of any file of the filesystem seen since
/// `file` was opened (the superblock's error sequence), so a deferred
/// write that failed on its way to the disk fails the call.
pub(crate) fn syncfs(file: &File) -> io::Result<()> {
    // SAFETY: syncfs takes a valid descriptor, which `file` keeps open.
    retry(|| unsafe { libc::syncfs(file.as_raw_fd()) }).map(drop)
}

/// The error for an entry that is there but is not what the store keeps
/// (a symlink, a FIFO, a device, a directory where a file belongs): kind
/// `NotFound`, as `walk` and `contains` see it, with the reason.
pub(crate) fn not_regular(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{what} (symlinks are not followed)"),
    )
}

/// Opens the regular file `name` (relative to `dir`) for reading. A symlink
/// in its last component is not followed and anything but a regular file is
/// refused (see [`not_regular`]); `O_NONBLOCK` keeps a FIFO from blocking
/// the open (it has no effect on regular files).
pub(crate) fn open_read(dir: &File, name: &str) -> io::Result<File> {
    let cname = CName::new(name)?;
    // SAFETY: a valid directory fd and a NUL-terminated name; the returned fd is owned here.
    let fd = retry(|| unsafe {
        libc::openat(
            dir.as_raw_fd(),
            cname.as_c_str().as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK,
        )
    })
    .map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => not_regular("a symlink"),
        _ => e,
    })?;
    // SAFETY: `fd` was just opened and nothing else owns it.
    let file = unsafe { File::from_raw_fd(fd) };
    if !file.metadata()?.file_type().is_file() {
        return Err(not_regular("not a regular file"));
    }
    Ok(file)
}

/// Opens the directory `name` (relative to `dir`); a symlink in its last
/// component is not followed (`ENOTDIR`, as for a file there).
pub(crate) fn open_dir(dir: &File, name: &str) -> io::Result<File> {
    let name = CName::new(name)?;
    // SAFETY: as in `open_read`.
    let fd = retry(|| unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_c_str().as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    })?;
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Creates `name` (relative to `dir`) exclusively, write-only, mode 0600
/// (`O_EXCL` never follows a symlink).
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
                is_dir: st.st_mode & libc::S_IFMT == libc::S_IFDIR,
                is_symlink: st.st_mode & libc::S_IFMT == libc::S_IFLNK,
                size: st.st_size as u64,
                ino: st.st_ino,
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
    pub(crate) is_dir: bool,
    pub(crate) is_symlink: bool,
    pub(crate) size: u64,
    /// The inode: a file renamed over the name has another one.
    pub(crate) ino: u64,
}

/// The two kinds of `flock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockKind {
    /// Many holders at once; excludes an exclusive holder.
    Shared,
    /// One holder.
    Exclusive,
}

/// Tries to take (or convert to) a `flock` of `kind` without waiting: false
/// when another open file description holds a conflicting one. Locks belong
/// to the open file description: two opens of one file in one process
/// exclude each other like two processes do.
pub(crate) fn try_lock(file: &File, kind: LockKind) -> io::Result<bool> {
    let operation = match kind {
        LockKind::Shared => libc::LOCK_SH,
        LockKind::Exclusive => libc::LOCK_EX,
    };
    // SAFETY: valid fd.
    match retry(|| unsafe { libc::flock(file.as_raw_fd(), operation | libc::LOCK_NB) }) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases the `flock` held through `file` (closing it does too).
pub(crate) fn unlock(file: &File) -> io::Result<()> {
    // SAFETY: valid fd.
    retry(|| unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) }).map(|_| ())
}

/// Reads a regular file to its end, starting with `capacity` bytes of room.
///
/// A regular file returns fewer bytes than asked only at its end, so a short
/// read ends the loop without the extra `read` that would return 0: on the
/// hot path (small configs and metadata values) that is one syscall fewer,
/// and no `fstat`.
pub(crate) fn read_regular(file: &File, capacity: usize) -> io::Result<Vec<u8>> {
    let mut data: Vec<u8> = Vec::with_capacity(capacity.max(64));
    loop {
        let len = data.len();
        let spare = data.capacity() - len;
        // SAFETY: the pointer and length describe the vector's spare capacity,
        // which `read` may write; `set_len` below covers only what it wrote.
        let n = unsafe {
            libc::read(
                file.as_raw_fd(),
                data.as_mut_ptr().add(len).cast::<libc::c_void>(),
                spare,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let n = n as usize;
        // SAFETY: `read` initialised `n <= spare` bytes after `len`.
        unsafe { data.set_len(len + n) };
        if n == 0 || n < spare {
            break;
        }
        data.reserve(data.capacity());
    }
    data.shrink_to_fit();
    Ok(data)
}

/// The kind of a directory entry, from `d_type` (no `stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryType {
    /// A regular file.
    File,
    /// The file system does not say (`DT_UNKNOWN`): ask `stat`.
    Unknown,
    /// Anything else.
    Other,
}

/// Calls `visit(name, type)` for every entry of the directory `dir` (but `.`
/// and `..`), reading entries with `getdents64` in 64 KiB batches and
/// allocating nothing per entry. Stops at the first `Err` of `visit`.
pub(crate) fn for_each_entry<E>(
    dir: &File,
    mut visit: impl FnMut(&[u8], EntryType) -> Result<(), E>,
) -> io::Result<Result<(), E>> {
    // A descriptor of its own, so the walk has its own read position.
    let fd = open_dir(dir, ".")?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: valid fd and a buffer of the length given.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast::<libc::c_void>(),
                buf.len(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(Ok(()));
        }
        // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        let batch = &buf[..n as usize];
        let mut at = 0;
        while at + 19 <= batch.len() {
            let reclen = usize::from(u16::from_ne_bytes([batch[at + 16], batch[at + 17]]));
            if reclen < 19 || at + reclen > batch.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "malformed getdents64 record",
                ));
            }
            let d_type = batch[at + 18];
            let name_field = &batch[at + 19..at + reclen];
            let name = match name_field.iter().position(|b| *b == 0) {
                Some(end) => &name_field[..end],
                None => name_field,
            };
            at += reclen;
            if name == b"." || name == b".." {
                continue;
            }
            let kind = match d_type {
                libc::DT_REG => EntryType::File,
                libc::DT_UNKNOWN => EntryType::Unknown,
                _ => EntryType::Other,
            };
            if let Err(e) = visit(name, kind) {
                return Ok(Err(e));
            }
        }
    }
}
