//! Content and metadata as stored by SQLite: inline rows, blob files beside
//! the database, corruption found on read, cleaning of leftovers.

mod common;

use std::fs;
use std::io::{self, Read};

use common::{Fixture, TestResult, bytes, inline_limit};
use imgstore_backend::{Error, ErrorKind, StoreBackend};
use imgstore_digest::{Algorithm, Digest};
use imgstore_sqlite::SqliteOptions;
use rusqlite::params;

fn rows(fixture: &Fixture, table: &str) -> i64 {
    fixture
        .raw()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .expect("count rows")
}

fn blob_files(fixture: &Fixture) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(fixture.store.blob_dir().join("sha256"))
        .expect("list blob files")
        .map(|entry| {
            entry
                .expect("a dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn temp_files(fixture: &Fixture) -> usize {
    fs::read_dir(fixture.store.blob_dir().join("tmp"))
        .expect("list temp files")
        .count()
}

/// The backend error inside an `io::Error` from a `BlobReader`.
fn backend_error(e: io::Error) -> Error {
    *e.into_inner()
        .expect("a wrapped error")
        .downcast::<Error>()
        .expect("a backend error")
}

#[test]
fn small_content_is_inline_and_large_content_is_a_file() -> TestResult {
    let fixture = Fixture::with(inline_limit(1024));
    let small = fixture.store.set(&bytes(1, 1024))?;
    let large = fixture.store.set(&bytes(2, 1025))?;
    assert_eq!(blob_files(&fixture), [large.encoded()]);
    let inline: i64 = fixture.raw().query_row(
        "SELECT count(*) FROM content WHERE data IS NOT NULL",
        [],
        |row| row.get(0),
    )?;
    assert_eq!(inline, 1);
    assert_eq!(fixture.store.get(&small)?, bytes(1, 1024));
    assert_eq!(fixture.store.get(&large)?, bytes(2, 1025));
    assert_eq!(fixture.store.size(&large)?, 1025);
    assert_eq!(temp_files(&fixture), 0);
    Ok(())
}

#[test]
fn setting_the_same_content_twice_keeps_one_row_and_one_file() -> TestResult {
    let fixture = Fixture::with(inline_limit(16));
    for _ in 0..3 {
        fixture.store.set(b"small")?;
        fixture.store.set(&bytes(3, 100))?;
        fixture.store.write_blob(None, &mut &bytes(3, 100)[..])?;
    }
    assert_eq!(rows(&fixture, "content"), 2);
    assert_eq!(blob_files(&fixture).len(), 1);
    assert_eq!(temp_files(&fixture), 0);
    Ok(())
}

#[test]
fn empty_data_is_refused_and_stores_nothing() -> TestResult {
    let fixture = Fixture::new();
    let err = fixture.store.set(b"").expect_err("empty data");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("invalid empty data"), "{err}");
    let err = fixture
        .store
        .write_blob(None, &mut io::empty())
        .expect_err("empty stream");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let err = fixture
        .store
        .set_many(&[b"a", b""])
        .expect_err("an empty item");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(rows(&fixture, "content"), 0);
    Ok(())
}

#[test]
fn deleting_missing_content_is_not_found_and_creates_nothing() -> TestResult {
    let fixture = Fixture::new();
    let missing = Digest::from_bytes(b"never stored");
    let err = fixture.store.delete(&missing).expect_err("missing content");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(rows(&fixture, "content"), 0);
    assert!(blob_files(&fixture).is_empty());
    let sha512 = Algorithm::Sha512.from_bytes(b"x");
    assert_eq!(
        fixture.store.delete(&sha512).map_err(|e| e.kind()),
        Err(ErrorKind::NotFound)
    );
    Ok(())
}

#[test]
fn delete_removes_metadata_and_the_blob_file() -> TestResult {
    let fixture = Fixture::with(inline_limit(8));
    let large = fixture.store.set(&bytes(4, 64))?;
    let small = fixture.store.set(b"tiny")?;
    fixture
        .store
        .set_metadata(&large, "parent", small.as_str().as_bytes())?;
    fixture.store.set_metadata(&small, "parent", b"x")?;
    fixture.store.delete(&large)?;
    assert!(blob_files(&fixture).is_empty());
    assert_eq!(
        rows(&fixture, "metadata"),
        1,
        "only the metadata of `small` stays"
    );
    assert_eq!(
        fixture.store.get(&large).map_err(|e| e.kind()),
        Err(ErrorKind::NotFound)
    );
    assert_eq!(
        fixture
            .store
            .get_metadata(&large, "parent")
            .map_err(|e| e.kind()),
        Err(ErrorKind::NotFound)
    );
    // Stored again after the delete: a new row and a new file.
    fixture.store.set(&bytes(4, 64))?;
    assert_eq!(fixture.store.get(&large)?, bytes(4, 64));
    assert_eq!(blob_files(&fixture), [large.encoded()]);
    Ok(())
}

#[test]
fn metadata_needs_content_and_names_the_missing_key() -> TestResult {
    let fixture = Fixture::new();
    let id = fixture.store.set(b"foo")?;
    let absent = Digest::from_bytes(b"baz");
    let err = fixture
        .store
        .set_metadata(&absent, "tkey", b"v")
        .expect_err("no content");
    assert!(
        matches!(&err, Error::NotFound { subject: imgstore_backend::Subject::Content(d) } if *d == absent),
        "{err}"
    );
    assert_eq!(rows(&fixture, "metadata"), 0);
    let err = fixture
        .store
        .get_metadata(&id, "tkey2")
        .expect_err("no key");
    assert!(
        matches!(&err, Error::NotFound { subject: imgstore_backend::Subject::Metadata { key, .. } } if key == "tkey2"),
        "{err}"
    );
    fixture.store.set_metadata(&id, "tkey", b"one")?;
    fixture.store.set_metadata(&id, "tkey", b"two")?;
    assert_eq!(fixture.store.get_metadata(&id, "tkey")?, b"two");
    let err = fixture
        .store
        .set_metadata(&id, "../escape", b"v")
        .expect_err("bad key");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    fixture.store.delete_metadata(&id, "tkey")?;
    fixture.store.delete_metadata(&id, "tkey")?;
    assert_eq!(rows(&fixture, "metadata"), 0);
    Ok(())
}

#[test]
fn an_edited_row_is_reported_as_corruption_on_every_read() -> TestResult {
    let fixture = Fixture::new();
    let digest = fixture.store.set(b"foobar")?;
    fixture.raw().execute(
        "UPDATE content SET data = ?1 WHERE digest = ?2",
        params![&b"foobar2"[..], digest.as_str()],
    )?;
    let expected_actual = Digest::from_bytes(b"foobar2");
    match fixture.store.get(&digest) {
        Err(Error::DataCorruption { digest: d, actual }) => {
            assert_eq!(d, digest);
            assert_eq!(actual, expected_actual);
        }
        other => panic!("expected DataCorruption, got {other:?}"),
    }
    let err = fixture.store.get(&digest).expect_err("corrupt");
    assert!(err.to_string().contains("failed to verify"), "{err}");

    let mut reader = fixture.store.open_blob(&digest)?;
    let mut out = Vec::new();
    let err = backend_error(reader.read_to_end(&mut out).expect_err("corrupt stream"));
    assert!(matches!(err, Error::DataCorruption { actual, .. } if actual == expected_actual));
    Ok(())
}

#[test]
fn an_edited_blob_file_is_reported_as_corruption_on_every_read() -> TestResult {
    let fixture = Fixture::with(inline_limit(0));
    let digest = fixture.store.set(b"foobar")?;
    let file = fixture
        .store
        .blob_dir()
        .join("sha256")
        .join(digest.encoded());
    fs::write(&file, b"foobar2")?;
    assert!(matches!(
        fixture.store.get(&digest),
        Err(Error::DataCorruption { actual, .. }) if actual == Digest::from_bytes(b"foobar2")
    ));
    let mut out = Vec::new();
    let err = fixture
        .store
        .open_blob(&digest)?
        .read_to_end(&mut out)
        .expect_err("corrupt");
    assert_eq!(backend_error(err).kind(), ErrorKind::DataCorruption);
    Ok(())
}

#[test]
fn a_missing_blob_file_is_an_io_error_not_a_silent_not_found() -> TestResult {
    let fixture = Fixture::with(inline_limit(0));
    let digest = fixture.store.set(b"foobar")?;
    fs::remove_file(
        fixture
            .store
            .blob_dir()
            .join("sha256")
            .join(digest.encoded()),
    )?;
    assert!(fixture.store.contains(&digest)?);
    assert_eq!(
        fixture.store.get(&digest).map_err(|e| e.kind()),
        Err(ErrorKind::Io)
    );
    Ok(())
}

#[test]
fn open_blob_streams_inline_and_file_content_in_small_reads() -> TestResult {
    let fixture = Fixture::with(inline_limit(100_000));
    for len in [1, 4095, 100_000, 100_001, 300_000] {
        let data = bytes(len as u64, len);
        let digest = fixture.store.set(&data)?;
        let mut reader = fixture.store.open_blob(&digest)?;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out.len(), len);
        assert!(out == data, "stream of {len} bytes differs");
        assert_eq!(reader.read(&mut buf)?, 0, "end stays end");
    }
    Ok(())
}

