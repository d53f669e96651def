//! Records under `<root>/records/`: an append-only log of checksummed batch
//! frames over a snapshot, loaded on open and followed after: every read
//! first catches up with what other backends of the root (in any process)
//! appended, so nobody reopens to see others' batches.
//!
//! Opening does not decode every record. The snapshot is read whole and
//! its checksum verified (one sequential pass), then indexed: the offset of
//! each record, in the snapshot's order, which is key order (it is written
//! from sorted records; one that is not, or holds a delete, is decoded
//! whole instead and rewritten in order by the next compaction). Only the
//! log is decoded, into an overlay of the values and deletions it made
//! since the snapshot. A read looks in the overlay, then binary-searches
//! the index; a scan merges both in key order; values are copied out of the
//! snapshot's bytes only when returned. The log is kept short beside the
//! snapshot, so replaying it on open stays cheap.
//!
//! Files (all integers little-endian):
//!
//! - `snapshot`: `"IMGRSNP2"`, generation `u64`, payload length `u64`,
//!   CRC-32 (IEEE) of the generation, the length and the payload (`u32`),
//!   payload. Written whole with temp + fsync + rename, so it is never
//!   torn: the checksum is there for damage at rest, read whole on every
//!   open, and a CRC-32 costs a twentieth of a sha256 there. Version 1
//!   (`"IMGRSNP1"`, sha256 of the payload in 32 bytes in place of the
//!   CRC) is still read; the next compaction writes version 2.
//! - `log`: `"IMGRLOG1"`, generation `u64`, then frames: payload length
//!   `u32`, sha256 of the payload (32 bytes), payload. One frame per batch,
//!   fsynced before the batch returns.
//! - a payload is a sequence of ops: tag `u8` (1 put, 2 delete), bucket
//!   length `u8`, bucket, key length `u32`, key, and for a put value length
//!   `u32`, value. Preconditions are checked before a frame is written and
//!   are not logged.
//!
//! The log applies on top of the snapshot of the same generation. When the
//! log outgrows an eighth of the snapshot (and 256 KiB), it is compacted
//! (by a writer after its batch, or by an opener): the snapshot's records
//! merged in order with the overlay make a new snapshot, written with a new
//! log (generation + 1, empty) as temp files,
//! the snapshot is renamed into place (the commit point), then the log. A
//! log older than the snapshot is therefore already folded in and is
//! discarded on open. A frame torn by a crash at the end of the log (never
//! acknowledged) is dropped and the log truncated; damage before the end
//! makes open fail rather than silently lose acknowledged batches.
//!
//! Several backends share the files. A writer holds an exclusive `flock` on
//! `lock` from its catch-up through its append (and any compaction), so
//! appends never interleave and preconditions see every batch before it. A
//! reader takes no lock: it `stat`s the log, and when the inode is the one it
//! follows and the length grew, reads just the new whole frames (a frame
//! still being written is checksummed, so it waits for the next read); a new
//! inode means a compaction (or a repair), and the snapshot and log are read
//! again under a shared `flock`, so never half of a compaction. Only a
//! writer cuts a torn tail: under the exclusive lock nobody can be writing it.
//!
//! Keys never become paths: they are bytes inside these files.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use imgstore_backend::{Batch, Error, Op, Precondition, Result, Subject};
use imgstore_digest::Algorithm;

use crate::atomic::{self, TEMP_PREFIX, TempFile};
use crate::fault;
use crate::lock;
use crate::sys::{self, LockKind};

const LOG: &str = "log";
const SNAPSHOT: &str = "snapshot";
/// The records' own lock file (the root's lock is `<root>/lock`).
const LOCK_FILE: &str = "lock";
const LOG_MAGIC: &[u8; 8] = b"IMGRLOG1";
const SNAPSHOT_MAGIC: &[u8; 8] = b"IMGRSNP2";
/// The snapshot format before version 2 (sha256 of the payload), still read.
const SNAPSHOT_MAGIC_1: &[u8; 8] = b"IMGRSNP1";
/// The header of a version 2 snapshot: magic, generation, payload length,
/// CRC-32.
const SNAPSHOT_HEADER: usize = 8 + 8 + 8 + 4;
/// The header of a version 1 snapshot: magic, generation, payload length,
/// sha256.
const SNAPSHOT_HEADER_1: usize = 8 + 8 + 8 + 32;
const LOG_HEADER: u64 = 16;
const FRAME_HEADER: u64 = 4 + 32;
const TAG_PUT: u8 = 1;
const TAG_DELETE: u8 = 2;
/// Logs smaller than this are never compacted.
const COMPACT_MIN: u64 = 256 * 1024;

