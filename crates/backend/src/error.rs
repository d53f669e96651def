//! One error type for every backend, with containerd's error kinds.

use std::fmt;
use std::io;

use imgstore_digest::Digest;

/// The thing an [`Error`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Subject {
    /// Content stored under a digest.
    Content(Digest),
    /// One metadata key of a digest.
    Metadata {
        /// The content the key belongs to.
        digest: Digest,
        /// The key.
        key: String,
    },
    /// One record of a bucket.
    Record {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// The store as a whole (its root, its database, its lock).
    Store(String),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Content(digest) => write!(f, "content {digest}"),
            Subject::Metadata { digest, key } => write!(f, "metadata {key:?} of {digest}"),
            Subject::Record { bucket, key } => write!(f, "record {key:?} in bucket {bucket:?}"),
            Subject::Store(what) => f.write_str(what),
        }
    }
}

/// The kind of an [`Error`]: containerd's errdefs, which a caller matches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The subject does not exist.
    NotFound,
    /// The subject exists and the call required that it did not.
    AlreadyExists,
    /// The call's arguments are unusable (empty data, a key that escapes the root).
    InvalidArgument,
    /// The store is not in a state that allows the call (locked, in use).
    FailedPrecondition,
    /// A concurrent change got there first; re-reading and retrying may succeed.
    Conflict,
    /// Stored bytes no longer hash to their digest.
    DataCorruption,
    /// The operating system or database failed.
    Io,
}

/// A backend failure. Every variant names what it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`ErrorKind::NotFound`].
    #[error("{subject} not found")]
    NotFound {
        /// What was missing.
        subject: Subject,
    },
    /// See [`ErrorKind::AlreadyExists`].
    #[error("{subject} already exists")]
    AlreadyExists {
        /// What was there already.
        subject: Subject,
    },
    /// See [`ErrorKind::InvalidArgument`].
    #[error("invalid argument {argument:?}: {reason}")]
    InvalidArgument {
        /// The argument refused, shortened.
        argument: String,
        /// Why.
        reason: String,
    },
    /// See [`ErrorKind::FailedPrecondition`].
    #[error("{subject}: {reason}")]
    FailedPrecondition {
        /// What the precondition is about.
        subject: Subject,
        /// What did not hold.
        reason: String,
    },
    /// See [`ErrorKind::Conflict`].
    #[error("conflict on {subject}: {reason}")]
    Conflict {
        /// What changed under the caller.
        subject: Subject,
        /// How.
        reason: String,
    },
    /// See [`ErrorKind::DataCorruption`].
    #[error("failed to verify {digest}: stored bytes hash to {actual}")]
    DataCorruption {
        /// The digest the bytes are stored under.
        digest: Digest,
        /// What they hash to now.
        actual: Digest,
    },
    /// See [`ErrorKind::Io`].
    #[error("{operation} {subject}: {source}")]
    Io {
        /// What was being done ("write", "fsync", "open database", ...).
        operation: &'static str,
        /// What it was done to.
        subject: Subject,
        /// The underlying failure (an SQLite error arrives wrapped in `io::Error`).
        #[source]
        source: io::Error,
        /// True when the same call may succeed if repeated (busy database,
        /// interrupted system call); false when it will fail again.
        retryable: bool,
    },
}

impl Error {
    /// The kind, for matching without caring about the details.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            Error::FailedPrecondition { .. } => ErrorKind::FailedPrecondition,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::DataCorruption { .. } => ErrorKind::DataCorruption,
            Error::Io { .. } => ErrorKind::Io,
        }
    }

    /// True when repeating the call may succeed (a conflict, a busy database,
    /// a lock held by another process).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Conflict { .. } => true,
            Error::Io { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// `NotFound` for content.
    pub fn content_not_found(digest: &Digest) -> Error {
        Error::NotFound {
            subject: Subject::Content(digest.clone()),
        }
    }

    /// `InvalidArgument` with the argument shortened to 150 bytes.
    pub fn invalid_argument(argument: &str, reason: impl Into<String>) -> Error {
        Error::InvalidArgument {
            argument: imgstore_digest::shorten(argument),
            reason: reason.into(),
        }
    }

    /// `Io` that a retry will not fix.
    pub fn io(operation: &'static str, subject: Subject, source: io::Error) -> Error {
        let retryable = matches!(
            source.kind(),
            io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        );
        Error::Io {
            operation,
            subject,
            source,
            retryable,
        }
    }
}

impl From<Error> for io::Error {
    /// Lets a backend error travel through `io::Read` (see `BlobReader`);
    /// recover it with `io::Error::into_inner` and `downcast`.
    fn from(e: Error) -> io::Error {
        let kind = match e.kind() {
            ErrorKind::NotFound => io::ErrorKind::NotFound,
            ErrorKind::DataCorruption => io::ErrorKind::InvalidData,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}
