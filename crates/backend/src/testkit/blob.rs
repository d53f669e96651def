//! Streaming cases: `write_blob` and `open_blob`.

use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use imgstore_digest::{Algorithm, Digest};

use super::fault::{FaultClass, FaultError, FaultPlan, FaultyBackend};
use super::{Generator, Harness, Rng, fails, ok, open, scratch, walked};
use crate::{Error, ErrorKind, RecordStore, StoreBackend, WriteBack};

/// Reads `reader` to the end, hashing instead of keeping the bytes.
fn drain(reader: &mut dyn Read) -> io::Result<(Digest, u64)> {
    let mut digester = Algorithm::Sha256.digester();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok((digester.finish(), total)),
            Ok(n) => {
                digester.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `info` is what writing `len` bytes hashing to `expected` returns, and the
/// store gives those bytes back through the verifying reader.
fn assert_stored(store: &dyn StoreBackend, info: &crate::BlobInfo, expected: &Digest, len: u64) {
    assert_eq!(&info.digest, expected);
    assert_eq!(info.size, len);
    assert_eq!(ok(store.size(expected), "size"), len);
    let mut reader = ok(store.open_blob(expected), "open_blob");
    match drain(&mut reader) {
        Ok((digest, size)) => {
            assert_eq!(&digest, expected, "open_blob yields the bytes written");
            assert_eq!(size, len);
        }
        Err(e) => panic!("testkit: reading the blob back failed: {e}"),
    }
}

/// 32 MiB streamed in from a generator come back through the verifying reader.
pub fn write_blob_32mib_round_trips<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    const LEN: u64 = 32 * 1024 * 1024;
    let expected = match Algorithm::Sha256.from_reader(Generator::new(32, LEN)) {
        Ok(d) => d,
        Err(e) => panic!("testkit: hashing the generator failed: {e}"),
    };
    let info = ok(
        store.write_blob(Some(&expected), &mut Generator::new(32, LEN)),
        "write_blob of 32 MiB",
    );
    assert_stored(&store, &info, &expected, LEN);
    assert_eq!(walked(&store), vec![expected]);
}

/// Hands out at most `limit` bytes per read, so boundaries fall anywhere.
struct ShortReads<R> {
    inner: R,
    limit: usize,
}

impl<R: Read> Read for ShortReads<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.limit);
        self.inner.read(&mut buf[..n])
    }
}

/// The largest file anywhere under `dir` (0 when there is none).
fn largest_file(dir: &Path) -> u64 {
    let listed = std::fs::read_dir(dir).and_then(|entries| {
        entries
            .map(|entry| entry.and_then(|e| Ok((e.path(), std::fs::symlink_metadata(e.path())?))))
            .collect::<io::Result<Vec<_>>>()
    });
    let entries = match listed {
        Ok(entries) => entries,
        Err(e) => panic!("testkit: listing {} failed: {e}", dir.display()),
    };
    entries
        .iter()
        .map(|(path, metadata)| {
            if metadata.is_dir() {
                largest_file(path)
            } else {
                metadata.len()
            }
        })
        .max()
        .unwrap_or(0)
}

/// A blob over three early write-back chunks long ([`WriteBack::CHUNK`]),
/// read in odd-sized pieces so chunk boundaries fall inside reads,
/// round-trips byte for byte: write-back changes nothing a reader sees.
pub fn write_blob_across_write_back_chunks_round_trips<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let len = 3 * WriteBack::CHUNK + 4097;
    let expected = match Algorithm::Sha256.from_reader(Generator::new(48, len)) {
        Ok(d) => d,
        Err(e) => panic!("testkit: hashing the generator failed: {e}"),
    };
    let mut reader = ShortReads {
        inner: Generator::new(48, len),
        limit: 300_007,
    };
    let info = ok(
        store.write_blob(Some(&expected), &mut reader),
        "write_blob of three write-back chunks and a bit",
    );
    assert_stored(&store, &info, &expected, len);
}