/// What the log changed since the snapshot, per bucket and key: a value,
/// or `None` for a record deleted that the snapshot holds.
type Overlay = BTreeMap<String, BTreeMap<String, Option<Vec<u8>>>>;

/// The snapshot's bytes and an index of its records, in key order: reads
/// binary-search it and copy out only the values they return, so opening
/// a store does not decode every record.
#[derive(Debug, Default)]
struct Base {
    /// The snapshot file (or, after a compaction, the payload it wrote).
    bytes: Vec<u8>,
    /// Where the payload starts in `bytes`.
    start: usize,
    /// The offset in `bytes` of every record (a put op), sorted by bucket
    /// then key.
    offsets: Vec<u32>,
    /// Every bucket, sorted, with its records' range in `offsets`.
    buckets: Vec<(String, std::ops::Range<usize>)>,
}

/// What indexing a snapshot's payload found.
enum Indexing {
    /// Its records in order: their offsets, and each bucket's range of them.
    Indexed(Vec<u32>, Vec<(String, std::ops::Range<usize>)>),
    /// It decodes but cannot be indexed (records out of order, a delete, or
    /// more than 4 GiB): it is decoded whole instead.
    Unordered,
    /// It does not decode.
    Undecodable,
}

/// One record of a [`Base`]: its key, its value and its whole encoded op.
struct BaseRecord<'a> {
    key: &'a [u8],
    value: &'a [u8],
    op: &'a [u8],
}

/// One step of the ordered merge of a snapshot's records with the log's
/// changes of one bucket ([`merge`]).
enum Merged<'a> {
    /// A snapshot record the log did not change.
    Base(BaseRecord<'a>),
    /// A record the log wrote (`Some`) or deleted (`None`).
    Changed(&'a str, Option<&'a [u8]>),
}

/// Merges `base` and `overlay` (both in key order) into one key-ordered
/// sequence; on a key both have, the overlay's change wins.
fn merge<'a>(
    base: impl Iterator<Item = BaseRecord<'a>>,
    overlay: impl Iterator<Item = (&'a String, &'a Option<Vec<u8>>)>,
) -> impl Iterator<Item = Merged<'a>> {
    let (mut base, mut overlay) = (base.peekable(), overlay.peekable());
    std::iter::from_fn(move || {
        let from_base = match (base.peek(), overlay.peek()) {
            (None, None) => return None,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(record), Some((key, _))) => {
                if record.key == key.as_bytes() {
                    // Changed by the log: the overlay's entry wins.
                    base.next();
                    false
                } else {
                    record.key < key.as_bytes()
                }
            }
        };
        if from_base {
            base.next().map(Merged::Base)
        } else {
            overlay
                .next()
                .map(|(key, value)| Merged::Changed(key.as_str(), value.as_deref()))
        }
    })
}

fn le_u32(bytes: &[u8], at: usize) -> usize {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
}

impl Base {
    /// Indexes the payload `bytes[start..]`.
    fn index(bytes: &[u8], start: usize) -> Indexing {
        let mut offsets = Vec::new();
        let mut buckets: Vec<(String, std::ops::Range<usize>)> = Vec::new();
        let mut last_key: &[u8] = &[];
        let mut at = start;
        if u32::try_from(bytes.len()).is_err() {
            return Indexing::Unordered;
        }
        let mut decoder = Decoder {
            bytes: &bytes[start..],
        };
        let mut ordered = true;
        loop {
            match decoder.next_op() {
                None => return Indexing::Undecodable,
                Some(None) => break,
                Some(Some(Decoded::Delete(..))) => ordered = false,
                Some(Some(Decoded::Put(bucket, key, _))) => {
                    if !ordered {
                        // Only checked to decode from here on.
                        continue;
                    }
                    ordered = match buckets.last_mut() {
                        Some((last, range)) if last.as_str() == bucket => {
                            range.end += 1;
                            key.as_bytes() > last_key
                        }
                        Some((last, _)) if last.as_str() > bucket => false,
                        _ => {
                            let n = offsets.len();
                            buckets.push((bucket.to_owned(), n..n + 1));
                            true
                        }
                    };
                    last_key = key.as_bytes();
                    // Fits: the whole file is under 4 GiB.
                    offsets.push(at as u32);
                    at = bytes.len() - decoder.bytes.len();
                }
            }
        }
        if !ordered {
            return Indexing::Unordered;
        }
        Indexing::Indexed(offsets, buckets)
    }

    fn payload_len(&self) -> u64 {
        (self.bytes.len() - self.start) as u64
    }

