//! `FsBackend`: opening a root, and the content and metadata operations.

use std::fs::{DirBuilder, File};
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use imgstore_backend::{
    Batch, BlobHasher, BlobInfo, BlobReader, Error, RecordStore, Result, StoreBackend, StreamError,
    Subject, validate_bucket, validate_metadata_key, validate_record_key,
};
use imgstore_digest::{Algorithm, Digest, Digester};

use crate::atomic::{self, TEMP_PREFIX, TempFile};
use crate::lock::RootLock;
use crate::records::Records;
use crate::{fault, sys};

/// Where content lives, relative to the root (moby's layout).
pub(crate) const CONTENT_DIR: &str = "content/sha256";
/// Where metadata lives, relative to the root (moby's layout).
pub(crate) const METADATA_DIR: &str = "metadata/sha256";
/// Where records live, relative to the root.
pub(crate) const RECORDS_DIR: &str = "records";

/// How [`FsBackend::open_with`] opens a root.
///
/// Build it with struct update syntax so that fields added later keep your
/// code compiling: `FsOptions { lock_timeout, ..FsOptions::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsOptions {
    /// How long to wait for a lock another `FsBackend` of the root holds
    /// (in this process or another): the root's, while that one cleans
    /// leftovers at open, or the record log's, while it appends a batch or
    /// compacts. Then `FailedPrecondition`. Default 10 s.
    pub lock_timeout: Duration,
}

impl Default for FsOptions {
    fn default() -> FsOptions {
        FsOptions {
            lock_timeout: Duration::from_secs(10),
        }
    }
}

/// A content store, metadata and records in a directory, in moby's
/// `image/fs.go` layout (see the [crate docs](crate)).
///
/// `Send + Sync`: share it between threads behind an `Arc`. Content and
/// metadata reads take no lock at all; record reads share a read lock (and
/// catch up with other backends of the root first: see the [crate docs](crate)).
#[derive(Debug)]
pub struct FsBackend {
    root: PathBuf,
    content: File,
    metadata: File,
    /// Boxed: its state is large, and backends are held by value in enums.
    records: Box<Records>,
    /// True when a deferred write (`set_deferred`, `write_blob_deferred`)
    /// may not be durable yet: the next record batch syncs the filesystem
    /// first. A mutex, not an atomic: a batch must wait for a sync another
    /// thread is making, not go ahead because the flag is already clear.
    deferred: Mutex<bool>,
    _lock: RootLock,
}

/// The error for a path that must be a directory and is not.
fn not_a_directory(path: &Path) -> Error {
    Error::FailedPrecondition {
        subject: Subject::Store(path.display().to_string()),
        reason: "is not a directory: failed to create storage backend".into(),
    }
}

/// Creates `path` (mode 0700) if missing; refuses anything but a directory.
fn ensure_dir(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        // A symlink to a directory is accepted (a relocated /var/lib/docker).
        Ok(meta) if meta.file_type().is_symlink() && path.is_dir() => return Ok(()),
        Ok(_) => return Err(not_a_directory(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Error::io(
                "stat",
                Subject::Store(path.display().to_string()),
                e,
            ));
        }
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotADirectory | io::ErrorKind::AlreadyExists => not_a_directory(path),
            _ => Error::io(
                "create directory",
                Subject::Store(path.display().to_string()),
                e,
            ),
        })?;
    // Make the new entry durable in its parent.
    if let Some(parent) = path.parent()
        && let Ok(dir) = File::open(parent)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Removes `.tmp-*` leftovers of interrupted writes from `dir`; adds how
/// many files and bytes went to `removed`.
fn remove_temp_files(dir: &Path, removed: &mut (usize, u64)) -> Result<()> {
    let subject = || Subject::Store(dir.display().to_string());
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", subject(), e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", subject(), e))?;
        let is_temp = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(TEMP_PREFIX));
        if is_temp && entry.file_type().is_ok_and(|t| t.is_file()) {
            let size = entry.metadata().map_or(0, |m| m.len());
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    removed.0 += 1;
                    removed.1 += size;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove leftover", subject(), e)),
            }
        }
    }
    Ok(())
}

