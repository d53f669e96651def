//! Records under `<root>/records/`: an append-only log of checksummed batch
//! frames over a snapshot, replayed on open into memory.
//!
//! Files (all integers little-endian):
//!
//! - `snapshot`: `"IMGRSNP1"`, generation `u64`, payload length `u64`,
//!   sha256 of the payload (32 bytes), payload. Written whole with
//!   temp + fsync + rename, so it is never torn.
//! - `log`: `"IMGRLOG1"`, generation `u64`, then frames: payload length
//!   `u32`, sha256 of the payload (32 bytes), payload. One frame per batch,
//!   fsynced before the batch returns.
//! - a payload is a sequence of ops: tag `u8` (1 put, 2 delete), bucket
//!   length `u8`, bucket, key length `u32`, key, and for a put value length
//!   `u32`, value. Preconditions are checked before a frame is written and
//!   are not logged.
//!
//! The log applies on top of the snapshot of the same generation. When the
//! log outgrows twice the live data (and 256 KiB), it is compacted: a new
//! log (generation + 1, empty) and a new snapshot are written as temp files,
//! the snapshot is renamed into place (the commit point), then the log. A
//! log older than the snapshot is therefore already folded in and is
//! discarded on open. A frame torn by a crash at the end of the log (never
//! acknowledged) is dropped and the log truncated; damage before the end
//! makes open fail rather than silently lose acknowledged batches.
//!
//! Keys never become paths: they are bytes inside these two files.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use imgstore_backend::{Batch, Error, Op, Precondition, Result, Subject};
use imgstore_digest::Algorithm;

use crate::atomic::{self, TempFile};
use crate::{fault, sys};

const LOG: &str = "log";
const SNAPSHOT: &str = "snapshot";
const LOG_MAGIC: &[u8; 8] = b"IMGRLOG1";
const SNAPSHOT_MAGIC: &[u8; 8] = b"IMGRSNP1";
const LOG_HEADER: u64 = 16;
const FRAME_HEADER: u64 = 4 + 32;
const TAG_PUT: u8 = 1;
const TAG_DELETE: u8 = 2;
/// Logs smaller than this are never compacted.
const COMPACT_MIN: u64 = 256 * 1024;

type Buckets = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

#[derive(Debug, Default)]
struct State {
    buckets: Buckets,
    /// Encoded size of every live record: what a snapshot would hold.
    live_bytes: u64,
}

#[derive(Debug)]
struct Writer {
    /// `None` after a compaction committed its snapshot but failed to put the
    /// new log in place: the old log must not be appended to any more.
    log: Option<File>,
    generation: u64,
    log_len: u64,
}

/// The record store of one root.
#[derive(Debug)]
pub(crate) struct Records {
    path: PathBuf,
    dir: File,
    state: RwLock<State>,
    /// Serialises writers: precondition checks, the log append and the
    /// in-memory update happen under it; readers only wait for the update.
    writer: Mutex<Writer>,
}

fn store_subject(path: &Path) -> Subject {
    Subject::Store(path.display().to_string())
}

fn corrupt(path: &Path, reason: String) -> Error {
    Error::FailedPrecondition {
        subject: store_subject(path),
        reason: format!("the record store is damaged: {reason}; move it aside to open the store"),
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = Algorithm::Sha256.from_bytes(bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(&digest.hash_bytes());
    out
}

fn op_size(bucket: &str, key: &str, value: Option<&[u8]>) -> u64 {
    (1 + 1 + bucket.len() + 4 + key.len() + value.map_or(0, |v| 4 + v.len())) as u64
}

fn encode_op(out: &mut Vec<u8>, tag: u8, bucket: &str, key: &str, value: Option<&[u8]>) {
    out.push(tag);
    // Validated bucket names are at most 64 bytes, keys at most 4096.
    out.push(bucket.len() as u8);
    out.extend_from_slice(bucket.as_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    if let Some(value) = value {
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
}

/// One decoded write.
enum Decoded<'a> {
    Put(&'a str, &'a str, &'a [u8]),
    Delete(&'a str, &'a str),
}

struct Decoder<'a> {
    bytes: &'a [u8],
}

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<usize> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn str(&mut self, n: usize) -> Option<&'a str> {
        std::str::from_utf8(self.take(n)?).ok()
    }

    fn next_op(&mut self) -> Option<Option<Decoded<'a>>> {
        if self.bytes.is_empty() {
            return Some(None);
        }
        let tag = self.take(1)?[0];
        let bucket_len = usize::from(self.take(1)?[0]);
        let bucket = self.str(bucket_len)?;
        let key_len = self.u32()?;
        let key = self.str(key_len)?;
        match tag {
            TAG_PUT => {
                let value_len = self.u32()?;
                Some(Some(Decoded::Put(bucket, key, self.take(value_len)?)))
            }
            TAG_DELETE => Some(Some(Decoded::Delete(bucket, key))),
            _ => None,
        }
    }
}