#[test]
fn a_blob_deleted_while_streamed_is_not_found() -> TestResult {
    let fixture = Fixture::new();
    let digest = fixture.store.set(&bytes(5, 10_000))?;
    let mut reader = fixture.store.open_blob(&digest)?;
    let mut buf = [0u8; 1000];
    reader.read_exact(&mut buf)?;
    fixture.store.delete(&digest)?;
    let err = backend_error(reader.read(&mut buf).expect_err("deleted"));
    assert_eq!(err.kind(), ErrorKind::NotFound);
    Ok(())
}

#[test]
fn write_blob_checks_the_expected_digest_and_stores_nothing_on_mismatch() -> TestResult {
    for limit in [0, 1 << 20] {
        let fixture = Fixture::with(inline_limit(limit));
        let data = bytes(6, 200_000);
        let wrong = Digest::from_bytes(b"something else");
        match fixture.store.write_blob(Some(&wrong), &mut &data[..]) {
            Err(Error::DataCorruption { digest, actual }) => {
                assert_eq!(digest, wrong);
                assert_eq!(actual, Digest::from_bytes(&data));
            }
            other => panic!("expected DataCorruption, got {other:?}"),
        }
        assert_eq!(rows(&fixture, "content"), 0);
        assert!(blob_files(&fixture).is_empty());
        assert_eq!(temp_files(&fixture), 0);

        let right = Digest::from_bytes(&data);
        let info = fixture.store.write_blob(Some(&right), &mut &data[..])?;
        assert_eq!((info.digest, info.size), (right.clone(), 200_000));
        // An expected digest of another algorithm is checked with that algorithm.
        let sha512 = Algorithm::Sha512.from_bytes(&data);
        assert_eq!(
            fixture
                .store
                .write_blob(Some(&sha512), &mut &data[..])?
                .digest,
            right
        );
        assert_eq!(fixture.store.get(&right)?, data);
    }
    Ok(())
}