fn open_dir(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::io("open", Subject::Store(path.display().to_string()), e))
}

/// The encoded part of a digest this backend can hold: only sha256 is
/// stored, any other algorithm is simply absent.
fn sha256_hex(digest: &Digest) -> Option<&str> {
    (digest.algorithm() == Algorithm::Sha256).then(|| digest.encoded())
}

fn content_io(operation: &'static str, digest: &Digest, e: io::Error) -> Error {
    Error::io(operation, Subject::Content(digest.clone()), e)
}

fn metadata_subject(digest: &Digest, key: &str) -> Subject {
    Subject::Metadata {
        digest: digest.clone(),
        key: key.to_owned(),
    }
}

/// An `io::Error` from a caller's reader, unwrapped back into the backend
/// error it carries (e.g. corruption found while copying from another store).
fn input_error(e: io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        if let Some(inner) = e.into_inner() {
            match inner.downcast::<Error>() {
                Ok(error) => return *error,
                Err(other) => {
                    return Error::io(
                        "read the input of",
                        Subject::Store("write_blob".into()),
                        io::Error::other(other),
                    );
                }
            }
        }
        return Error::invalid_argument("write_blob", "unreadable input");
    }
    Error::io("read the input of", Subject::Store("write_blob".into()), e)
}

impl FsBackend {
    /// Opens the store in `root` with [`FsOptions::default`] (see
    /// [`open_with`](Self::open_with)).
    pub fn open(root: impl AsRef<Path>) -> Result<FsBackend> {
        FsBackend::open_with(root, FsOptions::default())
    }

    /// Opens the store in `root`, creating `root`, `content/sha256`,
    /// `metadata/sha256` and `records` (mode 0700) as needed.
    ///
    /// Any number of backends may have one root open at once, in this
    /// process and others: each sees the others' record batches at its next
    /// read (see [`RecordStore`]). Open costs the same whatever the number
    /// of blobs: it lists no directory (`.tmp-*` leftovers of interrupted
    /// writes are removed by [`remove_leftovers`](Self::remove_leftovers)),
    /// and reads the record snapshot's index (see `records.rs`). A regular file where one of the directories
    /// should be is `FailedPrecondition` naming it; a lock still held after
    /// `options.lock_timeout` (an older version cleaning on open, or a writer of the record
    /// log) is `FailedPrecondition` naming the holder's pid.
    pub fn open_with(root: impl AsRef<Path>, options: FsOptions) -> Result<FsBackend> {
        let root = root.as_ref().to_path_buf();
        ensure_dir(&root)?;
        for dir in [
            "content",
            CONTENT_DIR,
            "metadata",
            METADATA_DIR,
            RECORDS_DIR,
        ] {
            ensure_dir(&root.join(dir))?;
        }
        let content_path = root.join(CONTENT_DIR);
        let metadata_path = root.join(METADATA_DIR);
        let lock = RootLock::acquire(&root, options.lock_timeout)?;
        let records = Box::new(Records::open(
            &root.join(RECORDS_DIR),
            options.lock_timeout,
        )?);
        Ok(FsBackend {
            content: open_dir(&content_path)?,
            metadata: open_dir(&metadata_path)?,
            root,
            records,
            deferred: Mutex::new(false),
            _lock: lock,
        })
    }