impl State {
    fn put(&mut self, bucket: &str, key: &str, value: &[u8]) {
        let size = op_size(bucket, key, Some(value));
        let records = self.buckets.entry(bucket.to_owned()).or_default();
        if let Some(old) = records.insert(key.to_owned(), value.to_vec()) {
            self.live_bytes -= op_size(bucket, key, Some(&old));
        }
        self.live_bytes += size;
    }

    fn delete(&mut self, bucket: &str, key: &str) {
        if let Some(records) = self.buckets.get_mut(bucket) {
            if let Some(old) = records.remove(key) {
                self.live_bytes -= op_size(bucket, key, Some(&old));
            }
            if records.is_empty() {
                self.buckets.remove(bucket);
            }
        }
    }

    /// Applies an encoded payload; `None` when it does not decode.
    fn apply_payload(&mut self, payload: &[u8]) -> Option<()> {
        let mut decoder = Decoder { bytes: payload };
        while let Some(op) = decoder.next_op()? {
            match op {
                Decoded::Put(bucket, key, value) => self.put(bucket, key, value),
                Decoded::Delete(bucket, key) => self.delete(bucket, key),
            }
        }
        Some(())
    }

    fn encode_snapshot(&self) -> Vec<u8> {
        let mut payload = Vec::with_capacity(self.live_bytes as usize);
        for (bucket, records) in &self.buckets {
            for (key, value) in records {
                encode_op(&mut payload, TAG_PUT, bucket, key, Some(value));
            }
        }
        payload
    }
}

