//! Durable atomic file writes: a `.tmp-` file in the target's directory,
//! written, fsynced, renamed over the target, then the directory fsynced
//! (or, deferred, renamed only: see `FsBackend::set_deferred`).

use std::fs::File;
use std::io::{self, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use imgstore_backend::WriteBack;

use crate::{fault, sys};

/// The prefix of every temporary file; `walk` skips such names and `open`
/// removes leftovers (moby's `ioutils.AtomicWriteFile` uses the same one).
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// A unique temporary name: pid, a per-process nonce and a counter, so
/// neither threads nor processes (nor a leftover of a dead process that had
/// the same pid) collide.
fn temp_name() -> String {
    static NONCE: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nonce = *NONCE.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
            .unwrap_or(0)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{TEMP_PREFIX}{:x}-{:x}-{n:x}",
        std::process::id(),
        nonce & 0xffff_ffff
    )
}

/// A temporary file in a directory, removed on drop unless committed.
pub(crate) struct TempFile<'a> {
    dir: &'a File,
    name: String,
    file: File,
    /// Hands what is written to the disk as it grows (large blobs).
    write_back: WriteBack,
    committed: bool,
}

impl<'a> TempFile<'a> {
    /// Creates a new, empty temporary file in `dir` (mode 0600).
    pub(crate) fn create(dir: &'a File) -> io::Result<TempFile<'a>> {
        let mut attempts = 0;
        loop {
            let name = temp_name();
            match sys::create_new(dir, &name) {
                Ok(file) => {
                    return Ok(TempFile {
                        dir,
                        name,
                        file,
                        write_back: WriteBack::new(),
                        committed: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => attempts += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The open file (what is written through it is not written back early).
    pub(crate) fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Appends `data`; a large file is written back to the disk as it
    /// grows ([`WriteBack`]), so `commit` has little left to wait for.
    pub(crate) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.write_back.wrote(&self.file, data.len())
    }

    /// fsync, rename over `target` (in the same directory), fsync the directory.
    pub(crate) fn commit(mut self, target: &str) -> io::Result<()> {
        fault::sync("fs: fsync temp file")?;
        self.file.sync_all()?;
        fault::rename("fs: rename temp file into place")?;
        sys::rename(self.dir, &self.name, target)?;
        self.committed = true;
        fault::sync("fs: fsync directory after rename")?;
        self.dir.sync_all()
    }

    /// Renames over `target` without an fsync: the bytes and the name are
    /// durable only after a later sync of the filesystem (the backend's
    /// deferred writes, made durable before its next record batch).
    pub(crate) fn commit_deferred(mut self, target: &str) -> io::Result<()> {
        fault::rename("fs: rename temp file into place")?;
        sys::rename(self.dir, &self.name, target)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: a leftover is removed by the next open anyway.
            let _ = sys::unlink(self.dir, &self.name);
        }
    }
}

/// Replaces `dir/target` with `data`, atomically and durably.
pub(crate) fn write_file(dir: &File, target: &str, data: &[u8]) -> io::Result<()> {
    let mut temp = TempFile::create(dir)?;
    temp.write_all(data)?;
    temp.commit(target)
}