    /// Removes the `.tmp-*` files interrupted writes left in the content
    /// and metadata directories; returns how many files and bytes went.
    /// O(blobs): it lists every directory. Only while no write to this root
    /// is in progress, in any process (a write's temporary file would go):
    /// the facade's gc calls it under the store's change lock.
    pub fn remove_leftovers(&self) -> Result<(usize, u64)> {
        let mut removed = (0, 0);
        remove_temp_files(&self.root.join(CONTENT_DIR), &mut removed)?;
        let metadata_path = self.root.join(METADATA_DIR);
        let entries = std::fs::read_dir(&metadata_path).map_err(|e| {
            Error::io(
                "list",
                Subject::Store(metadata_path.display().to_string()),
                e,
            )
        })?;
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_temp_files(&entry.path(), &mut removed)?;
            }
        }
        Ok(removed)
    }

    /// The root directory this backend was opened on.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Records that a deferred write happened: the next batch syncs first.
    fn defer(&self) {
        *self.deferred.lock().unwrap_or_else(PoisonError::into_inner) = true;
    }

    /// Makes every deferred write of this backend
    /// ([`set_deferred`](StoreBackend::set_deferred),
    /// [`write_blob_deferred`](StoreBackend::write_blob_deferred)) durable,
    /// if any is pending: one `syncfs(2)` of the store's filesystem, which
    /// [`apply`](RecordStore::apply) calls before every batch. Chosen over
    /// an fsync of each file and then of each directory once by measuring
    /// the load of 1000 images (see ARCHITECTURE.md, "Durability of an
    /// import"). A failed sync leaves the writes pending.
    pub fn sync_deferred(&self) -> Result<()> {
        let mut pending = self.deferred.lock().unwrap_or_else(PoisonError::into_inner);
        if *pending {
            fault::sync("fs: syncfs before a record batch")
                .and_then(|()| sys::syncfs(&self.content))
                .map_err(|e| {
                    Error::io(
                        "sync the deferred writes of",
                        Subject::Store(self.root.display().to_string()),
                        e,
                    )
                })?;
            *pending = false;
        }
        Ok(())
    }

    /// `set`, durable now or (`deferred`) by the next batch.
    fn store(&self, data: &[u8], deferred: bool) -> Result<Digest> {
        if data.is_empty() {
            return Err(Error::invalid_argument("data", "invalid empty data"));
        }
        let digest = Algorithm::Sha256.from_bytes(data);
        let hex = digest.encoded();
        // Written once: present and verified content is not rewritten;
        // corrupted content is replaced. Present content may be another
        // process's deferred write, not durable yet: synced here, or by
        // this backend's next batch.
        if let Ok(Some(_)) = self.read_verified(&digest, hex) {
            if deferred {
                self.defer();
            } else {
                fault::sync("fs: fsync content already stored")
                    .and_then(|()| sys::open_read(&self.content, hex)?.sync_all())
                    .map_err(|e| content_io("fsync", &digest, e))?;
            }
            return Ok(digest);
        }
        let write = || -> io::Result<()> {
            let mut temp = TempFile::create(&self.content)?;
            temp.write_all(data)?;
            if deferred {
                temp.commit_deferred(hex)
            } else {
                temp.commit(hex)
            }
        };
        write().map_err(|e| content_io("failed to write digest data for", &digest, e))?;
        // Marked once written: a batch that clears the mark syncs after it.
        if deferred {
            self.defer();
        }
        Ok(digest)
    }

    /// `write_blob`, durable now or (`deferred`) by the next batch.
    fn stream_blob(
        &self,
        expected: Option<&Digest>,
        reader: &mut dyn Read,
        deferred: bool,
    ) -> Result<BlobInfo> {
        let mut hasher = BlobHasher::new(expected);
        let mut temp = TempFile::create(&self.content).map_err(|e| {
            Error::io(
                "create a temporary file in",
                Subject::Store(CONTENT_DIR.into()),
                e,
            )
        })?;
        hasher
            .stream(reader, &mut |bytes| temp.write_all(bytes))
            .map_err(|e| match e {
                StreamError::Read(e) => input_error(e),
                StreamError::Write(e) => Error::io(
                    "write a temporary file in",
                    Subject::Store(CONTENT_DIR.into()),
                    e,
                ),
            })?;
        let info = hasher.finish(expected)?;
        let committed = if deferred {
            temp.commit_deferred(info.digest.encoded())
        } else {
            temp.commit(info.digest.encoded())
        };
        committed.map_err(|e| content_io("failed to write digest data for", &info.digest, e))?;
        if deferred {
            self.defer();
        }
        Ok(info)
    }

    /// Whether a regular file holds `hex`'s content (and its size).
    fn content_stat(&self, digest: &Digest, hex: &str) -> Result<Option<u64>> {
        match sys::stat(&self.content, hex) {
            Ok(Some(stat)) if stat.is_file => Ok(Some(stat.size)),
            Ok(_) => Ok(None),
            Err(e) => Err(content_io("stat", digest, e)),
        }
    }

    /// `NotFound` for content that is not stored.
    fn require_content<'d>(&self, digest: &'d Digest) -> Result<&'d str> {
        let Some(hex) = sha256_hex(digest) else {
            return Err(Error::content_not_found(digest));
        };
        match self.content_stat(digest, hex)? {
            Some(_) => Ok(hex),
            None => Err(Error::content_not_found(digest)),
        }
    }

    /// Reads and verifies stored content; `None` when absent.
    fn read_verified(&self, digest: &Digest, hex: &str) -> Result<Option<Vec<u8>>> {
        let file = match sys::open_read(&self.content, hex) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(content_io("open", digest, e)),
        };
        let data =
            sys::read_regular(&file, 16 * 1024).map_err(|e| content_io("read", digest, e))?;
        let actual = Algorithm::Sha256.from_bytes(&data);
        if actual != *digest {
            return Err(Error::DataCorruption {
                digest: digest.clone(),
                actual,
            });
        }
        Ok(Some(data))
    }

    /// The metadata directory of `hex`, created (and made durable) if
    /// missing. A symlink in its place is not followed: it is replaced by
    /// a directory, as `set` replaces a symlinked content file.
    fn metadata_dir(&self, digest: &Digest, hex: &str) -> Result<File> {
        let mut created = sys::mkdir(&self.metadata, hex)
            .map_err(|e| content_io("create metadata directory of", digest, e))?;
        let dir = match sys::open_dir(&self.metadata, hex) {
            Err(_) if matches!(sys::stat(&self.metadata, hex), Ok(Some(stat)) if stat.is_symlink) =>
            {
                sys::unlink(&self.metadata, hex).map_err(|e| {
                    content_io(
                        "remove the symlink in place of the metadata directory of",
                        digest,
                        e,
                    )
                })?;
                created = sys::mkdir(&self.metadata, hex)
                    .map_err(|e| content_io("create metadata directory of", digest, e))?;
                sys::open_dir(&self.metadata, hex)
            }
            opened => opened,
        };
        if created {
            fault::sync("fs: fsync metadata directory")
                .and_then(|()| self.metadata.sync_all())
                .map_err(|e| content_io("fsync metadata directory of", digest, e))?;
        }
        dir.map_err(|e| content_io("open metadata directory of", digest, e))
    }

    /// True when the metadata directory of `hex` is a real directory (not
    /// a symlink, which is not followed).
    fn metadata_dir_is_real(&self, hex: &str) -> bool {
        matches!(sys::stat(&self.metadata, hex), Ok(Some(stat)) if stat.is_dir)
    }
}