/// A write the disk reports as failed while a large blob is written back
/// early (EIO waiting for a chunk) fails the `write_blob` with `Io`, even
/// though the final fsync would not see the error again, and leaves
/// nothing behind: no content, no temp file. The same write then succeeds.
pub fn write_blob_failed_write_back_stores_nothing<H: Harness>(harness: &H) {
    let dir = scratch();
    let plan = Arc::new(FaultPlan::new());
    let store = FaultyBackend::new(open(harness, dir.path()), Arc::clone(&plan));
    let len = 2 * WriteBack::CHUNK + 1;
    plan.arm(FaultClass::Sync, 1, FaultError::Io);
    let e = fails(
        store.write_blob(None, &mut Generator::new(2, len)),
        ErrorKind::Io,
        "write_blob while a write-back fails",
    );
    if cfg!(target_os = "linux") {
        assert_eq!(
            plan.fired(),
            Some(format!(
                "sync #1 ({})",
                harness.first_sync_of_a_large_write()
            )),
            "the write-back failed: {e}"
        );
    }
    assert!(walked(&store).is_empty(), "nothing stored");
    assert!(
        largest_file(dir.path()) < WriteBack::CHUNK,
        "the temp file is gone"
    );
    let info = ok(
        store.write_blob(None, &mut Generator::new(2, len)),
        "write_blob again",
    );
    assert_eq!(info.size, len);
    assert_eq!(walked(&store), vec![info.digest]);
}

/// A streamed blob is the same content as one `set` whole: one entry, and
/// `get` reads it.
pub fn write_blob_matches_set<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let info = ok(store.write_blob(None, &mut &b"foobar"[..]), "write_blob");
    assert_eq!(info.digest.as_str(), super::content::FOOBAR);
    assert_eq!(info.size, 6);
    assert_eq!(ok(store.get(&info.digest), "get"), b"foobar");
    assert_eq!(ok(store.set(b"foobar"), "set"), info.digest);
    let again = ok(
        store.write_blob(None, &mut &b"foobar"[..]),
        "write_blob again",
    );
    assert_eq!(again, info);
    assert_eq!(walked(&store), vec![info.digest]);
}

/// Deferred writes are stored at once (readable, listed, the same digest
/// as `set`), and the next record batch, which makes them durable first,
/// commits; after a reopen they are all there.
pub fn deferred_writes_are_stored_at_once_and_survive_a_batch<H: Harness>(harness: &H) {
    let dir = scratch();
    let (foobar, streamed) = {
        let store = open(harness, dir.path());
        let foobar = ok(store.set_deferred(b"foobar"), "set_deferred");
        assert_eq!(foobar.as_str(), super::content::FOOBAR);
        assert_eq!(ok(store.get(&foobar), "get"), b"foobar");
        assert_eq!(
            ok(store.set_deferred(b"foobar"), "set_deferred again"),
            foobar
        );
        let data = Rng::from_entropy().bytes(300 * 1024);
        let streamed = ok(
            store.write_blob_deferred(Some(&Digest::from_bytes(&data)), &mut &data[..]),
            "write_blob_deferred",
        );
        assert_eq!(streamed.size, 300 * 1024);
        assert!(ok(store.contains(&streamed.digest), "contains"));
        let mut batch = crate::Batch::new();
        batch.put(
            "deferred",
            "names-them",
            foobar.as_str().as_bytes().to_vec(),
        );
        ok(store.apply(&batch), "the batch after deferred writes");
        (foobar, streamed)
    };
    let store = open(harness, dir.path());
    let mut expected = vec![foobar.clone(), streamed.digest.clone()];
    expected.sort();
    assert_eq!(walked(&store), expected);
    assert_eq!(
        ok(store.get_record("deferred", "names-them"), "get_record"),
        Some(foobar.as_str().as_bytes().to_vec())
    );
    // A failed streamed write stores nothing, deferred or not.
    let wrong = Digest::from_bytes(b"something else");
    let failed = store.write_blob_deferred(Some(&wrong), &mut &b"foobar2"[..]);
    assert_eq!(
        failed.map_err(|e| e.kind()).err(),
        Some(ErrorKind::DataCorruption)
    );
    assert_eq!(walked(&store), expected);
}

