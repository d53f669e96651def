//! The database schema as an ordered list of forward migrations.
//!
//! `PRAGMA user_version` holds the number of the last migration applied; an
//! empty database is version 0. Opening applies every newer step in one
//! `BEGIN IMMEDIATE` transaction, so two processes opening an old database at
//! once migrate it once. A database whose version is newer than
//! [`SCHEMA_VERSION`] is refused and left untouched. Steps are never edited
//! once released: a change is a new step.

use imgstore_backend::{Error, Result, Subject};
use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use crate::error::sql_error;

/// One step from version `version - 1` to `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// The version the database has after this step.
    pub version: u32,
    /// What the step adds, in a few words.
    pub summary: &'static str,
    /// The statements, run in the migrating transaction.
    pub sql: &'static str,
}

/// `PRAGMA application_id` of an imgstore database: "IMGS" in ASCII.
pub const APPLICATION_ID: i32 = 0x494D_4753;

/// The version this build creates and understands.
pub const SCHEMA_VERSION: u32 = 2;

/// Every step, oldest first; `MIGRATIONS[i].version == i + 1`.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        summary: "content by digest and per-digest metadata",
        sql: "
            PRAGMA application_id = 1229801299;
            -- `data` holds the bytes, or NULL when they live in the file
            -- <db>.blobs/sha256/<hex>; a rowid table so that open_blob can
            -- stream `data` with incremental BLOB I/O.
            CREATE TABLE content (
                id     INTEGER PRIMARY KEY,
                digest TEXT    NOT NULL UNIQUE,
                size   INTEGER NOT NULL CHECK (size > 0),
                data   BLOB
            );
            CREATE TABLE metadata (
                digest TEXT NOT NULL REFERENCES content (digest) ON DELETE CASCADE,
                key    TEXT NOT NULL,
                value  BLOB NOT NULL,
                PRIMARY KEY (digest, key)
            ) WITHOUT ROWID;
        ",
    },
    Migration {
        version: 2,
        summary: "records: buckets of key -> bytes",
        sql: "
            CREATE TABLE records (
                bucket TEXT NOT NULL,
                key    TEXT NOT NULL,
                value  BLOB NOT NULL,
                PRIMARY KEY (bucket, key)
            ) WITHOUT ROWID;
        ",
    },
];

/// Refuses a database this build must not touch: a newer schema, another
/// application's database, a file that is not SQLite. Reads only.
pub(crate) fn check_openable(conn: &Connection, subject: &Subject) -> Result<u32> {
    let read = |pragma: &str| -> Result<i64> {
        conn.pragma_query_value(None, pragma, |row| row.get(0))
            .map_err(|e| match e.sqlite_error_code() {
                Some(ErrorCode::NotADatabase) => Error::FailedPrecondition {
                    subject: subject.clone(),
                    reason: "is not an SQLite database".to_owned(),
                },
                _ => sql_error("read schema version of", subject.clone(), e),
            })
    };
    let version = read("user_version")?;
    let application_id = read("application_id")?;
    if application_id != 0 && application_id != i64::from(APPLICATION_ID) {
        return Err(Error::FailedPrecondition {
            subject: subject.clone(),
            reason: format!(
                "belongs to another application (application_id {application_id:#x}), not imgstore"
            ),
        });
    }
    let version = u32::try_from(version).map_err(|_| Error::FailedPrecondition {
        subject: subject.clone(),
        reason: format!("has an invalid schema version {version}"),
    })?;
    if version > SCHEMA_VERSION {
        return Err(Error::FailedPrecondition {
            subject: subject.clone(),
            reason: format!(
                "has schema version {version}, newer than the {SCHEMA_VERSION} this imgstore \
                 understands; open it with a newer imgstore (the database was not changed)"
            ),
        });
    }
    if version == 0 {
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
                [],
                |row| row.get(0),
            )
            .map_err(|e| sql_error("read schema of", subject.clone(), e))?;
        if tables > 0 {
            return Err(Error::FailedPrecondition {
                subject: subject.clone(),
                reason: "holds tables but no imgstore schema version; not an imgstore database"
                    .to_owned(),
            });
        }
    }
    Ok(version)
}

/// Brings the database to [`SCHEMA_VERSION`]; returns the version it had.
pub(crate) fn migrate(conn: &mut Connection, subject: &Subject) -> Result<u32> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| sql_error("lock for migration", subject.clone(), e))?;
    // Checked again under the write lock: another process may have migrated.
    let from = check_openable(&tx, subject)?;
    for step in MIGRATIONS.iter().filter(|step| step.version > from) {
        tx.execute_batch(step.sql)
            .and_then(|()| tx.pragma_update(None, "user_version", step.version))
            .map_err(|e| sql_error("migrate schema of", subject.clone(), e))?;
    }
    tx.commit()
        .map_err(|e| sql_error("commit migration of", subject.clone(), e))?;
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

    #[test]
    fn application_id_in_the_first_step_is_the_constant() {
        assert!(
            MIGRATIONS[0]
                .sql
                .contains(&format!("application_id = {APPLICATION_ID};"))
        );
    }
}