impl StoreBackend for FsBackend {
    fn walk(&self, visit: &mut dyn FnMut(&Digest) -> Result<()>) -> Result<()> {
        let mut text = *b"sha256:0000000000000000000000000000000000000000000000000000000000000000";
        let walked = sys::for_each_entry(&self.content, |name, kind| {
            // Temp files, moby's stray names and anything not a digest are skipped.
            if !is_sha256_hex(name) {
                return Ok(());
            }
            let hex = std::str::from_utf8(name).unwrap_or_default();
            let is_file = match kind {
                sys::EntryType::File => true,
                sys::EntryType::Other => false,
                sys::EntryType::Unknown => {
                    matches!(sys::stat(&self.content, hex), Ok(Some(s)) if s.is_file)
                }
            };
            if !is_file {
                return Ok(());
            }
            text[7..].copy_from_slice(name);
            match std::str::from_utf8(&text)
                .ok()
                .and_then(|t| Digest::parse(t).ok())
            {
                Some(digest) => visit(&digest),
                None => Ok(()),
            }
        });
        match walked {
            Ok(result) => result,
            Err(e) => Err(Error::io(
                "list",
                Subject::Store(self.root.join(CONTENT_DIR).display().to_string()),
                e,
            )),
        }
    }

    fn get(&self, digest: &Digest) -> Result<Vec<u8>> {
        let Some(hex) = sha256_hex(digest) else {
            return Err(Error::content_not_found(digest));
        };
        self.read_verified(digest, hex)?
            .ok_or_else(|| Error::content_not_found(digest))
    }