/// Bytes that do not hash to `expected` are `DataCorruption` and leave
/// nothing behind.
pub fn write_blob_wrong_expected_is_corruption_and_stores_nothing<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let wrong = Digest::from_bytes(b"something else");
    let e = fails(
        store.write_blob(Some(&wrong), &mut Generator::new(1, 1024 * 1024)),
        ErrorKind::DataCorruption,
        "write_blob with a wrong expected digest",
    );
    let actual = match Algorithm::Sha256.from_reader(Generator::new(1, 1024 * 1024)) {
        Ok(d) => d,
        Err(e) => panic!("testkit: hashing failed: {e}"),
    };
    match &e {
        Error::DataCorruption {
            digest,
            actual: got,
        } => {
            assert_eq!(*digest, wrong, "names the digest expected");
            assert_eq!(*got, actual, "names what the bytes hash to");
        }
        other => panic!("testkit: expected DataCorruption, got {other:?}"),
    }
    assert!(walked(&store).is_empty(), "nothing stored");
    assert!(!ok(store.contains(&actual), "contains"));
    assert!(!ok(store.contains(&wrong), "contains"));
}

/// `expected` may be sha512 (or sha384); the result is still the sha256 digest.
pub fn write_blob_expected_of_other_algorithm<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let data = b"a layer, say";
    for algorithm in [Algorithm::Sha384, Algorithm::Sha512] {
        let expected = algorithm.from_bytes(data);
        let info = ok(
            store.write_blob(Some(&expected), &mut &data[..]),
            "write_blob with a non-sha256 expected digest",
        );
        assert_eq!(
            info.digest,
            Digest::from_bytes(data),
            "the stored digest is sha256"
        );
        let wrong = algorithm.from_bytes(b"other");
        let e = fails(
            store.write_blob(Some(&wrong), &mut &b"different bytes"[..]),
            ErrorKind::DataCorruption,
            "write_blob with a wrong non-sha256 digest",
        );
        if let Error::DataCorruption { digest, actual } = &e {
            assert_eq!(*digest, wrong);
            assert_eq!(
                *actual,
                algorithm.from_bytes(b"different bytes"),
                "actual in the same algorithm"
            );
        }
    }
    assert_eq!(walked(&store), vec![Digest::from_bytes(data)]);
}

/// An empty stream is `InvalidArgument`, like `set` of empty data.
pub fn write_blob_empty_is_invalid_argument<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    fails(
        store.write_blob(None, &mut io::empty()),
        ErrorKind::InvalidArgument,
        "write_blob of nothing",
    );
    assert!(walked(&store).is_empty());
}

/// A reader that fails half-way leaves nothing stored and the error names
/// no stored content.
pub fn write_blob_reader_error_stores_nothing<H: Harness>(harness: &H) {
    struct Failing(u64);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("the network went away"));
            }
            let n = (buf.len() as u64).min(self.0) as usize;
            buf[..n].fill(b'x');
            self.0 -= n as u64;
            Ok(n)
        }
    }
    let dir = scratch();
    let store = open(harness, dir.path());
    let result = store.write_blob(None, &mut Failing(300 * 1024));
    assert!(result.is_err(), "a failing reader fails write_blob");
    assert!(walked(&store).is_empty(), "nothing stored");
}

/// `open_blob` of absent content is `NotFound`.
pub fn open_blob_absent_is_not_found<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    match store.open_blob(&Digest::from_bytes(b"absent")) {
        Ok(_) => panic!("testkit: open_blob of absent content succeeded"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "open_blob of absent: {e}"),
    }
}

/// The reader of corrupted content fails at the end of the stream with
/// `DataCorruption` inside the `io::Error`.
pub fn open_blob_corrupted_fails_at_end<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let info = ok(
        store.write_blob(None, &mut Generator::new(9, 200 * 1024)),
        "write_blob",
    );
    let damaged = vec![1u8; 200 * 1024];
    harness.corrupt(dir.path(), &store, &info.digest, &damaged);
    let mut reader = match store.open_blob(&info.digest) {
        Ok(reader) => reader,
        // Verifying before the first byte is allowed too.
        Err(e) if e.kind() == ErrorKind::DataCorruption => return,
        Err(e) => panic!("testkit: open_blob of corrupted content: {e}"),
    };
    match drain(&mut reader) {
        Ok(_) => panic!("testkit: reading corrupted content to the end succeeded"),
        Err(e) => {
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "io kind: {e}");
            let inner = e.into_inner().map(|inner| inner.downcast::<Error>());
            match inner {
                Some(Ok(error)) => match *error {
                    Error::DataCorruption { digest, .. } => assert_eq!(digest, info.digest),
                    other => panic!("testkit: expected DataCorruption, got {other:?}"),
                },
                _ => panic!("testkit: the io::Error does not wrap a backend Error"),
            }
        }
    }
}
