//! Errors of the image store.

use imgstore_backend::ErrorKind;

use crate::ImageId;

/// An image store failure; [`kind`](ImageError::kind) maps it onto the
/// backend's (containerd's) error kinds.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// No image matches a search term or an ID (moby: "No such image").
    #[error("No such image: {term}")]
    NotFound {
        /// The term or ID looked for.
        term: String,
    },
    /// A short ID matches several images.
    #[error("ambiguous image ID {term:?}: it matches more than one image")]
    Ambiguous {
        /// The term looked for.
        term: String,
    },
    /// The image has no `parent` set.
    #[error("image {id} has no parent (failed to read metadata)")]
    NoParent {
        /// The image.
        id: ImageId,
    },
    /// `set_parent` with an unknown parent.
    #[error("unknown parent image ID {parent}")]
    UnknownParent {
        /// The parent asked for.
        parent: ImageId,
    },
    /// `set_parent` that would make an image its own ancestor.
    #[error("cannot make {parent} the parent of {id}: it would create a cycle")]
    ParentCycle {
        /// The child.
        id: ImageId,
        /// The proposed parent.
        parent: ImageId,
    },
    /// A metadata value of the image is stored but unreadable (a
    /// `lastUpdated` that is not an RFC 3339 time).
    #[error("image {id}: metadata {key:?} is corrupt: {reason}")]
    CorruptMetadata {
        /// The image.
        id: ImageId,
        /// The metadata key (moby's name).
        key: &'static str,
        /// What is wrong with the value.
        reason: String,
    },
    /// A record of the image store is unreadable (a summary that is not
    /// JSON, a key that is not an image ID); `check` reports it and
    /// `rebuild_index` rewrites it.
    #[error("image store record {bucket}/{key} is corrupt: {reason}")]
    CorruptRecord {
        /// The bucket (`images` or `image-children`).
        bucket: &'static str,
        /// The record key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The config bytes are not a usable image config.
    #[error("{reason}")]
    InvalidConfig {
        /// What is wrong with it.
        reason: String,
    },
    /// The image's OS cannot run on this host.
    #[error("image operating system {os:?} cannot be used on this platform")]
    UnsupportedOs {
        /// The config's `os`.
        os: String,
    },
    /// A staged batch whose precondition on an image's summary no longer
    /// held when it was committed (the image created or deleted by another
    /// store meanwhile); nothing was written.
    #[error("image record images/{key} changed since it was read; nothing was written")]
    Conflict {
        /// The summary's key (the image ID's 64 hex digits).
        key: String,
    },
    /// The layer store refused (e.g. the top layer is not registered).
    #[error("failed to get layer: {0}")]
    Layer(#[from] imgstore_layer::LayerError),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] imgstore_backend::Error),
}

impl ImageError {
    /// The kind, in the backend's terms.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImageError::NotFound { .. }
            | ImageError::NoParent { .. }
            | ImageError::UnknownParent { .. } => ErrorKind::NotFound,
            ImageError::Ambiguous { .. }
            | ImageError::ParentCycle { .. }
            | ImageError::InvalidConfig { .. }
            | ImageError::UnsupportedOs { .. } => ErrorKind::InvalidArgument,
            ImageError::CorruptMetadata { .. } | ImageError::CorruptRecord { .. } => {
                ErrorKind::DataCorruption
            }
            ImageError::Conflict { .. } => ErrorKind::Conflict,
            ImageError::Layer(e) => e.kind(),
            ImageError::Backend(e) => e.kind(),
        }
    }

    /// True for the "not found" class (moby's `errdefs.IsNotFound`).
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }
}