#[test]
fn write_blob_passes_on_the_corruption_a_source_reader_reports() -> TestResult {
    let source = Fixture::new();
    let digest = source.store.set(b"foobar")?;
    source.raw().execute(
        "UPDATE content SET data = x'00' WHERE digest = ?1",
        [digest.as_str()],
    )?;
    let target = Fixture::new();
    let err = target
        .store
        .write_blob(None, &mut source.store.open_blob(&digest)?)
        .expect_err("the source is corrupt");
    assert_eq!(err.kind(), ErrorKind::DataCorruption);
    assert_eq!(rows(&target, "content"), 0);
    Ok(())
}

#[test]
fn set_many_stores_all_items_in_order_including_files() -> TestResult {
    let fixture = Fixture::with(inline_limit(1000));
    let items: Vec<Vec<u8>> = (0..50).map(|i| bytes(i, 10 + 40 * i as usize)).collect();
    let mut refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
    refs.push(&items[40]);
    let digests = fixture.store.set_many(&refs)?;
    assert_eq!(digests.len(), 51);
    assert_eq!(digests[50], digests[40]);
    for (item, digest) in items.iter().zip(&digests) {
        assert_eq!(*digest, Digest::from_bytes(item));
        assert_eq!(&fixture.store.get(digest)?, item);
    }
    assert_eq!(rows(&fixture, "content"), 50);
    assert_eq!(
        blob_files(&fixture).len(),
        items.iter().filter(|i| i.len() > 1000).count()
    );
    Ok(())
}

