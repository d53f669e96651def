//! Fixtures shared by the integration tests: a store in a temp dir, and a raw
//! SQLite connection to the same file for looking behind the backend's back.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use imgstore_sqlite::{SqliteBackend, SqliteOptions};
use rusqlite::Connection;
use tempfile::TempDir;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A store in a fresh temp dir; keep `dir` alive as long as the store.
pub struct Fixture {
    pub dir: TempDir,
    pub store: SqliteBackend,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::with(SqliteOptions::default())
    }

    pub fn with(options: SqliteOptions) -> Fixture {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = SqliteBackend::open_with(db_path(dir.path()), options).expect("open the store");
        Fixture { dir, store }
    }

    pub fn db(&self) -> PathBuf {
        db_path(self.dir.path())
    }

    pub fn raw(&self) -> Connection {
        raw(&self.db())
    }

    pub fn reopen(self, options: SqliteOptions) -> Fixture {
        let Fixture { dir, store } = self;
        drop(store);
        let store =
            SqliteBackend::open_with(db_path(dir.path()), options).expect("reopen the store");
        Fixture { dir, store }
    }
}

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("imgstore.db")
}

/// A plain connection, as the sqlite3 shell would open it.
pub fn raw(db: &Path) -> Connection {
    let conn = Connection::open(db).expect("open the database directly");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .expect("set busy_timeout");
    conn
}

/// Options that put every blob larger than `limit` bytes in a file.
pub fn inline_limit(limit: u64) -> SqliteOptions {
    SqliteOptions {
        inline_limit: limit,
        ..SqliteOptions::default()
    }
}

/// Deterministic bytes of length `len`, different for each `seed`.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// The conformance kit's view of the SQLite backend: the database is
/// `<dir>/imgstore.db`, damage is done with a plain SQLite connection (or to
/// the blob file, for content stored beside the database).
#[derive(Debug, Clone, Copy)]
pub struct Sqlite {
    /// [`SqliteOptions::inline_limit`] of the store.
    pub inline_limit: u64,
}

impl Sqlite {
    /// The default options: blobs up to 256 KiB inline.
    pub const DEFAULT: Sqlite = Sqlite {
        inline_limit: 256 * 1024,
    };
    /// Every blob in a file beside the database.
    pub const FILES: Sqlite = Sqlite { inline_limit: 0 };
    /// Configs inline, most streamed blobs (4 KiB and up) in files.
    pub const MIXED: Sqlite = Sqlite {
        inline_limit: 8 * 1024,
    };
}

impl imgstore_backend::testkit::Harness for Sqlite {
    type Backend = SqliteBackend;

    fn open(&self, dir: &Path) -> imgstore_backend::Result<SqliteBackend> {
        SqliteBackend::open_with(db_path(dir), inline_limit(self.inline_limit))
    }

    fn corrupt(
        &self,
        dir: &Path,
        backend: &SqliteBackend,
        digest: &imgstore_digest::Digest,
        bytes: &[u8],
    ) {
        let conn = raw(&db_path(dir));
        let in_file: bool = conn
            .query_row(
                "SELECT data IS NULL FROM content WHERE digest = ?1",
                [digest.as_str()],
                |row| row.get(0),
            )
            .expect("the content to corrupt is stored");
        if in_file {
            let path = backend.blob_dir().join("sha256").join(digest.encoded());
            std::fs::write(&path, bytes).expect("overwrite the blob file");
        } else {
            conn.execute(
                "UPDATE content SET data = ?1 WHERE digest = ?2",
                rusqlite::params![bytes, digest.as_str()],
            )
            .expect("overwrite the row");
        }
    }

    fn plant_invalid_entry(&self, dir: &Path, backend: &SqliteBackend) {
        raw(&db_path(dir))
            .execute(
                "INSERT INTO content (digest, size, data) VALUES ('sha256:foobar', 1, x'78')",
                [],
            )
            .expect("insert a row with an invalid digest");
        std::fs::write(backend.blob_dir().join("sha256/foobar"), b"x")
            .expect("write a blob file with an invalid name");
    }
}