    /// The record at `offsets[i]` (indexed, so it decodes).
    fn record(&self, i: usize) -> BaseRecord<'_> {
        self.record_at(self.offsets[i] as usize)
    }

    /// The record whose op starts at byte `at` (an indexed offset).
    fn record_at(&self, at: usize) -> BaseRecord<'_> {
        let b = &self.bytes;
        let key_at = at + 2 + usize::from(b[at + 1]);
        let key_len = le_u32(b, key_at);
        let value_at = key_at + 4 + key_len;
        let value_len = le_u32(b, value_at);
        let end = value_at + 4 + value_len;
        BaseRecord {
            key: &b[key_at + 4..value_at],
            value: &b[value_at + 4..end],
            op: &b[at..end],
        }
    }

    /// The range in `offsets` of `bucket`'s records.
    fn bucket(&self, bucket: &str) -> std::ops::Range<usize> {
        match self
            .buckets
            .binary_search_by(|(name, _)| name.as_str().cmp(bucket))
        {
            Ok(i) => self.buckets[i].1.clone(),
            Err(_) => 0..0,
        }
    }

    /// The first index in `range` whose key is not below `key`.
    fn lower_bound(&self, range: std::ops::Range<usize>, key: &str) -> usize {
        let start = range.start;
        start
            + self.offsets[range]
                .partition_point(|&at| self.record_at(at as usize).key < key.as_bytes())
    }

    /// The value of `bucket`'s record `key`.
    fn get(&self, bucket: &str, key: &str) -> Option<&[u8]> {
        let range = self.bucket(bucket);
        let end = range.end;
        let i = self.lower_bound(range, key);
        (i < end)
            .then(|| self.record(i))
            .filter(|record| record.key == key.as_bytes())
            .map(|record| record.value)
    }
}

#[derive(Debug, Default)]
struct State {
    /// The snapshot's records, indexed.
    base: Base,
    /// What the log's frames changed on top of `base`.
    overlay: Overlay,
    /// Encoded size of every live record: what a snapshot would hold.
    live_bytes: u64,
    /// The snapshot could not be indexed and was decoded into `overlay`:
    /// the next writer compacts, which writes it in order.
    rewrite: bool,
    /// The snapshot's generation (0 without one).
    generation: u64,
    /// The snapshot the state was loaded from, held open so that its inode
    /// is not reused: a writer compares it with the file on disk.
    snapshot: Option<Pinned>,
    /// The log the state follows; `None` when there is none or the state
    /// must be loaded again (after a failed compaction).
    log: Option<Followed>,
}

#[derive(Debug)]
struct Pinned {
    file: File,
    ino: u64,
}

/// The log a [`State`] has replayed, held open (its inode cannot be reused
/// while it is open, so "same inode" means "same log").
#[derive(Debug)]
struct Followed {
    log: Pinned,
    /// Bytes replayed: the header and every whole frame. The next frame is
    /// appended (or read, when another backend appended it) here.
    applied: u64,
    /// False for a log older than the snapshot (a compaction died between
    /// its two renames): folded in already, never replayed or appended to.
    current: bool,
}

/// What a catch-up may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Only read: leaves a torn tail alone (it may be a frame still being
    /// written) and takes the shared lock to load a log and snapshot pair.
    Read,
    /// The caller holds the exclusive lock: nobody else writes, so a torn
    /// tail is cut off and a missing or obsolete log replaced.
    Write,
}

/// The record store of one root. Any number of `Records` (in this process
/// and others) may follow one directory: each read first catches up with
/// what the others appended (one `stat` when nothing changed), and writers
/// append under an exclusive `flock` on `records/lock`.
#[derive(Debug)]
pub(crate) struct Records {
    path: PathBuf,
    dir: File,
    /// `records/lock`: exclusive while a batch is appended or the log
    /// compacted; shared while a log and snapshot pair is loaded.
    lock: File,
    lock_timeout: Duration,
    state: RwLock<State>,
    /// Serialises this process's writers and catch-ups: a catch-up, the
    /// precondition checks, the append and the in-memory update happen
    /// under it; readers whose state is current do not wait for it.
    writer: Mutex<()>,
}

/// Holds the exclusive lock on `records/lock`; released when dropped.
struct ExclusiveLock<'a>(&'a File);