#[test]
fn orphan_files_are_removed_by_gc_and_by_open_but_named_files_stay() -> TestResult {
    let fixture = Fixture::with(inline_limit(0));
    let kept = fixture.store.set(b"kept")?;
    let content_dir = fixture.store.blob_dir().join("sha256");
    let tmp_dir = fixture.store.blob_dir().join("tmp");
    // A crash after the rename and before the commit; after a delete's commit;
    // in the middle of a temp file.
    let orphan = Digest::from_bytes(b"orphan");
    fs::write(content_dir.join(orphan.encoded()), b"orphan")?;
    fs::write(tmp_dir.join(".tmp-1-1"), b"half written")?;
    fs::write(content_dir.join("not-a-digest"), b"left alone")?;

    let report = fixture.store.gc_orphan_files()?;
    assert_eq!(report.removed_files, 2);
    assert_eq!(report.removed_bytes, 6 + 12);
    assert_eq!(
        blob_files(&fixture),
        [kept.encoded().to_owned(), "not-a-digest".to_owned()]
    );
    assert_eq!(temp_files(&fixture), 0);

    fs::write(content_dir.join(orphan.encoded()), b"orphan")?;
    let fixture = fixture.reopen(inline_limit(0));
    assert!(
        !content_dir.join(orphan.encoded()).exists(),
        "open cleans too"
    );
    assert_eq!(fixture.store.get(&kept)?, b"kept");
    Ok(())
}

#[test]
fn a_file_for_content_that_is_now_inline_is_an_orphan() -> TestResult {
    let fixture = Fixture::new();
    let digest = fixture.store.set(b"inline")?;
    let file = fixture
        .store
        .blob_dir()
        .join("sha256")
        .join(digest.encoded());
    fs::write(&file, b"inline")?;
    assert_eq!(fixture.store.gc_orphan_files()?.removed_files, 1);
    assert!(!file.exists());
    assert_eq!(fixture.store.get(&digest)?, b"inline");
    Ok(())
}

#[test]
fn every_committed_file_row_has_its_file_when_seen() -> TestResult {
    // An observer polls for committed rows naming files while a writer adds
    // blobs: since the file is durable before the row commits, it must exist.
    let fixture = Fixture::with(inline_limit(0));
    let db = fixture.db();
    let blob_dir = fixture.store.blob_dir().join("sha256");
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| -> TestResult {
        let observer = scope.spawn(|| -> Result<usize, String> {
            let conn = common::raw(&db);
            let mut checked = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let mut stmt = conn
                    .prepare("SELECT digest FROM content WHERE data IS NULL")
                    .map_err(|e| e.to_string())?;
                let digests: Vec<String> = stmt
                    .query_map([], |row| row.get(0))
                    .and_then(|rows| rows.collect())
                    .map_err(|e| e.to_string())?;
                for digest in digests {
                    let hex = digest.trim_start_matches("sha256:");
                    if !blob_dir.join(hex).exists() {
                        return Err(format!("row {digest} committed without its file"));
                    }
                    checked += 1;
                }
            }
            Ok(checked)
        });
        for i in 0..200 {
            fixture.store.set(&bytes(i, 2000))?;
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let checked = observer.join().map_err(|_| "observer panicked")??;
        assert!(checked > 0);
        Ok(())
    })?;
    Ok(())
}

