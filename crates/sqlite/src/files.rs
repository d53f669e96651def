//! Blobs above the inline limit, as files beside the database:
//! `<db>.blobs/sha256/<hex>` for content, `<db>.blobs/tmp/` for writes in
//! progress.
//!
//! A content file is made durable (temp file, fsync, rename, fsync of the
//! directory) inside the write transaction that then inserts its row, so it
//! exists on disk before any committed row names it. Every writer holds an
//! `flock` on its temp file for as long as it uses it; cleaning skips locked
//! temp files, so it never removes another process's write in progress, and a
//! crashed writer's lock dies with it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use imgstore_backend::WriteBack;
use imgstore_digest::Digest;

/// The directories of one database's blob files.
#[derive(Debug)]
pub(crate) struct BlobDir {
    root: PathBuf,
    content: PathBuf,
    tmp: PathBuf,
}

impl BlobDir {
    /// The blob directory of the database at `db`: `<db>.blobs`.
    pub(crate) fn beside(db: &Path) -> BlobDir {
        let mut root = db.as_os_str().to_owned();
        root.push(".blobs");
        let root = PathBuf::from(root);
        BlobDir {
            content: root.join("sha256"),
            tmp: root.join("tmp"),
            root,
        }
    }

    /// The `<db>.blobs` directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of content files, `<db>.blobs/sha256`.
    pub(crate) fn content_dir(&self) -> &Path {
        &self.content
    }

    /// The directory of temp files, `<db>.blobs/tmp`.
    #[cfg(test)]
    pub(crate) fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Creates the directories (mode 0700) and syncs each parent that gained one.
    pub(crate) fn create(&self) -> io::Result<()> {
        for dir in [&self.root, &self.content, &self.tmp] {
            if dir.is_dir() {
                continue;
            }
            match fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => continue,
                Err(e) => return Err(e),
            }
            if let Some(parent) = dir.parent() {
                sync_dir(if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                })?;
            }
        }
        Ok(())
    }

    /// Where the content file of `digest` lives.
    pub(crate) fn path_of(&self, digest: &Digest) -> PathBuf {
        self.content.join(digest.encoded())
    }

    /// A new, empty, locked temp file in `tmp/`.
    pub(crate) fn new_temp(&self) -> io::Result<TempBlob> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        loop {
            let name = format!(
                ".tmp-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = self.tmp.join(name);
            let file = match OpenOptions::new()
                .write(true)
                .read(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => file,
                // A leftover of an earlier process with our pid: take the next name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            if !try_lock(&file)? {
                continue;
            }
            // Between create and flock, a cleaner may have taken the lock and
            // unlinked the file: then the path is gone or names another file.
            match fs::metadata(&path) {
                Ok(on_disk) if on_disk.ino() == file.metadata()?.ino() => {
                    return Ok(TempBlob {
                        file,
                        path,
                        write_back: WriteBack::new(),
                        persisted: false,
                    });
                }
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Removes temp files that no live writer holds; returns (files, bytes).
    pub(crate) fn clean_tmp(&self) -> io::Result<(usize, u64)> {
        let mut removed = (0, 0);
        for entry in read_dir_if_exists(&self.tmp)? {
            let entry = entry?;
            let path = entry.path();
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if !file.metadata()?.is_file() || !try_lock(&file)? {
                continue;
            }
            let bytes = file.metadata()?.len();
            match fs::remove_file(&path) {
                Ok(()) => {
                    removed.0 += 1;
                    removed.1 += bytes;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// The content files, as (hex name, size); names that are not 64 lower-case
    /// hex digits are skipped.
    pub(crate) fn content_files(&self) -> io::Result<Vec<(String, u64)>> {
        let mut files = Vec::new();
        for entry in read_dir_if_exists(&self.content)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.len() != 64
                || !name
                    .bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
            {
                continue;
            }
            let metadata = entry.metadata()?;
            if metadata.is_file() {
                files.push((name, metadata.len()));
            }
        }
        Ok(files)
    }
}

fn read_dir_if_exists(
    dir: &Path,
) -> io::Result<Box<dyn Iterator<Item = io::Result<fs::DirEntry>>>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(Box::new(entries)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Box::new(std::iter::empty())),
        Err(e) => Err(e),
    }
}

/// Takes an exclusive `flock` without waiting; false when another holds it.
fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock only reads the descriptor, which `file` keeps open.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(e)
    }
}

/// fsync of a directory, so a rename or unlink in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A temp file being written: removed on drop unless persisted. What is
/// written is handed to the disk as the file grows ([`WriteBack`]), so
/// [`sync`](TempBlob::sync) has little left to wait for.
#[derive(Debug)]
pub(crate) struct TempBlob {
    file: File,
    path: PathBuf,
    write_back: WriteBack,
    persisted: bool,
}

impl TempBlob {
    /// Flushes the bytes to disk.
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    /// Renames the (synced) file to `dest`. The caller syncs `dest`'s directory.
    pub(crate) fn rename_to(&mut self, dest: &Path) -> io::Result<()> {
        fs::rename(&self.path, dest)?;
        self.persisted = true;
        Ok(())
    }
}

impl Write for TempBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.write_back.wrote(&self.file, n)?;
        Ok(n)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)?;
        self.write_back.wrote(&self.file, buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if !self.persisted {
            // Best effort: what stays behind is removed by the next clean.
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_dir_sits_beside_the_database() {
        let dir = BlobDir::beside(Path::new("/var/lib/imgstore/store.db"));
        assert_eq!(dir.root(), Path::new("/var/lib/imgstore/store.db.blobs"));
        assert_eq!(
            dir.content_dir(),
            Path::new("/var/lib/imgstore/store.db.blobs/sha256")
        );
    }

    #[test]
    fn locked_temp_files_survive_cleaning_and_dropped_ones_vanish() -> io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = BlobDir::beside(&tmp.path().join("db"));
        dir.create()?;
        let mut held = dir.new_temp()?;
        held.write_all(b"in progress")?;
        let leftover = dir.tmp_dir().join(".tmp-leftover");
        fs::write(&leftover, b"crashed writer")?;
        assert_eq!(dir.clean_tmp()?, (1, 14));
        assert!(held.path.exists());
        assert!(!leftover.exists());
        let path = held.path.clone();
        drop(held);
        assert!(!path.exists());
        Ok(())
    }
}