impl Drop for ExclusiveLock<'_> {
    fn drop(&mut self) {
        // Closing the file (or the process dying) releases it too.
        let _ = sys::unlock(self.0);
    }
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
    /// A state holding the snapshot payload `bytes[start..]`; `None` when
    /// it does not decode.
    fn from_snapshot(bytes: Vec<u8>, start: usize) -> Option<State> {
        match Base::index(&bytes, start) {
            Indexing::Indexed(offsets, buckets) => {
                let base = Base {
                    bytes,
                    start,
                    offsets,
                    buckets,
                };
                Some(State {
                    live_bytes: base.payload_len(),
                    base,
                    ..State::default()
                })
            }
            Indexing::Unordered => {
                let mut state = State {
                    rewrite: true,
                    ..State::default()
                };
                state.apply_payload(&bytes[start..])?;
                Some(state)
            }
            Indexing::Undecodable => None,
        }
    }

    /// The current value of a record.
    fn get(&self, bucket: &str, key: &str) -> Option<&[u8]> {
        match self
            .overlay
            .get(bucket)
            .and_then(|records| records.get(key))
        {
            Some(changed) => changed.as_deref(),
            None => self.base.get(bucket, key),
        }
    }

    /// At most `limit` records of `bucket` under `prefix`, in key order:
    /// the snapshot's merged with the log's changes.
    fn scan(&self, bucket: &str, prefix: &str, limit: usize) -> Vec<(String, Vec<u8>)> {
        let range = self.base.bucket(bucket);
        let end = range.end;
        let base = (self.base.lower_bound(range, prefix)..end)
            .map(|i| self.base.record(i))
            .take_while(|record| record.key.starts_with(prefix.as_bytes()));
        let overlay = self
            .overlay
            .get(bucket)
            .into_iter()
            .flat_map(|records| {
                records.range::<str, _>((
                    std::ops::Bound::Included(prefix),
                    std::ops::Bound::Unbounded,
                ))
            })
            .take_while(|(key, _)| key.starts_with(prefix));
        merge(base, overlay)
            .filter_map(|step| match step {
                Merged::Base(record) => Some((
                    String::from_utf8_lossy(record.key).into_owned(),
                    record.value.to_vec(),
                )),
                Merged::Changed(key, value) => value.map(|value| (key.to_owned(), value.to_vec())),
            })
            .take(limit)
            .collect()
    }

    fn put(&mut self, bucket: &str, key: &str, value: &[u8]) {
        self.forget(bucket, key);
        self.live_bytes += op_size(bucket, key, Some(value));
        self.overlay
            .entry(bucket.to_owned())
            .or_default()
            .insert(key.to_owned(), Some(value.to_vec()));
    }

    fn delete(&mut self, bucket: &str, key: &str) {
        self.forget(bucket, key);
        let in_base = self.base.get(bucket, key).is_some();
        if in_base {
            self.overlay
                .entry(bucket.to_owned())
                .or_default()
                .insert(key.to_owned(), None);
        } else if let Some(records) = self.overlay.get_mut(bucket) {
            records.remove(key);
            if records.is_empty() {
                self.overlay.remove(bucket);
            }
        }
    }

    /// Subtracts the current record `key` (if any) from `live_bytes`.
    fn forget(&mut self, bucket: &str, key: &str) {
        if let Some(old) = self.get(bucket, key) {
            let size = op_size(bucket, key, Some(old));
            self.live_bytes = self.live_bytes.saturating_sub(size);
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

    /// The payload of a snapshot of every live record, in key order: the
    /// snapshot's records merged with the log's changes (the unchanged ones
    /// copied as they are encoded).
    fn encode_snapshot(&self) -> Vec<u8> {
        let mut payload = Vec::with_capacity(self.live_bytes as usize);
        let mut names: Vec<&str> = self
            .base
            .buckets
            .iter()
            .map(|(name, _)| name.as_str())
            .chain(self.overlay.keys().map(String::as_str))
            .collect();
        names.sort_unstable();
        names.dedup();
        for bucket in names {
            let range = self.base.bucket(bucket);
            let base = range.map(|i| self.base.record(i));
            let overlay = self.overlay.get(bucket).into_iter().flatten();
            for step in merge(base, overlay) {
                match step {
                    Merged::Base(record) => payload.extend_from_slice(record.op),
                    Merged::Changed(key, Some(value)) => {
                        encode_op(&mut payload, TAG_PUT, bucket, key, Some(value));
                    }
                    Merged::Changed(_, None) => {}
                }
            }
        }
        payload
    }
}

/// The CRC-32 of a version 2 snapshot: over its generation, its payload
/// length and its payload.
fn snapshot_crc(head: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&head[8..24]);
    hasher.update(payload);
    hasher.finalize()
}

