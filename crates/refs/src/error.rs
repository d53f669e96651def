//! Errors of the refs store.

use imgstore_backend::ErrorKind;
use imgstore_digest::Digest;

use crate::filters::FilterError;

/// A refs store failure; [`kind`](RefsError::kind) maps it onto containerd's
/// error kinds (those of [`imgstore_backend::ErrorKind`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefsError {
    /// No namespace given (containerd: "namespace is required").
    #[error("namespace is required")]
    NamespaceRequired,
    /// A namespace that is not a containerd identifier.
    #[error("namespace validation: identifier {namespace:?} {reason}")]
    InvalidNamespace {
        /// The refused namespace, shortened.
        namespace: String,
        /// Why.
        reason: String,
    },
    /// No record of this name in the namespace.
    #[error("image {name:?} in namespace {namespace:?}: not found")]
    NotFound {
        /// The namespace searched.
        namespace: String,
        /// The name asked for.
        name: String,
    },
    /// `create` of a name that is already taken.
    #[error("image {name:?} in namespace {namespace:?}: already exists")]
    AlreadyExists {
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
    },
    /// A conditional delete whose expected target is not the stored one
    /// (`NotFound`, as in containerd).
    #[error("image {name:?} has target {stored}, not {expected}: not found")]
    TargetMismatch {
        /// The record.
        name: String,
        /// Its stored target digest.
        stored: Digest,
        /// The digest the caller required.
        expected: Digest,
    },
    /// A record that cannot be stored: empty name, empty media type, size ≤ 0.
    #[error("image {name:?}: {reason}")]
    InvalidRecord {
        /// The record's name, shortened.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A label whose key and value together exceed 4096 bytes.
    #[error(
        "label key and value length ({size} bytes) greater than maximum size (4096 bytes), key: {key}"
    )]
    LabelTooLong {
        /// The first 10 characters of the key.
        key: String,
        /// Key and value length together.
        size: usize,
    },
    /// `update` with a field path it does not know.
    #[error("cannot update {path:?} field on image {name:?}")]
    InvalidFieldPath {
        /// The record.
        name: String,
        /// The refused path.
        path: String,
    },
    /// A list filter that does not parse.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// A stored record that does not decode.
    #[error("stored record {key:?} is corrupt: {reason}")]
    Corrupt {
        /// Its record key (`<namespace>/<name>`).
        key: String,
        /// What did not decode.
        reason: String,
    },
    /// The record changed (or was created or removed) between the read and
    /// the write of a change, by another writer: nothing was written. Read
    /// again and retry.
    #[error("image {name:?} in namespace {namespace:?} was changed by another writer meanwhile")]
    Conflict {
        /// The namespace.
        namespace: String,
        /// The record.
        name: String,
    },
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] imgstore_backend::Error),
}

impl RefsError {
    /// The kind, in the backend's (containerd's) terms.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RefsError::NamespaceRequired => ErrorKind::FailedPrecondition,
            RefsError::NotFound { .. } | RefsError::TargetMismatch { .. } => ErrorKind::NotFound,
            RefsError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            RefsError::InvalidNamespace { .. }
            | RefsError::InvalidRecord { .. }
            | RefsError::LabelTooLong { .. }
            | RefsError::InvalidFieldPath { .. }
            | RefsError::Filter(_) => ErrorKind::InvalidArgument,
            RefsError::Corrupt { .. } => ErrorKind::DataCorruption,
            RefsError::Conflict { .. } => ErrorKind::Conflict,
            RefsError::Backend(e) => e.kind(),
        }
    }
}
