//! The database schema as an ordered list of forward migrations.
//!
//! Each store lives in its own PostgreSQL schema (see
//! [`PostgresOptions::schema`](crate::PostgresOptions::schema)); its table
//! `schema_version` holds one row, the number of the last migration
//! applied (a schema without the table is version 0). Opening applies every
//! newer step in one transaction under a transaction-level advisory lock,
//! so several nodes opening one old store at once migrate it once. A store
//! whose version is newer than [`SCHEMA_VERSION`] is refused and left
//! untouched. Steps are never edited once released: a change is a new step.

use imgstore_backend::{Error, Result, Subject};
use postgres::Client;
use postgres::error::SqlState;

use crate::error::pg_error;

/// One step from version `version - 1` to `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// The version the store has after this step.
    pub version: u32,
    /// What the step adds, in a few words.
    pub summary: &'static str,
    /// The statements, run in the migrating transaction with the store's
    /// schema first on the `search_path`.
    pub sql: &'static str,
}

/// The version this build creates and understands.
pub const SCHEMA_VERSION: u32 = 2;

/// Every step, oldest first; `MIGRATIONS[i].version == i + 1`.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        summary: "content by digest, chunks of large blobs, per-digest metadata",
        sql: r#"
            -- A blob of up to one chunk (1 MiB) is `data` of its row; a
            -- larger one is NULL there and lives in `chunks` under `blob_id`.
            -- `C` collation: digests compare bytewise, as walk's pages need.
            CREATE TABLE content (
                digest  text COLLATE "C" PRIMARY KEY,
                size    bigint NOT NULL CHECK (size > 0),
                data    bytea,
                blob_id bigint UNIQUE,
                CHECK ((data IS NULL) <> (blob_id IS NULL))
            );
            -- Content is hashed, mostly compressed: TOAST compression would
            -- only cost time.
            ALTER TABLE content ALTER COLUMN data SET STORAGE EXTERNAL;
            CREATE SEQUENCE blob_ids;
            CREATE TABLE chunks (
                blob_id bigint NOT NULL,
                seq     integer NOT NULL,
                data    bytea NOT NULL,
                PRIMARY KEY (blob_id, seq)
            );
            ALTER TABLE chunks ALTER COLUMN data SET STORAGE EXTERNAL;
            CREATE TABLE metadata (
                digest text COLLATE "C" NOT NULL
                    REFERENCES content (digest) ON DELETE CASCADE,
                key    text COLLATE "C" NOT NULL,
                value  bytea NOT NULL,
                PRIMARY KEY (digest, key)
            );
        "#,
    },
    Migration {
        version: 2,
        summary: "records (buckets of key -> bytes) and the change counter",
        sql: r#"
            -- Keys as bytea: ordered bytewise whatever the database's collation.
            CREATE TABLE records (
                bucket text COLLATE "C" NOT NULL,
                key    bytea NOT NULL,
                value  bytea NOT NULL,
                PRIMARY KEY (bucket, key)
            );
            -- Every batch adds one to one slot, in its own transaction; the
            -- sum changes with every commit. Slots spread the row locks of
            -- concurrent writers (a single row would serialise every batch).
            CREATE TABLE change_counter (
                slot  integer PRIMARY KEY,
                value bigint NOT NULL
            );
            INSERT INTO change_counter SELECT slot, 0 FROM generate_series(0, 15) AS slot;
        "#,
    },
];

/// Slots of the `change_counter` table (see migration 2).
pub(crate) const COUNTER_SLOTS: u64 = 16;

/// The advisory lock key migrations of any imgstore schema take
/// ("IMGSMIGR" in ASCII).
const MIGRATION_LOCK: i64 = 0x494D_4753_4D49_4752;

/// The version of `schema`: 0 when it or its version table does not
/// exist. One round trip: every open of a current store pays for it.
pub(crate) fn read_version(client: &mut Client, schema: &str, subject: &Subject) -> Result<u32> {
    let read = client
        .query_typed_one(&format!("SELECT version FROM {schema}.schema_version"), &[])
        .and_then(|row| row.try_get::<_, i32>(0));
    let version = match read {
        Ok(version) => version,
        Err(e)
            if e.code() == Some(&SqlState::UNDEFINED_TABLE)
                || e.code() == Some(&SqlState::INVALID_SCHEMA_NAME) =>
        {
            return Ok(0);
        }
        Err(e) => return Err(pg_error("read schema version of", subject.clone(), e)),
    };
    u32::try_from(version).map_err(|_| Error::FailedPrecondition {
        subject: subject.clone(),
        reason: format!("has an invalid schema version {version}"),
    })
}

/// `FailedPrecondition` for a store of a newer imgstore.
fn check_not_newer(version: u32, subject: &Subject) -> Result<()> {
    if version > SCHEMA_VERSION {
        return Err(Error::FailedPrecondition {
            subject: subject.clone(),
            reason: format!(
                "has schema version {version}, newer than the {SCHEMA_VERSION} this imgstore \
                 understands; open it with a newer imgstore (the database was not changed)"
            ),
        });
    }
    Ok(())
}

/// Brings `schema` to version `target` (creating it when missing); returns
/// the version it had. `target` is [`SCHEMA_VERSION`] except in the tests
/// that build an old store to migrate.
pub(crate) fn migrate(
    client: &mut Client,
    schema: &str,
    target: u32,
    subject: &Subject,
) -> Result<u32> {
    let current = read_version(client, schema, subject)?;
    check_not_newer(current, subject)?;
    if current >= target {
        return Ok(current);
    }
    let fail = |e| pg_error("migrate schema of", subject.clone(), e);
    let mut tx = client.transaction().map_err(fail)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(fail)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         SET LOCAL search_path TO {schema};
         CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL);
         INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version);"
    ))
    .map_err(fail)?;
    // Read again under the lock: another node may have migrated meanwhile.
    let from: i32 = tx
        .query_one("SELECT version FROM schema_version", &[])
        .and_then(|row| row.try_get(0))
        .map_err(fail)?;
    let from = u32::try_from(from).unwrap_or(u32::MAX);
    check_not_newer(from, subject)?;
    for step in MIGRATIONS
        .iter()
        .filter(|step| step.version > from && step.version <= target)
    {
        tx.batch_execute(step.sql).map_err(fail)?;
        tx.execute(
            "UPDATE schema_version SET version = $1",
            &[&(step.version as i32)],
        )
        .map_err(fail)?;
    }
    tx.commit().map_err(fail)?;
    Ok(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_up_to_the_schema_version() {
        for (index, step) in MIGRATIONS.iter().enumerate() {
            assert_eq!(step.version as usize, index + 1, "{}", step.summary);
        }
        assert_eq!(MIGRATIONS.len() as u32, SCHEMA_VERSION);
    }
}