/// Checks the header and checksum of the snapshot `bytes`: where its
/// payload starts.
fn check_snapshot(path: &Path, bytes: &[u8]) -> Result<usize> {
    let magic = bytes.get(..8);
    let start = if magic == Some(SNAPSHOT_MAGIC) {
        SNAPSHOT_HEADER
    } else if magic == Some(SNAPSHOT_MAGIC_1) {
        SNAPSHOT_HEADER_1
    } else {
        return Err(corrupt(path, "the snapshot has no valid header".into()));
    };
    if bytes.len() < start {
        return Err(corrupt(path, "the snapshot has no valid header".into()));
    }
    let payload = &bytes[start..];
    let checked = payload.len() as u64 == u64_at(bytes, 16)
        && if start == SNAPSHOT_HEADER {
            snapshot_crc(bytes, payload).to_le_bytes() == bytes[24..28]
        } else {
            sha256(payload) == bytes[24..56]
        };
    if !checked {
        return Err(corrupt(path, "the snapshot fails its checksum".into()));
    }
    Ok(start)
}

/// The bytes of the record file `name`, `None` when absent. Anything but a
/// regular file there (a symlink, which is not followed) is an error, not
/// "absent": treating it as absent would start an empty record store.
fn read_file(
    dir: &File,
    path: &Path,
    name: &str,
    writable: bool,
) -> io::Result<Option<(File, Vec<u8>)>> {
    if let Some(stat) = sys::stat(dir, name)?
        && !stat.is_file
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("records/{name} is not a regular file (symlinks are not followed)"),
        ));
    }
    let opened = if writable {
        open_rw(path, name)
    } else {
        sys::open_read(dir, name)
    };
    match opened {
        Ok(mut file) => {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            Ok(Some((file, bytes)))
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
    open_rw(path, LOG)
}

fn open_rw(path: &Path, name: &str) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path.join(name))
}

/// The snapshot and log in `dir`, read and replayed (the caller holds a
/// lock that keeps writers out): the state they hold and the files it
/// follows. A torn tail of the log is left for a writer to cut.
fn load(dir: &File, path: &Path) -> Result<State> {
    let subject = || store_subject(path);
    let read_error = |e: io::Error| match e.kind() {
        io::ErrorKind::InvalidData => corrupt(path, e.to_string()),
        _ => Error::io("read", subject(), e),
    };
    let mut state = State::default();
    if let Some((file, bytes)) = read_file(dir, path, SNAPSHOT, false).map_err(read_error)? {
        let start = check_snapshot(path, &bytes)?;
        let generation = u64_at(&bytes, 8);
        let Some(loaded) = State::from_snapshot(bytes, start) else {
            return Err(corrupt(path, "the snapshot does not decode".into()));
        };
        state = loaded;
        state.generation = generation;
        state.snapshot = Some(pin(file).map_err(read_error)?);
    }
    let Some((file, bytes)) = read_file(dir, path, LOG, true).map_err(read_error)? else {
        return Ok(state);
    };
    if (bytes.len() as u64) < LOG_HEADER || &bytes[..8] != LOG_MAGIC {
        return Err(corrupt(path, "the log has no valid header".into()));
    }
    let log_generation = u64_at(&bytes, 8);
    let generation = state.generation;
    if log_generation > generation {
        return Err(corrupt(
            path,
            format!(
                "the log (generation {log_generation}) is newer than the snapshot ({generation})"
            ),
        ));
    }
    let current = log_generation == generation;
    let applied = if current {
        replay(path, &bytes[LOG_HEADER as usize..], LOG_HEADER, &mut state)?
    } else {
        bytes.len() as u64
    };
    state.log = Some(Followed {
        log: pin(file).map_err(read_error)?,
        applied,
        current,
    });
    Ok(state)
}

fn pin(file: File) -> io::Result<Pinned> {
    let ino = file.metadata()?.ino();
    Ok(Pinned { file, ino })
}

/// True when `state` has replayed all of the log that `log` (a `stat` of
/// it) describes: nothing to catch up with.
fn is_current(state: &State, log: Option<sys::Stat>) -> bool {
    match (&state.log, log) {
        (Some(followed), Some(stat)) => {
            followed.log.ino == stat.ino && followed.applied == stat.size
        }
        _ => false,
    }
}

