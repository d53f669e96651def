//! `BlobHasher`: the hashing every backend's `write_blob` does while it streams.

use std::io::{self, Read};
use std::sync::mpsc;

use imgstore_digest::{Algorithm, Digest, Digester};

use crate::{BLOB_BUFFER, BlobInfo, Error, Result};

/// [`BlobHasher::stream`] hashes this much on the calling thread; a blob
/// that goes on is hashed on a thread of its own from there.
const HASH_INLINE: u64 = 8 << 20;
/// Buffers of [`BLOB_BUFFER`] bytes in flight between the calling thread
/// and the hashing thread.
const PIPELINE_DEPTH: usize = 4;

/// Why [`BlobHasher::stream`] stopped before the end of its input.
#[derive(Debug)]
pub enum StreamError {
    /// Reading the input failed.
    Read(io::Error),
    /// Writing what was read failed.
    Write(io::Error),
}

/// Hashes content as it streams into a backend: always sha256 (the digest it
/// is stored under) and, when an expected digest of another algorithm is
/// given, that algorithm too, so the check needs no second pass.
pub struct BlobHasher {
    sha256: Digester,
    other: Option<Digester>,
    size: u64,
}

impl BlobHasher {
    /// A hasher for content that must hash to `expected`, if given.
    pub fn new(expected: Option<&Digest>) -> BlobHasher {
        BlobHasher {
            sha256: Algorithm::Sha256.digester(),
            other: expected
                .map(Digest::algorithm)
                .filter(|a| *a != Algorithm::Sha256)
                .map(Algorithm::digester),
            size: 0,
        }
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        if let Some(other) = &mut self.other {
            other.update(bytes);
        }
        self.size += bytes.len() as u64;
    }

    /// Reads `reader` to its end in [`BLOB_BUFFER`] pieces and gives each,
    /// in order, to `write` and to the hash. `write` runs on the calling
    /// thread. Past 8 MiB, the hashing moves to a second thread, which
    /// hashes each piece while this one writes it and reads the next: for
    /// a large layer, reading, writing into the page cache and hashing each
    /// take about as long as the disk takes to write it, so on one thread
    /// they, not the disk, would set the pace.
    pub fn stream(
        &mut self,
        reader: &mut dyn Read,
        write: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), StreamError> {
        let mut buf = vec![0u8; BLOB_BUFFER];
        if self.stream_inline(reader, write, &mut buf, HASH_INLINE)? {
            return Ok(());
        }
        match self.stream_threaded(reader, write, buf) {
            Some(result) => result,
            // No thread to be had (a limit): the rest on this one.
            None => {
                let mut buf = vec![0u8; BLOB_BUFFER];
                self.stream_inline(reader, write, &mut buf, u64::MAX)
                    .map(drop)
            }
        }
    }

    /// Streams on the calling thread until the end of the input (true) or
    /// until `limit` bytes were hashed (false).
    fn stream_inline(
        &mut self,
        reader: &mut dyn Read,
        write: &mut dyn FnMut(&[u8]) -> io::Result<()>,
        buf: &mut [u8],
        limit: u64,
    ) -> Result<bool, StreamError> {
        while self.size < limit {
            let n = read_some(reader, buf)?;
            if n == 0 {
                return Ok(true);
            }
            self.update(&buf[..n]);
            write(&buf[..n]).map_err(StreamError::Write)?;
        }
        Ok(false)
    }

    /// Streams to the end, hashing on a second thread; `None` (before
    /// anything is read) when no thread can be started.
    fn stream_threaded(
        &mut self,
        reader: &mut dyn Read,
        write: &mut dyn FnMut(&[u8]) -> io::Result<()>,
        first: Vec<u8>,
    ) -> Option<Result<(), StreamError>> {
        std::thread::scope(|scope| {
            // Both channels live in this closure: returning from it drops
            // `full_tx`, which ends the thread's loop, before the scope
            // joins the thread (so every piece sent is hashed).
            let (full_tx, full_rx) = mpsc::sync_channel::<(Vec<u8>, usize)>(PIPELINE_DEPTH);
            let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
            let hasher = &mut *self;
            std::thread::Builder::new()
                .name("imgstore-hash".to_owned())
                .spawn_scoped(scope, move || {
                    for (buf, n) in full_rx {
                        hasher.update(&buf[..n]);
                        // The caller stopped early: the rest is hashed for nothing.
                        let _ = free_tx.send(buf);
                    }
                })
                .ok()?;
            let mut spare = Some(first);
            let mut allocated = 1;
            Some(loop {
                let mut buf = match spare.take() {
                    Some(buf) => buf,
                    None if allocated < PIPELINE_DEPTH => {
                        allocated += 1;
                        vec![0u8; BLOB_BUFFER]
                    }
                    None => match free_rx.recv() {
                        Ok(buf) => buf,
                        // The thread ends only once `full_tx` is dropped.
                        Err(_) => break Err(StreamError::Write(thread_stopped())),
                    },
                };
                let n = match read_some(reader, &mut buf) {
                    Ok(0) => break Ok(()),
                    Ok(n) => n,
                    Err(e) => break Err(e),
                };
                if let Err(e) = write(&buf[..n]) {
                    break Err(StreamError::Write(e));
                }
                if full_tx.send((buf, n)).is_err() {
                    break Err(StreamError::Write(thread_stopped()));
                }
            })
        })
    }

    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The sha256 digest and size, once the content is checked: empty content
    /// is `InvalidArgument` ("invalid empty data"), content that does not
    /// hash to `expected` is `DataCorruption`.
    pub fn finish(self, expected: Option<&Digest>) -> Result<BlobInfo> {
        if self.size == 0 {
            return Err(Error::invalid_argument("data", "invalid empty data"));
        }
        let digest = self.sha256.finish();
        if let Some(expected) = expected {
            let actual = match self.other {
                Some(other) => other.finish(),
                None => digest.clone(),
            };
            if actual != *expected {
                return Err(Error::DataCorruption {
                    digest: expected.clone(),
                    actual,
                });
            }
        }
        Ok(BlobInfo {
            digest,
            size: self.size,
        })
    }
}

