//! The one place where SQLite, pool and file-system failures become [`Error`]s.

use std::io;

use imgstore_backend::{Error, Subject};
use rusqlite::ErrorCode;

/// An SQLite failure as `Error::Io`; a busy or locked database (after
/// `busy_timeout`) is retryable, everything else is not.
pub(crate) fn sql_error(operation: &'static str, subject: Subject, e: rusqlite::Error) -> Error {
    let retryable = matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    );
    Error::Io {
        operation,
        subject,
        source: io::Error::other(e),
        retryable,
    }
}

/// No pooled connection became free in time: as busy as a locked database.
pub(crate) fn pool_error(subject: Subject, e: r2d2::Error) -> Error {
    pool_timeout(subject, e.to_string())
}

/// [`pool_error`] from the pool's message, for reporting one failure per item.
pub(crate) fn pool_timeout(subject: Subject, message: String) -> Error {
    Error::Io {
        operation: "take a pooled connection",
        subject,
        source: io::Error::new(io::ErrorKind::TimedOut, message),
        retryable: true,
    }
}

/// An `io::Error` that came out of a caller's reader: when it carries one of
/// our own errors (a [`BlobReader`](imgstore_backend::BlobReader) of another
/// store that found corruption), that error is passed on unchanged.
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
