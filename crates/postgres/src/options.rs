//! How a database is opened: which schema, how many connections, how long
//! to keep retrying through a connection loss.

use std::time::Duration;

use imgstore_backend::{Error, Result};

/// Options of [`PostgresBackend::open_with`](crate::PostgresBackend::open_with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The PostgreSQL schema (namespace of tables) the store lives in, so
    /// several stores share one database: lower-case ASCII letters, digits
    /// and `_`, starting with a letter or `_`, at most 63 bytes. `imgstore`
    /// by default.
    pub schema: String,
    /// Connections the pool keeps at most (8 by default).
    pub pool_size: u32,
    /// How long one connection attempt may take (10 s by default).
    pub connect_timeout: Duration,
    /// How long a call keeps retrying while the server is unreachable or
    /// restarting (a lost connection, `57P01 admin_shutdown`, a
    /// serialization failure) before it fails with a retryable `Io` error:
    /// 30 s by default, enough for a `pg_ctl restart` or a fail-over.
    pub retry_for: Duration,
    /// PostgreSQL's `synchronous_commit` for this store's sessions. `true`
    /// (the default): a call returns once its commit is flushed to the
    /// server's disk, so it survives any crash, the server's included.
    /// `false`: the server flushes a moment later (at most three times
    /// `wal_writer_delay`, 600 ms by default), like SQLite's `NORMAL`: a
    /// crash of a client loses nothing, a crash of the server may lose the
    /// last commits (never part of one), and a single client commits about
    /// four times as many batches a second (docs/ARCHITECTURE.md).
    pub synchronous_commit: bool,
}

impl Default for PostgresOptions {
    fn default() -> PostgresOptions {
        PostgresOptions {
            schema: "imgstore".to_owned(),
            pool_size: 8,
            connect_timeout: Duration::from_secs(10),
            retry_for: Duration::from_secs(30),
            synchronous_commit: true,
        }
    }
}

impl PostgresOptions {
    /// These options with another schema.
    pub fn with_schema(schema: &str) -> PostgresOptions {
        PostgresOptions {
            schema: schema.to_owned(),
            ..PostgresOptions::default()
        }
    }

    /// `InvalidArgument` naming the first unusable option.
    pub fn validate(&self) -> Result<()> {
        validate_schema(&self.schema)?;
        if self.pool_size == 0 {
            return Err(Error::invalid_argument("pool_size", "must be at least 1"));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::invalid_argument(
                "connect_timeout",
                "must be more than zero",
            ));
        }
        Ok(())
    }
}

/// A schema name the backend can splice into SQL without quoting.
pub(crate) fn validate_schema(schema: &str) -> Result<()> {
    let mut chars = schema.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !first_ok || !rest_ok || schema.len() > 63 || schema.starts_with("pg_") {
        return Err(Error::invalid_argument(
            schema,
            "a schema name is lower-case ASCII letters, digits and `_`, starts with a \
             letter or `_`, does not start with `pg_` and has at most 63 bytes",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["imgstore", "imgstore_content", "_x", "a1"] {
            assert!(validate_schema(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Imgstore",
            "1a",
            "a-b",
            "a;drop",
            "pg_catalog",
            &"a".repeat(64),
        ] {
            assert!(validate_schema(bad).is_err(), "{bad}");
        }
    }
}