impl Records {
    /// Opens (creating) the record store in `path`: under the exclusive
    /// lock, removes temp files of interrupted compactions, indexes the
    /// snapshot and replays the log, cuts a torn tail, starts a missing log
    /// and compacts a log that is due.
    pub(crate) fn open(path: &Path, lock_timeout: Duration) -> Result<Records> {
        let subject = || store_subject(path);
        let dir = File::open(path).map_err(|e| Error::io("open", subject(), e))?;
        let lock = lock::open_lock_file(&path.join(LOCK_FILE))?;
        let records = Records {
            path: path.to_path_buf(),
            dir,
            lock,
            lock_timeout,
            state: RwLock::new(State::default()),
            writer: Mutex::new(()),
        };
        {
            let _writer = records.lock_writer();
            let _lock = records.lock_exclusive()?;
            remove_temp_files(&records.dir).map_err(|e| Error::io("clean", subject(), e))?;
            records.catch_up(Mode::Write)?;
            let due = {
                let state = records.read();
                let log_len = state.log.as_ref().map_or(0, |followed| followed.applied);
                compaction_due(&state, log_len)
            };
            if due {
                // A log left long (by a crash, or by an older version that
                // compacted later): folded in now, so later opens read
                // little of it. On failure the log stays valid.
                let _ = records.compact();
            }
        }
        Ok(records)
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-updated
        // (updates are plain inserts), so a poisoned lock is still usable.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_exclusive(&self) -> Result<ExclusiveLock<'_>> {
        let path = self.path.join(LOCK_FILE);
        lock::wait_for(&self.lock, &path, LockKind::Exclusive, self.lock_timeout)?;
        let held = ExclusiveLock(&self.lock);
        lock::write_pid(&self.lock, &path)?;
        Ok(held)
    }

    fn stat(&self, name: &str) -> Result<Option<sys::Stat>> {
        match sys::stat(&self.dir, name) {
            Ok(Some(stat)) if !stat.is_file => Err(corrupt(
                &self.path,
                format!("records/{name} is not a regular file (symlinks are not followed)"),
            )),
            Ok(stat) => Ok(stat),
            Err(e) => Err(Error::io("stat", store_subject(&self.path), e)),
        }
    }

    /// Brings the state up to date with the files: one `stat` when nothing
    /// changed; the new frames when another backend appended; everything
    /// when another compacted.
    fn refresh(&self) -> Result<()> {
        let log = self.stat(LOG)?;
        if is_current(&self.read(), log) {
            return Ok(());
        }
        let _writer = self.lock_writer();
        self.catch_up(Mode::Read)
    }

    /// The slow part of [`refresh`](Self::refresh), under the writer mutex
    /// (and for [`Mode::Write`] the exclusive lock).
    fn catch_up(&self, mode: Mode) -> Result<()> {
        let subject = || store_subject(&self.path);
        let log = self.stat(LOG)?;
        let snapshot_same = mode == Mode::Read || {
            let on_disk = self.stat(SNAPSHOT)?.map(|stat| stat.ino);
            self.read().snapshot.as_ref().map(|pinned| pinned.ino) == on_disk
        };
        let tail_only = snapshot_same
            && match (&self.read().log, log) {
                (Some(followed), Some(stat)) => {
                    followed.log.ino == stat.ino && stat.size >= followed.applied
                }
                _ => false,
            };
        if tail_only {
            let mut state = self.write();
            let state = &mut *state;
            if let (Some(followed), Some(stat)) = (&state.log, log)
                && followed.current
                && stat.size > followed.applied
            {
                let mut tail = vec![0u8; (stat.size - followed.applied) as usize];
                let at = followed.applied;
                let read = followed.log.file.read_at(&mut tail, at);
                let read = read.map_err(|e| Error::io("read the log of", subject(), e))?;
                tail.truncate(read);
                let applied = replay(&self.path, &tail, at, state);
                if let Some(followed) = &mut state.log {
                    followed.applied = applied?;
                }
            }
        } else {
            let loaded = match mode {
                Mode::Write => load(&self.dir, &self.path)?,
                Mode::Read => {
                    // A fresh open file description: a shared lock through
                    // `self.lock` would convert a lock this process holds.
                    let path = self.path.join(LOCK_FILE);
                    let shared = lock::open_lock_file(&path)?;
                    lock::wait_for(&shared, &path, LockKind::Shared, self.lock_timeout)?;
                    load(&self.dir, &self.path)?
                }
            };
            *self.write() = loaded;
        }
        if mode == Mode::Write {
            self.repair_log()?;
        }
        Ok(())
    }

