//! `get_many` / `get_metadata_many` on large batches take the scanning path;
//! they must answer exactly as one `get` / `get_metadata` per digest would.

use imgstore_backend::{ErrorKind, StoreBackend, Subject};
use imgstore_digest::Digest;
use imgstore_sqlite::{SqliteBackend, SqliteOptions};

#[test]
fn large_batches_answer_like_single_reads() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        inline_limit: 64,
        ..SqliteOptions::default()
    };
    let backend = SqliteBackend::open_with(dir.path().join("bulk.db"), options).unwrap();
    let mut digests = Vec::new();
    for n in 0..400 {
        // Every tenth blob is over the inline limit, so it lives in a file.
        let data = if n % 10 == 0 {
            format!("{n:>100}")
        } else {
            format!("blob {n}")
        };
        let digest = backend.set(data.as_bytes()).unwrap();
        if n % 3 == 0 {
            backend
                .set_metadata(&digest, "parent", format!("p{n}").as_bytes())
                .unwrap();
        }
        digests.push(digest);
    }
    digests.push(Digest::from_bytes(b"never stored"));
    digests.push(digests[7].clone()); // asked twice
    let conn = rusqlite::Connection::open(dir.path().join("bulk.db")).unwrap();
    conn.execute(
        "UPDATE content SET data = x'00' WHERE digest = ?1",
        [digests[5].as_str()],
    )
    .unwrap();
    drop(conn);

    let many = backend.get_many(&digests);
    let metadata = backend.get_metadata_many(&digests, "parent");
    assert_eq!(many.len(), digests.len());
    for ((digest, bulk), meta) in digests.iter().zip(&many).zip(&metadata) {
        match (bulk, backend.get(digest)) {
            (Ok(a), Ok(b)) => assert_eq!(a, &b),
            (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind(), "{digest}"),
            (a, b) => panic!("{digest}: bulk {a:?}, single {b:?}"),
        }
        match (meta, backend.get_metadata(digest, "parent")) {
            (Ok(a), Ok(b)) => assert_eq!(a, &b),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{digest}"),
            (a, b) => panic!("{digest}: bulk {a:?}, single {b:?}"),
        }
    }
    assert_eq!(
        many[5].as_ref().unwrap_err().kind(),
        ErrorKind::DataCorruption
    );
    assert_eq!(many[400].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(many[401].as_ref().unwrap(), b"blob 7");
    assert_eq!(metadata[3].as_ref().unwrap(), b"p3");
    assert!(matches!(
        metadata[4].as_ref().unwrap_err(),
        imgstore_backend::Error::NotFound {
            subject: Subject::Metadata { .. }
        }
    ));
}