#[test]
fn walk_visits_each_digest_once_across_pages_and_skips_invalid_rows() -> TestResult {
    let fixture = Fixture::new();
    let items: Vec<Vec<u8>> = (0..1300).map(|i| bytes(i, 32)).collect();
    let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
    let digests = fixture.store.set_many(&refs)?;
    fixture.raw().execute(
        "INSERT INTO content (digest, size, data) VALUES ('sha256:foobar', 1, x'00')",
        [],
    )?;
    let mut seen = Vec::new();
    fixture.store.walk(&mut |digest| {
        seen.push(digest.clone());
        Ok(())
    })?;
    seen.sort();
    let mut expected = digests;
    expected.sort();
    assert_eq!(seen, expected);

    let err = fixture
        .store
        .walk(&mut |_| Err(Error::invalid_argument("what", "stop")))
        .expect_err("the callback's error stops the walk");
    assert!(err.to_string().contains("what"));
    Ok(())
}

#[test]
fn walk_callbacks_may_delete_what_they_visit() -> TestResult {
    let fixture = Fixture::with(SqliteOptions {
        pool_size: 1,
        ..SqliteOptions::default()
    });
    for i in 0..600 {
        fixture.store.set(&bytes(i, 16))?;
    }
    let store = fixture.store.clone();
    let mut visited = 0;
    fixture.store.walk(&mut |digest| {
        visited += 1;
        store.get(digest)?;
        store.delete(digest)
    })?;
    assert_eq!(visited, 600);
    assert_eq!(rows(&fixture, "content"), 0);
    Ok(())
}

#[test]
fn get_many_reads_inline_and_file_content_in_order_with_one_pooled_connection() -> TestResult {
    let fixture = Fixture::with(SqliteOptions {
        pool_size: 1,
        inline_limit: 100,
        ..SqliteOptions::default()
    });
    let small = fixture.store.set(b"small")?;
    let large = fixture.store.set(&bytes(8, 1000))?;
    let corrupt = fixture.store.set(b"corrupt me")?;
    fixture.raw().execute(
        "UPDATE content SET data = x'00' WHERE digest = ?1",
        [corrupt.as_str()],
    )?;
    let absent = Digest::from_bytes(b"absent");
    let sha512 = Algorithm::Sha512.from_bytes(b"small");
    let digests = [large.clone(), small.clone(), absent, corrupt, sha512, large];
    let got: Vec<Result<Vec<u8>, ErrorKind>> = fixture
        .store
        .get_many(&digests)
        .into_iter()
        .map(|r| r.map_err(|e| e.kind()))
        .collect();
    assert_eq!(
        got,
        [
            Ok(bytes(8, 1000)),
            Ok(b"small".to_vec()),
            Err(ErrorKind::NotFound),
            Err(ErrorKind::DataCorruption),
            Err(ErrorKind::NotFound),
            Ok(bytes(8, 1000)),
        ]
    );
    assert!(fixture.store.get_many(&[]).is_empty());
    Ok(())
}

#[test]
fn get_metadata_many_tells_a_missing_key_from_missing_content() -> TestResult {
    let fixture = Fixture::with(SqliteOptions {
        pool_size: 1,
        ..SqliteOptions::default()
    });
    let a = fixture.store.set(b"a")?;
    let b = fixture.store.set(b"b")?;
    fixture.store.set_metadata(&a, "parent", b"p")?;
    let absent = Digest::from_bytes(b"absent");
    let got = fixture
        .store
        .get_metadata_many(&[a.clone(), b.clone(), absent.clone()], "parent");
    assert_eq!(got[0].as_deref().ok(), Some(&b"p"[..]));
    assert!(
        matches!(&got[1], Err(Error::NotFound { subject: imgstore_backend::Subject::Metadata { key, .. } }) if key == "parent")
    );
    assert!(
        matches!(&got[2], Err(Error::NotFound { subject: imgstore_backend::Subject::Content(d) }) if *d == absent)
    );
    let refused = fixture.store.get_metadata_many(&[a, b], "../x");
    assert_eq!(refused.len(), 2);
    assert!(
        refused
            .iter()
            .all(|r| matches!(r, Err(e) if e.kind() == ErrorKind::InvalidArgument))
    );
    Ok(())
}