    fn set(&self, data: &[u8]) -> Result<Digest> {
        self.store(data, false)
    }

    fn delete(&self, digest: &Digest) -> Result<()> {
        let hex = self.require_content(digest)?;
        // Metadata first, as moby: a crash in between leaves content without
        // metadata, never metadata that a later `set` would bring back.
        let metadata = self.root.join(METADATA_DIR).join(hex);
        match std::fs::remove_dir_all(&metadata) {
            Ok(()) => fault::sync("fs: fsync metadata directory after delete")
                .and_then(|()| self.metadata.sync_all())
                .map_err(|e| content_io("fsync metadata directory of", digest, e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(content_io("remove metadata of", digest, e)),
        }
        match sys::unlink(&self.content, hex) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::content_not_found(digest));
            }
            Err(e) => return Err(content_io("remove", digest, e)),
        }
        fault::sync("fs: fsync content directory after delete")
            .and_then(|()| self.content.sync_all())
            .map_err(|e| content_io("fsync directory of", digest, e))
    }

    fn set_metadata(&self, digest: &Digest, key: &str, value: &[u8]) -> Result<()> {
        validate_metadata_key(key)?;
        let hex = self.require_content(digest)?;
        let dir = self.metadata_dir(digest, hex)?;
        atomic::write_file(&dir, key, value)
            .map_err(|e| Error::io("write", metadata_subject(digest, key), e))?;
        // A delete that ran between the check above and the write would leave
        // this key without content; undo it so metadata never outlives content.
        if self.content_stat(digest, hex)?.is_none() {
            let _ = std::fs::remove_dir_all(self.root.join(METADATA_DIR).join(hex));
            return Err(Error::content_not_found(digest));
        }
        Ok(())
    }

    fn get_metadata(&self, digest: &Digest, key: &str) -> Result<Vec<u8>> {
        validate_metadata_key(key)?;
        let Some(hex) = sha256_hex(digest) else {
            return Err(Error::content_not_found(digest));
        };
        let mut name = [0u8; 64 + 1 + 128];
        name[..64].copy_from_slice(hex.as_bytes());
        name[64] = b'/';
        name[65..65 + key.len()].copy_from_slice(key.as_bytes());
        let name = std::str::from_utf8(&name[..65 + key.len()]).unwrap_or_default();
        // Metadata exists only beside content (set_metadata checks, delete
        // removes metadata first), so a hit needs no second look at the
        // content; only at the directory, which must not be a symlink
        // (the open follows one there, in the path's middle).
        let opened = sys::open_read(&self.metadata, name).and_then(|file| {
            if self.metadata_dir_is_real(hex) {
                Ok(file)
            } else {
                Err(sys::not_regular("a symlinked metadata directory"))
            }
        });
        match opened {
            Ok(file) => sys::read_regular(&file, 256)
                .map_err(|e| Error::io("read", metadata_subject(digest, key), e)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                self.require_content(digest)?;
                Err(Error::NotFound {
                    subject: metadata_subject(digest, key),
                })
            }
            Err(e) => Err(Error::io("open", metadata_subject(digest, key), e)),
        }
    }

    fn delete_metadata(&self, digest: &Digest, key: &str) -> Result<()> {
        validate_metadata_key(key)?;
        let Some(hex) = sha256_hex(digest) else {
            return Ok(());
        };
        let dir = match sys::open_dir(&self.metadata, hex) {
            Ok(dir) => dir,
            // Nothing there, or a file or symlink (not followed): no metadata.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(());
            }
            Err(e) => return Err(Error::io("open", metadata_subject(digest, key), e)),
        };
        match sys::unlink(&dir, key) {
            Ok(()) => fault::sync("fs: fsync metadata directory after unlink")
                .and_then(|()| dir.sync_all())
                .map_err(|e| Error::io("fsync", metadata_subject(digest, key), e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", metadata_subject(digest, key), e)),
        }
    }

    fn contains(&self, digest: &Digest) -> Result<bool> {
        match sha256_hex(digest) {
            Some(hex) => Ok(self.content_stat(digest, hex)?.is_some()),
            None => Ok(false),
        }
    }

    fn size(&self, digest: &Digest) -> Result<u64> {
        let Some(hex) = sha256_hex(digest) else {
            return Err(Error::content_not_found(digest));
        };
        self.content_stat(digest, hex)?
            .ok_or_else(|| Error::content_not_found(digest))
    }

    fn open_blob(&self, digest: &Digest) -> Result<BlobReader> {
        let Some(hex) = sha256_hex(digest) else {
            return Err(Error::content_not_found(digest));
        };
        let file = match sys::open_read(&self.content, hex) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::content_not_found(digest));
            }
            Err(e) => return Err(content_io("open", digest, e)),
        };
        Ok(Box::new(VerifyingReader {
            file,
            digester: Algorithm::Sha256.digester(),
            expected: digest.clone(),
            failed: None,
        }))
    }

    fn write_blob(&self, expected: Option<&Digest>, reader: &mut dyn Read) -> Result<BlobInfo> {
        self.stream_blob(expected, reader, false)
    }

    /// Renames the file into place without an fsync; the next record
    /// batch of this backend syncs the filesystem first (`syncfs(2)`).
    fn set_deferred(&self, data: &[u8]) -> Result<Digest> {
        self.store(data, true)
    }

    /// As [`set_deferred`](Self::set_deferred), streamed.
    fn write_blob_deferred(
        &self,
        expected: Option<&Digest>,
        reader: &mut dyn Read,
    ) -> Result<BlobInfo> {
        self.stream_blob(expected, reader, true)
    }
}

