//! Errors of the CRI cache.

use imgstore_backend::ErrorKind;

/// A CRI cache failure; [`kind`](CriError::kind) maps it onto containerd's kinds.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CriError {
    /// No image for this reference, ID or prefix.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// A prefix that matches several images (passed through, as containerd does).
    #[error("ambiguous image ID prefix {prefix:?}")]
    Ambiguous {
        /// The prefix.
        prefix: String,
    },
    /// The resolver could not say what a reference names.
    #[error("failed to resolve {reference:?}: {source}")]
    Resolve {
        /// The reference being resolved.
        reference: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl CriError {
    /// The kind, in containerd's terms.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CriError::NotFound { .. } => ErrorKind::NotFound,
            CriError::Ambiguous { .. } => ErrorKind::InvalidArgument,
            CriError::Resolve { .. } => ErrorKind::Io,
        }
    }
}