/// One `read`, retried when interrupted.
fn read_some(reader: &mut dyn Read, buf: &mut [u8]) -> Result<usize, StreamError> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map_err(StreamError::Read),
        }
    }
}

fn thread_stopped() -> io::Error {
    io::Error::other("the thread hashing the blob stopped")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `len` bytes that differ from offset to offset (so a piece out of
    /// order changes the digest).
    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4093) as u8).collect()
    }

    /// Yields its bytes in pieces of at most `limit`, then fails at `fail_at` if set.
    struct Pieces<'a> {
        rest: &'a [u8],
        limit: usize,
        fail_at: Option<usize>,
        given: usize,
    }

    impl Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.fail_at.is_some_and(|at| self.given >= at) {
                return Err(io::Error::other("the network went away"));
            }
            let n = buf.len().min(self.limit).min(self.rest.len());
            buf[..n].copy_from_slice(&self.rest[..n]);
            self.rest = &self.rest[n..];
            self.given += n;
            Ok(n)
        }
    }

    fn pieces(bytes: &[u8], fail_at: Option<usize>) -> Pieces<'_> {
        Pieces {
            rest: bytes,
            limit: 777_777,
            fail_at,
            given: 0,
        }
    }

    #[test]
    fn a_stream_past_the_inline_part_is_written_and_hashed_in_order() {
        for len in [
            1,
            4096,
            HASH_INLINE as usize,
            3 * HASH_INLINE as usize + 12_345,
        ] {
            let input = data(len);
            let mut hasher = BlobHasher::new(None);
            let mut written = Vec::new();
            let streamed = hasher.stream(&mut pieces(&input, None), &mut |bytes| {
                written.extend_from_slice(bytes);
                Ok(())
            });
            assert!(streamed.is_ok(), "{len} bytes: {streamed:?}");
            assert!(written == input, "{len} bytes written in order");
            let info = hasher.finish(None).expect("a non-empty stream");
            assert_eq!(info.digest, Digest::from_bytes(&input), "{len} bytes");
            assert_eq!(info.size, len as u64);
        }
    }

    #[test]
    fn an_expected_digest_of_another_algorithm_is_checked_past_the_inline_part() {
        let input = data(2 * HASH_INLINE as usize + 1);
        let expected = Algorithm::Sha512.from_bytes(&input);
        let mut hasher = BlobHasher::new(Some(&expected));
        let streamed = hasher.stream(&mut pieces(&input, None), &mut |_| Ok(()));
        assert!(streamed.is_ok(), "{streamed:?}");
        let info = hasher.finish(Some(&expected)).expect("the sha512 matches");
        assert_eq!(info.digest, Digest::from_bytes(&input));
    }

    #[test]
    fn read_and_write_failures_past_the_inline_part_stop_the_stream() {
        let input = data(3 * HASH_INLINE as usize);
        let at = 2 * HASH_INLINE as usize;
        let mut hasher = BlobHasher::new(None);
        match hasher.stream(&mut pieces(&input, Some(at)), &mut |_| Ok(())) {
            Err(StreamError::Read(e)) => assert_eq!(e.to_string(), "the network went away"),
            other => panic!("expected the read error, got {other:?}"),
        }
        let mut hasher = BlobHasher::new(None);
        let mut written = 0;
        let result = hasher.stream(&mut pieces(&input, None), &mut |bytes| {
            if written >= at {
                return Err(io::Error::from_raw_os_error(28));
            }
            written += bytes.len();
            Ok(())
        });
        match result {
            Err(StreamError::Write(e)) => assert_eq!(e.raw_os_error(), Some(28)),
            other => panic!("expected the write error, got {other:?}"),
        }
        assert!(written >= at && written < at + BLOB_BUFFER);
    }
}
