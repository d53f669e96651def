//! Errors of the layer store.

use imgstore_backend::ErrorKind;

use crate::ChainId;

/// A layer store failure; [`kind`](LayerError::kind) maps it onto the
/// backend's error kinds.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// No layer with this chain ID.
    #[error("layer {chain_id} does not exist")]
    NotFound {
        /// The chain asked for.
        chain_id: ChainId,
    },
    /// `register` named a parent that is not in the store.
    #[error("parent layer {parent} does not exist")]
    ParentNotFound {
        /// The missing parent.
        parent: ChainId,
    },
    /// `release` by a holder that holds no reference on the layer.
    #[error("{holder:?} holds no reference on layer {chain_id}")]
    NotHeld {
        /// The layer.
        chain_id: ChainId,
        /// The holder that tried to release it.
        holder: String,
    },
    /// A holder name that cannot be stored (empty, NUL, over 1024 bytes).
    #[error("invalid holder name {holder:?}: {reason}")]
    InvalidHolder {
        /// The refused name, shortened.
        holder: String,
        /// Why.
        reason: &'static str,
    },
    /// A layer registered again under its chain ID with different facts.
    #[error("layer {chain_id} is already registered with diff ID {existing}, not {offered}")]
    Mismatch {
        /// The chain.
        chain_id: ChainId,
        /// The stored diff ID.
        existing: String,
        /// The diff ID offered now.
        offered: String,
    },
    /// A layer record that does not decode, or whose chain ID does not
    /// follow from its parent and diff ID. Reported, never deleted.
    #[error("layer record {key} is corrupt: {reason}")]
    CorruptRecord {
        /// The record key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A staged batch whose precondition on a layer record no longer
    /// held when it was committed (another store changed the record
    /// meanwhile); nothing was written.
    #[error("layer record {bucket}/{key} changed since it was read; nothing was written")]
    Conflict {
        /// The bucket (`layers` or `layer-holders`).
        bucket: String,
        /// The record key.
        key: String,
    },
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] imgstore_backend::Error),
}

impl LayerError {
    /// The kind, in the backend's (containerd's) terms.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LayerError::NotFound { .. } | LayerError::ParentNotFound { .. } => ErrorKind::NotFound,
            LayerError::NotHeld { .. } => ErrorKind::FailedPrecondition,
            LayerError::InvalidHolder { .. } | LayerError::Mismatch { .. } => {
                ErrorKind::InvalidArgument
            }
            LayerError::CorruptRecord { .. } => ErrorKind::DataCorruption,
            LayerError::Conflict { .. } => ErrorKind::Conflict,
            LayerError::Backend(e) => e.kind(),
        }
    }
}
