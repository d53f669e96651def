//! The one place where PostgreSQL and pool failures become [`Error`]s, and
//! the rule for which of them a retry can fix.

use std::io;

use imgstore_backend::{Error, Subject};
use postgres::error::SqlState;

/// True when the same call may succeed on a new attempt: the connection
/// was lost or refused (the server restarting, a fail-over), the server is
/// shutting down or starting, or the transaction lost a serialization or
/// deadlock race. Everything else (a constraint, a syntax error, a
/// permission) fails again.
pub(crate) fn is_transient(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // No server answer at all (connect refused, reset, EOF): an I/O failure.
        None => e.as_db_error().is_none(),
        Some(code) => {
            code.code().starts_with("08") // connection exception
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::TOO_MANY_CONNECTIONS
        }
    }
}

/// A PostgreSQL failure as `Error::Io`, retryable when [`is_transient`].
pub(crate) fn pg_error(operation: &'static str, subject: Subject, e: postgres::Error) -> Error {
    let retryable = is_transient(&e);
    Error::Io {
        operation,
        subject,
        source: io::Error::other(e),
        retryable,
    }
}

/// No pooled connection could be had in time (the server is down or every
/// connection is busy): retryable.
pub(crate) fn pool_error(subject: Subject, e: &r2d2::Error) -> Error {
    Error::Io {
        operation: "connect to",
        subject,
        source: io::Error::new(io::ErrorKind::TimedOut, e.to_string()),
        retryable: true,
    }
}

/// An `io::Error` that came out of a caller's reader: one of our own errors
/// inside it (a verifying reader of another store that found corruption)
/// is passed on unchanged.
pub(crate) fn input_error(subject: Subject, e: io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        let kind = e.kind();
        if let Some(inner) = e.into_inner()
            && let Ok(ours) = inner.downcast::<Error>()
        {
            return *ours;
        }
        return Error::io("read input", subject, io::Error::from(kind));
    }
    Error::io("read input", subject, e)
}

/// What one attempt of a call failed with, and whether the call may run
/// again: not after a `COMMIT` whose answer was lost, whose outcome is unknown.
pub(crate) struct Failed {
    pub(crate) error: Error,
    pub(crate) may_retry: bool,
}

impl From<Error> for Failed {
    /// A decided failure (a precondition, a missing digest): never retried.
    fn from(error: Error) -> Failed {
        Failed {
            error,
            may_retry: false,
        }
    }
}

/// `.pg(operation, subject)` on a PostgreSQL result: a transient failure
/// may be retried.
pub(crate) trait PgResultExt<T> {
    fn pg(self, operation: &'static str, subject: impl FnOnce() -> Subject) -> Result<T, Failed>;
    /// For `COMMIT`: a lost answer leaves the outcome unknown, so the call
    /// fails (retryable for the caller, who can re-read and decide) rather
    /// than run again.
    fn at_commit(self, subject: impl FnOnce() -> Subject) -> Result<T, Failed>;
}

impl<T> PgResultExt<T> for Result<T, postgres::Error> {
    fn pg(self, operation: &'static str, subject: impl FnOnce() -> Subject) -> Result<T, Failed> {
        self.map_err(|e| {
            let error = pg_error(operation, subject(), e);
            let may_retry = error.is_retryable();
            Failed { error, may_retry }
        })
    }

    fn at_commit(self, subject: impl FnOnce() -> Subject) -> Result<T, Failed> {
        self.map_err(|e| Failed {
            error: pg_error("commit (outcome unknown) on", subject(), e),
            may_retry: false,
        })
    }
}