impl RecordStore for FsBackend {
    fn get_record(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        validate_bucket(bucket)?;
        validate_record_key(key)?;
        self.records.get(bucket, key)
    }

    fn scan_records(
        &self,
        bucket: &str,
        prefix: &str,
        visit: &mut dyn FnMut(&str, &[u8]) -> Result<()>,
    ) -> Result<()> {
        validate_bucket(bucket)?;
        for (key, value) in self.records.scan(bucket, prefix, usize::MAX)? {
            visit(&key, &value)?;
        }
        Ok(())
    }

    /// Syncs the deferred writes first (if any), so the batch's records
    /// never become durable before the blobs they name.
    fn apply(&self, batch: &Batch) -> Result<()> {
        self.sync_deferred()?;
        self.records.apply(batch)
    }

    fn first_records(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        validate_bucket(bucket)?;
        self.records.scan(bucket, prefix, limit)
    }

    /// The record log's generation and length folded into one number: any
    /// batch appended or compaction made by any backend of the root
    /// changes it.
    fn change_counter(&self) -> Result<u64> {
        self.records.change_counter()
    }
}

/// True when `name` is a sha256 encoded part: 64 lower-case hex characters.
fn is_sha256_hex(name: &[u8]) -> bool {
    name.len() == 64 && name.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// `open_blob`'s reader: hashes what it yields and fails at the end of the
/// stream if the bytes do not hash to the digest asked for.
struct VerifyingReader {
    file: File,
    digester: Digester,
    expected: Digest,
    /// Set once the end was reached with a mismatch; repeated on every read.
    failed: Option<Digest>,
}

impl Read for VerifyingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(actual) = &self.failed {
            return Err(Error::DataCorruption {
                digest: self.expected.clone(),
                actual: actual.clone(),
            }
            .into());
        }
        let n = self.file.read(buf)?;
        if n > 0 {
            self.digester.update(&buf[..n]);
            return Ok(n);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let actual = self.digester.clone().finish();
        if actual != self.expected {
            self.failed = Some(actual.clone());
            return Err(Error::DataCorruption {
                digest: self.expected.clone(),
                actual,
            }
            .into());
        }
        Ok(0)
    }
}
