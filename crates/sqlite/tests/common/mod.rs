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