    /// Under the exclusive lock: cuts a torn tail off the log, or replaces a
    /// missing or obsolete log with an empty one of the snapshot's generation.
    fn repair_log(&self) -> Result<()> {
        let subject = || store_subject(&self.path);
        let mut state = self.write();
        match &state.log {
            Some(followed) if followed.current => {
                let file = &followed.log.file;
                let size = file
                    .metadata()
                    .map_err(|e| Error::io("stat the log of", subject(), e))?
                    .len();
                if size > followed.applied {
                    // A frame torn by a crash: it was never acknowledged.
                    file.set_len(followed.applied)
                        .and_then(|()| file.sync_all())
                        .map_err(|e| Error::io("truncate the torn tail of", subject(), e))?;
                }
            }
            _ => {
                let file = fresh_log(&self.dir, &self.path, state.generation)
                    .and_then(pin)
                    .map_err(|e| Error::io("create the record log in", subject(), e))?;
                state.log = Some(Followed {
                    log: file,
                    applied: LOG_HEADER,
                    current: true,
                });
            }
        }
        Ok(())
    }

    /// The value of one record, as of now.
    pub(crate) fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.refresh()?;
        Ok(self.read().get(bucket, key).map(<[u8]>::to_vec))
    }

    /// At most `limit` records of `bucket` under `prefix`, in key order, as
    /// of now. Copied out, so that the caller's callback runs without the
    /// lock held (it may write); only the records returned are copied.
    pub(crate) fn scan(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        self.refresh()?;
        Ok(self.read().scan(bucket, prefix, limit))
    }

    /// The generation and the replayed length of the log, folded into one
    /// number: every append and every compaction, by any backend, changes
    /// it. (A log is compacted long before it reaches 2^40 bytes.)
    pub(crate) fn change_counter(&self) -> Result<u64> {
        self.refresh()?;
        let state = self.read();
        let applied = state.log.as_ref().map_or(0, |followed| followed.applied);
        Ok(state.generation.wrapping_shl(40) | (applied & ((1 << 40) - 1)))
    }

    /// Under the exclusive lock: catches up, checks the preconditions, logs
    /// the writes durably, applies them.
    pub(crate) fn apply(&self, batch: &Batch) -> Result<()> {
        batch.validate()?;
        let _writer = self.lock_writer();
        let _lock = self.lock_exclusive()?;
        self.catch_up(Mode::Write)?;
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
        self.append(&frame)?;
        let due = {
            let mut state = self.write();
            // The payload was built above from validated ops; it decodes.
            let _ = state.apply_payload(&payload);
            let log_len = match &mut state.log {
                Some(followed) => {
                    followed.applied += frame.len() as u64;
                    followed.applied
                }
                None => 0,
            };
            compaction_due(&state, log_len)
        };
        if due {
            // The batch is durable already; a failed compaction is retried
            // after the next batch and leaves a valid log behind.
            let _ = self.compact();
        }
        Ok(())
    }

    /// Appends `frame` at the end of the (current, repaired) log and syncs
    /// it. Readers of this process keep reading meanwhile: the state's read
    /// lock is shared, and no other writer can ask for its write lock.
    fn append(&self, frame: &[u8]) -> Result<()> {
        let subject = || store_subject(&self.path);
        let failed = {
            let state = self.read();
            let Some(followed) = state.log.as_ref().filter(|followed| followed.current) else {
                return Err(Error::io(
                    "append to",
                    subject(),
                    io::Error::other("no record log"),
                ));
            };
            let log = &followed.log.file;
            let written = log
                .write_all_at(frame, followed.applied)
                .and_then(|()| fault::sync("fs: fsync record log"))
                .and_then(|()| log.sync_data());
            match written {
                Ok(()) => return Ok(()),
                Err(e) => {
                    // Cut the partial frame off so later frames do not follow
                    // garbage, nor a reload replay a batch that failed.
                    let cut = log.set_len(followed.applied).and_then(|()| log.sync_all());
                    (e, cut.is_ok())
                }
            }
        };
        let (e, cut) = failed;
        if !cut {
            // Start over from a snapshot of the state without the frame.
            let _ = self.compact();
        }
        Err(Error::io("append to the record log in", subject(), e))
    }

    /// Folds the log into a new snapshot and starts an empty log (under the
    /// exclusive lock). On failure the state is marked for a reload, which
    /// finds whichever valid pair the files hold.
    fn compact(&self) -> io::Result<()> {
        let compacted = self.write_compaction();
        let mut state = self.write();
        match compacted {
            Ok((generation, snapshot, log, payload)) => {
                // The merged records, indexed (written in order, so they
                // index; if not, the files are loaded again).
                let Some(merged) = State::from_snapshot(payload, 0) else {
                    state.log = None;
                    state.snapshot = None;
                    return Ok(());
                };
                state.base = merged.base;
                state.overlay = merged.overlay;
                state.live_bytes = merged.live_bytes;
                state.rewrite = merged.rewrite;
                state.generation = generation;
                state.snapshot = Some(snapshot);
                state.log = Some(Followed {
                    log,
                    applied: LOG_HEADER,
                    current: true,
                });
                Ok(())
            }
            Err(e) => {
                state.log = None;
                state.snapshot = None;
                Err(e)
            }
        }
    }

    /// Writes the snapshot and the empty log of the next generation and
    /// renames them into place: that generation, the new files, and the
    /// snapshot's payload.
    fn write_compaction(&self) -> io::Result<(u64, Pinned, Pinned, Vec<u8>)> {
        let (generation, payload) = {
            let state = self.read();
            (state.generation + 1, state.encode_snapshot())
        };
        let mut snapshot = TempFile::create(&self.dir)?;
        let mut head = header(SNAPSHOT_MAGIC, generation);
        head.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        let crc = snapshot_crc(&head, &payload);
        head.extend_from_slice(&crc.to_le_bytes());
        snapshot.write_all(&head)?;
        snapshot.write_all(&payload)?;
        let mut log = TempFile::create(&self.dir)?;
        log.file().write_all(&header(LOG_MAGIC, generation))?;
        log.file().sync_all()?;
        // The commit point: from here the old log is obsolete.
        snapshot.commit(SNAPSHOT)?;
        log.commit(LOG)?;
        let snapshot = pin(sys::open_read(&self.dir, SNAPSHOT)?)?;
        let log = pin(open_log(&self.path)?)?;
        Ok((generation, snapshot, log, payload))
    }
}

