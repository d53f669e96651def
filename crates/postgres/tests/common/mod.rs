//! Shared by the integration tests: the test binary's PostgreSQL server, one
//! database for the tests that need only a schema each, and a harness that
//! maps the conformance kit's directories onto schemas.

#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;

use imgstore_backend::testkit::Harness;
use imgstore_digest::Digest;
use imgstore_postgres::testserver::TestServer;
use imgstore_postgres::{PostgresBackend, PostgresOptions};

/// The URL of the database shared by this binary's schema-per-test tests.
pub fn shared_database() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| TestServer::shared().create_database())
}

/// A schema name of its own for the store "in" `dir`: the same for the
/// same directory, so reopening finds the store.
pub fn schema_for(dir: &Path) -> String {
    let digest = Digest::from_bytes(dir.as_os_str().as_encoded_bytes());
    format!("t_{}", &digest.encoded()[..20])
}

/// A plain connection to the shared database with `schema` first on the path.
pub fn raw(schema: &str) -> postgres::Client {
    let url = format!("{} options='-c search_path={schema}'", shared_database());
    postgres::Client::connect(&url, postgres::NoTls).expect("a raw connection")
}

/// A fresh store in a schema of its own.
pub fn fresh_store() -> (String, PostgresBackend) {
    let schema = format!(
        "t_{}",
        &Digest::from_bytes(format!("{:?}", std::time::Instant::now()).as_bytes()).encoded()[..20]
    );
    let store =
        PostgresBackend::open_with(shared_database(), PostgresOptions::with_schema(&schema))
            .expect("open a fresh store");
    (schema, store)
}

/// The conformance kit's harness: each directory is a schema of the shared database.
pub struct Postgres;

impl Harness for Postgres {
    type Backend = PostgresBackend;

    fn open(&self, dir: &Path) -> imgstore_backend::Result<PostgresBackend> {
        PostgresBackend::open_with(
            shared_database(),
            PostgresOptions::with_schema(&schema_for(dir)),
        )
    }

    fn corrupt(&self, dir: &Path, _: &PostgresBackend, digest: &Digest, bytes: &[u8]) {
        let mut client = raw(&schema_for(dir));
        client
            .execute(
                "UPDATE content SET data = $2 WHERE digest = $1 AND data IS NOT NULL",
                &[&digest.as_str(), &bytes],
            )
            .expect("corrupt inline content");
        // Chunked content: its first chunk becomes the bytes, the rest go.
        client
            .execute(
                "DELETE FROM chunks WHERE seq > 0
                 AND blob_id = (SELECT blob_id FROM content WHERE digest = $1)",
                &[&digest.as_str()],
            )
            .expect("corrupt chunks");
        client
            .execute(
                "UPDATE chunks SET data = $2
                 WHERE blob_id = (SELECT blob_id FROM content WHERE digest = $1)",
                &[&digest.as_str(), &bytes],
            )
            .expect("corrupt chunks");
    }

    fn plant_invalid_entry(&self, dir: &Path, _: &PostgresBackend) {
        raw(&schema_for(dir))
            .batch_execute("INSERT INTO content (digest, size, data) VALUES ('foobar', 1, 'x')")
            .expect("plant an invalid entry");
    }

    fn first_sync_of_a_large_write(&self) -> &'static str {
        "postgres: write a chunk"
    }
}
