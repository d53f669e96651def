//! [`WriteBack`]: early write-back of a large file as it is written, so the
//! disk writes while the writer keeps hashing instead of after it.

use std::fs::File;
use std::io;

/// Early write-back of one file being written from offset 0 onwards.
///
/// A blob write ends with `fsync`. Left alone, the kernel keeps every byte
/// dirty in the page cache until then (a machine with plenty of memory stays
/// under its dirty thresholds), and the final `fsync` waits for the disk to
/// write the whole blob: for a 1 GiB layer, a second of waiting after the
/// hashing is done. With [`WriteBack::wrote`] called after each write, every
/// [`CHUNK`](WriteBack::CHUNK) bytes the chunk just filled is handed to the
/// disk (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait), and
/// the chunk before it is waited for and dropped from the page cache
/// (`posix_fadvise(POSIX_FADV_DONTNEED)`): the disk writes while the next
/// chunk is hashed, at most two chunks are dirty at a time, and the final
/// `fsync` has at most those to write.
///
/// Durability is unchanged: the caller's final `fsync` still decides. The
/// calls are hints, and a system without them (not Linux, a file system that
/// refuses) simply skips them. One error is not a hint: when waiting for a
/// chunk reports a failed write (`EIO`, `ENOSPC`), the kernel counts that
/// error as seen by this file description and the final `fsync` would not
/// report it again, so [`WriteBack::wrote`] returns it and the write fails.
///
/// ```
/// use std::io::Write;
/// use imgstore_backend::WriteBack;
///
/// let mut file = tempfile::tempfile()?;
/// let mut write_back = WriteBack::new();
/// let chunk = vec![7u8; 1 << 20];
/// for _ in 0..40 {
///     file.write_all(&chunk)?;
///     write_back.wrote(&file, chunk.len())?;
/// }
/// file.sync_all()?;
/// assert_eq!(write_back.written(), 40 << 20);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct WriteBack {
    /// Bytes written so far: the end of the file.
    written: u64,
    /// Everything before this offset was handed to the disk.
    started: u64,
    /// False once the system refused the calls: they are skipped from then on.
    enabled: bool,
}

impl Default for WriteBack {
    fn default() -> WriteBack {
        WriteBack::new()
    }
}

impl WriteBack {
    /// Bytes handed to the disk at a time.
    pub const CHUNK: u64 = 16 << 20;

    /// Write-back of a file that is empty so far.
    pub fn new() -> WriteBack {
        WriteBack {
            written: 0,
            started: 0,
            enabled: cfg!(target_os = "linux"),
        }
    }

    /// Bytes recorded by [`wrote`](Self::wrote) so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Records that `n` more bytes were appended to `file`; each time a
    /// chunk fills, starts writing it and waits for the one before it. An
    /// error is a write that failed on the disk (the file is not durable);
    /// a system that does not support the calls is not an error.
    pub fn wrote(&mut self, file: &File, n: usize) -> io::Result<()> {
        self.written += n as u64;
        while self.enabled && self.written - self.started >= Self::CHUNK {
            let start = self.started;
            self.started += Self::CHUNK;
            let previous = start.checked_sub(Self::CHUNK);
            match sys::write_back(file, start, Self::CHUNK, previous) {
                Ok(()) => {}
                Err(e) if sys::is_unsupported(&e) => self.enabled = false,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;

    /// Starts writing `len` bytes at `start`; then waits for the `len`
    /// bytes at `previous` to be on disk and drops them from the cache.
    pub(super) fn write_back(
        file: &File,
        start: u64,
        len: u64,
        previous: Option<u64>,
    ) -> io::Result<()> {
        sync_file_range(file, start, len, libc::SYNC_FILE_RANGE_WRITE)?;
        if let Some(previous) = previous {
            crate::fault_point::sync("write-back: wait for a written chunk")?;
            sync_file_range(
                file,
                previous,
                len,
                libc::SYNC_FILE_RANGE_WAIT_BEFORE
                    | libc::SYNC_FILE_RANGE_WRITE
                    | libc::SYNC_FILE_RANGE_WAIT_AFTER,
            )?;
            // Advisory: the pages are clean now, so this only frees cache
            // nobody is about to read; whatever it returns changes nothing.
            let (offset, len) = (offset(previous)?, offset(len)?);
            // SAFETY: posix_fadvise only reads the descriptor, which `file` keeps open.
            unsafe {
                libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_DONTNEED)
            };
        }
        Ok(())
    }

    fn offset(value: u64) -> io::Result<libc::off64_t> {
        libc::off64_t::try_from(value).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
    }

    fn sync_file_range(file: &File, start: u64, len: u64, flags: libc::c_uint) -> io::Result<()> {
        let (start, len) = (offset(start)?, offset(len)?);
        loop {
            // SAFETY: sync_file_range only reads the descriptor, which `file` keeps open.
            let ret = unsafe { libc::sync_file_range(file.as_raw_fd(), start, len, flags) };
            if ret == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// The system or the file system does not do this (not a failed write).
    pub(super) fn is_unsupported(e: &io::Error) -> bool {
        matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS | libc::EINVAL | libc::ESPIPE | libc::EOPNOTSUPP)
        )
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::fs::File;
    use std::io;

    pub(super) fn write_back(
        _file: &File,
        _start: u64,
        _len: u64,
        _previous: Option<u64>,
    ) -> io::Result<()> {
        Ok(())
    }

    pub(super) fn is_unsupported(_e: &io::Error) -> bool {
        true
    }
}