/// Removes `.tmp-*` leftovers of interrupted compactions (under the
/// exclusive lock: nobody is compacting).
fn remove_temp_files(dir: &File) -> io::Result<()> {
    let mut names = Vec::new();
    let listed = sys::for_each_entry(dir, |name, _| {
        if name.starts_with(TEMP_PREFIX.as_bytes()) {
            names.push(String::from_utf8_lossy(name).into_owned());
        }
        Ok::<(), io::Error>(())
    })?;
    listed?;
    for name in names {
        match sys::unlink(dir, &name) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Replays `frames`, the part of a log that starts at byte `offset` (a
/// frame boundary), into `state`; returns the offset after the last whole
/// frame (short of the end when the tail is torn, or still being written).
fn replay(path: &Path, frames: &[u8], offset: u64, state: &mut State) -> Result<u64> {
    let mut at = 0;
    let end_of = |at: usize| offset + at as u64;
    while at < frames.len() {
        let rest = &frames[at..];
        // Only the end of the log may be torn (or zero-filled by a crash that
        // extended the file before writing it); a bad frame with data after
        // it means damage to acknowledged batches.
        if rest.len() < FRAME_HEADER as usize {
            return Ok(end_of(at));
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let end = FRAME_HEADER as usize + len;
        if rest.len() < end {
            return Ok(end_of(at));
        }
        let payload = &rest[FRAME_HEADER as usize..end];
        if sha256(payload) != rest[4..36] {
            // A torn append (even one whose pages reached the disk out of
            // order) is the last frame: nothing valid follows it.
            if !valid_frame_after(frames, at + 1) {
                return Ok(end_of(at));
            }
            return Err(corrupt(
                path,
                format!(
                    "a batch frame at offset {} of the log fails its checksum",
                    end_of(at)
                ),
            ));
        }
        if state.apply_payload(payload).is_none() {
            return Err(corrupt(
                path,
                format!("the batch frame at offset {} does not decode", end_of(at)),
            ));
        }
        at += end;
    }
    Ok(end_of(at))
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
        sha256(payload) == rest[4..36] && decodes(payload)
    })
}

/// True when `payload` decodes as a sequence of ops.
fn decodes(payload: &[u8]) -> bool {
    let mut decoder = Decoder { bytes: payload };
    loop {
        match decoder.next_op() {
            None => return false,
            Some(None) => return true,
            Some(Some(_)) => {}
        }
    }
}

/// True when the log, `log_len` bytes long, is due for compaction: it
/// outgrew an eighth of the snapshot (and 256 KiB), so replaying it on open
/// stays cheap beside reading the snapshot, or the snapshot could not be
/// indexed.
fn compaction_due(state: &State, log_len: u64) -> bool {
    state.rewrite || log_len > COMPACT_MIN.max(state.base.payload_len() / 8)
}

fn check(state: &State, bucket: &str, key: &str, condition: &Precondition) -> Result<()> {
    condition.check(bucket, key, state.get(bucket, key))
}