/// The bytes of the record file `name`, `None` when absent. Anything but a
/// regular file there (a symlink, which is not followed) is an error, not
/// "absent": treating it as absent would start an empty record store.
fn read_file(dir: &File, name: &str) -> io::Result<Option<Vec<u8>>> {
    if let Some(stat) = sys::stat(dir, name)?
        && !stat.is_file
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("records/{name} is not a regular file (symlinks are not followed)"),
        ));
    }
    match sys::open_read(dir, name) {
        Ok(mut file) => {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            Ok(Some(bytes))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn header(magic: &[u8; 8], generation: u64) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend_from_slice(&generation.to_le_bytes());
    out
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Writes an empty log of `generation` in place of the current one.
fn fresh_log(dir: &File, path: &Path, generation: u64) -> io::Result<File> {
    atomic::write_file(dir, LOG, &header(LOG_MAGIC, generation))?;
    open_log(path)
}

fn open_log(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path.join(LOG))
}

impl Records {
    /// Opens (creating) the record store in `path`, replaying snapshot and log.
    pub(crate) fn open(path: &Path) -> Result<Records> {
        let subject = || store_subject(path);
        let dir = File::open(path).map_err(|e| Error::io("open", subject(), e))?;
        let mut state = State::default();
        let read_error = |e: io::Error| match e.kind() {
            io::ErrorKind::InvalidData => corrupt(path, e.to_string()),
            _ => Error::io("read", subject(), e),
        };
        let snapshot = read_file(&dir, SNAPSHOT).map_err(read_error)?;
        let generation = match snapshot {
            None => 0,
            Some(bytes) => {
                if bytes.len() < 56 || &bytes[..8] != SNAPSHOT_MAGIC {
                    return Err(corrupt(path, "the snapshot has no valid header".into()));
                }
                let generation = u64_at(&bytes, 8);
                let len = u64_at(&bytes, 16);
                let payload = &bytes[56..];
                if payload.len() as u64 != len || sha256(payload) != bytes[24..56] {
                    return Err(corrupt(path, "the snapshot fails its checksum".into()));
                }
                if state.apply_payload(payload).is_none() {
                    return Err(corrupt(path, "the snapshot does not decode".into()));
                }
                generation
            }
        };
        let log_bytes = read_file(&dir, LOG).map_err(read_error)?;
        let mut log_len = LOG_HEADER;
        let log = match log_bytes {
            // No log, or one that the snapshot already holds: start a new one.
            None => None,
            Some(bytes) if bytes.len() as u64 >= LOG_HEADER && &bytes[..8] == LOG_MAGIC => {
                let log_generation = u64_at(&bytes, 8);
                if log_generation > generation {
                    return Err(corrupt(
                        path,
                        format!(
                            "the log (generation {log_generation}) is newer than the snapshot ({generation})"
                        ),
                    ));
                }
                if log_generation < generation {
                    None
                } else {
                    log_len = replay(path, &bytes, &mut state)?;
                    let file = open_log(path).map_err(|e| Error::io("open", subject(), e))?;
                    if log_len < bytes.len() as u64 {
                        // A frame torn by a crash: it was never acknowledged.
                        file.set_len(log_len)
                            .and_then(|()| file.sync_all())
                            .map_err(|e| Error::io("truncate the torn tail of", subject(), e))?;
                    }
                    Some(file)
                }
            }
            Some(_) => return Err(corrupt(path, "the log has no valid header".into())),
        };
        let log = match log {
            Some(file) => file,
            None => {
                fresh_log(&dir, path, generation).map_err(|e| Error::io("create", subject(), e))?
            }
        };
        Ok(Records {
            path: path.to_path_buf(),
            dir,
            state: RwLock::new(state),
            writer: Mutex::new(Writer {
                log: Some(log),
                generation,
                log_len,
            }),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-updated
        // (updates are plain inserts), so a poisoned lock is still usable.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of one record.
    pub(crate) fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.read().buckets.get(bucket)?.get(key).cloned()
    }

    /// The records of `bucket` under `prefix`, in key order. Copied out, so
    /// that the caller's callback runs without the lock held (it may write).
    pub(crate) fn scan(&self, bucket: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
        let state = self.read();
        let Some(records) = state.buckets.get(bucket) else {
            return Vec::new();
        };
        records
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    /// Checks the preconditions, logs the writes durably, applies them.
    pub(crate) fn apply(&self, batch: &Batch) -> Result<()> {
        batch.validate()?;
        let mut writer = self.lock_writer();
        {
            let state = self.read();
            for op in batch.ops() {
                if let Op::Require {
                    bucket,
                    key,
                    condition,
                } = op
                {
                    check(&state, bucket, key, condition)?;
                }
            }
        }
        let mut payload = Vec::new();
        for op in batch.ops() {
            match op {
                Op::Put { bucket, key, value } => {
                    if u32::try_from(value.len()).is_err() {
                        return Err(Error::invalid_argument(
                            key,
                            "record values are limited to 4 GiB",
                        ));
                    }
                    encode_op(&mut payload, TAG_PUT, bucket, key, Some(value));
                }
                Op::Delete { bucket, key } => {
                    encode_op(&mut payload, TAG_DELETE, bucket, key, None)
                }
                Op::Require { .. } => {}
            }
        }
        if payload.is_empty() {
            return Ok(());
        }
        let frame_len = u32::try_from(payload.len())
            .map_err(|_| Error::invalid_argument("batch", "a batch is limited to 4 GiB"))?;
        let mut frame = Vec::with_capacity(payload.len() + FRAME_HEADER as usize);
        frame.extend_from_slice(&frame_len.to_le_bytes());
        frame.extend_from_slice(&sha256(&payload));
        frame.extend_from_slice(&payload);
        self.append(&mut writer, &frame)?;
        let live_bytes = {
            let mut state = self.write();
            // The payload was built above from validated ops; it decodes.
            let _ = state.apply_payload(&payload);
            state.live_bytes
        };
        if writer.log_len > COMPACT_MIN && writer.log_len > 2 * live_bytes {
            // The batch is durable already; a failed compaction is retried
            // after the next batch and leaves a valid log behind.
            let _ = self.compact(&mut writer);
        }
        Ok(())
    }

    fn append(&self, writer: &mut Writer, frame: &[u8]) -> Result<()> {
        let subject = || store_subject(&self.path);
        if writer.log.is_none() {
            let file = fresh_log(&self.dir, &self.path, writer.generation)
                .map_err(|e| Error::io("create the record log in", subject(), e))?;
            writer.log = Some(file);
            writer.log_len = LOG_HEADER;
        }
        let Some(log) = &writer.log else {
            return Err(Error::io(
                "append to",
                subject(),
                io::Error::other("no record log"),
            ));
        };
        let written = log
            .write_all_at(frame, writer.log_len)
            .and_then(|()| fault::sync("fs: fsync record log"))
            .and_then(|()| log.sync_data());
        match written {
            Ok(()) => {
                writer.log_len += frame.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Cut the partial frame off so later frames do not follow garbage;
                // if even that fails, start a fresh log (via a snapshot) next time.
                if log
                    .set_len(writer.log_len)
                    .and_then(|()| log.sync_all())
                    .is_err()
                {
                    let _ = self.compact(writer);
                }
                Err(Error::io("append to the record log in", subject(), e))
            }
        }
    }

    /// Folds the log into a new snapshot and starts an empty log.
    fn compact(&self, writer: &mut Writer) -> io::Result<()> {
        let generation = writer.generation + 1;
        let payload = self.read().encode_snapshot();
        let mut snapshot = TempFile::create(&self.dir)?;
        let mut head = header(SNAPSHOT_MAGIC, generation);
        head.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        head.extend_from_slice(&sha256(&payload));
        snapshot.write_all(&head)?;
        snapshot.write_all(&payload)?;
        let mut log = TempFile::create(&self.dir)?;
        log.file().write_all(&header(LOG_MAGIC, generation))?;
        log.file().sync_all()?;
        // The commit point: from here the old log is obsolete.
        snapshot.commit(SNAPSHOT)?;
        writer.generation = generation;
        writer.log = None;
        log.commit(LOG)?;
        writer.log = Some(open_log(&self.path)?);
        writer.log_len = LOG_HEADER;
        Ok(())
    }
}

/// Replays the frames of a log into `state`; returns the length of the
/// valid prefix (shorter than the file when the tail is torn).
fn replay(path: &Path, bytes: &[u8], state: &mut State) -> Result<u64> {
    let mut at = LOG_HEADER as usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        // Only the end of the log may be torn (or zero-filled by a crash that
        // extended the file before writing it); a bad frame with data after
        // it means damage to acknowledged batches.
        if rest.len() < FRAME_HEADER as usize {
            return Ok(at as u64);
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let end = FRAME_HEADER as usize + len;
        if rest.len() < end {
            return Ok(at as u64);
        }
        let payload = &rest[FRAME_HEADER as usize..end];
        if sha256(payload) != rest[4..36] {
            // A torn append (even one whose pages reached the disk out of
            // order) is the last frame: nothing valid follows it.
            if !valid_frame_after(bytes, at + 1) {
                return Ok(at as u64);
            }
            return Err(corrupt(
                path,
                format!("a batch frame at offset {at} of the log fails its checksum"),
            ));
        }
        if state.apply_payload(payload).is_none() {
            return Err(corrupt(
                path,
                format!("the batch frame at offset {at} does not decode"),
            ));
        }
        at += end;
    }
    Ok(at as u64)
}

/// True when some offset at or after `from` starts a frame that passes its
/// checksum and decodes: then a bad frame before it is damage, not a torn tail.
fn valid_frame_after(bytes: &[u8], from: usize) -> bool {
    let header = FRAME_HEADER as usize;
    (from..bytes.len().saturating_sub(header)).any(|at| {
        let rest = &bytes[at..];
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        // Cheap tests first: a frame holds at least one op with a known tag.
        if len == 0 || rest.len() < header + len || !matches!(rest[header], TAG_PUT | TAG_DELETE) {
            return false;
        }
        let payload = &rest[header..header + len];
        sha256(payload) == rest[4..36] && State::default().apply_payload(payload).is_some()
    })
}

fn check(state: &State, bucket: &str, key: &str, condition: &Precondition) -> Result<()> {
    let current = state
        .buckets
        .get(bucket)
        .and_then(|records| records.get(key));
    condition.check(bucket, key, current.map(Vec::as_slice))
}
