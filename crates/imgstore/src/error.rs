//! The facade's one error type.

use std::io;
use std::path::PathBuf;

use imgstore_backend::ErrorKind;
use imgstore_digest::Digest;

/// Every failure of the facade: the error of the crate that failed, or a
/// problem with an input (an OCI layout) named precisely.
/// [`kind`](Error::kind) gives containerd's error kind for matching.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A backend (content, metadata, records) failed.
    #[error(transparent)]
    Backend(#[from] imgstore_backend::Error),
    /// The layer store refused.
    #[error(transparent)]
    Layer(#[from] imgstore_layer::LayerError),
    /// The image store refused.
    #[error(transparent)]
    Image(#[from] imgstore_image::ImageError),
    /// The name store refused.
    #[error(transparent)]
    Refs(#[from] imgstore_refs::RefsError),
    /// The CRI cache failed.
    #[error(transparent)]
    Cri(#[from] imgstore_cri::CriError),
    /// A registry request failed (pull, push).
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    /// A digest in an input does not parse.
    #[error(transparent)]
    Digest(#[from] imgstore_digest::DigestError),
    /// The directory is not an OCI image layout (no `oci-layout` file, or an
    /// unsupported `imageLayoutVersion`).
    #[error("{}: not an OCI image layout: {reason}", .path.display())]
    NotOciLayout {
        /// The directory.
        path: PathBuf,
        /// What is wrong (names the `oci-layout` file).
        reason: String,
    },
    /// A tar archive (oci-archive, docker save) is unreadable, truncated,
    /// unsafe (a member or link leading outside it, a device file, a
    /// duplicate name) or lacks a member it needs.
    #[error("{}: invalid archive: {reason}", .path.display())]
    InvalidArchive {
        /// The archive file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file or blob of an input is not the JSON it must be.
    #[error("{file}: invalid JSON: {source}")]
    InvalidJson {
        /// The file (`index.json`) or blob (`manifest sha256:…`).
        file: String,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// An input is well-formed JSON but unusable.
    #[error("{what}: {reason}")]
    InvalidInput {
        /// What is wrong (a blob, a descriptor, an annotation).
        what: String,
        /// Why.
        reason: String,
    },
    /// A descriptor names a media type this store cannot import.
    #[error("unsupported {what} media type {media_type:?}")]
    UnsupportedMediaType {
        /// What the descriptor describes ("manifest", "layer").
        what: &'static str,
        /// The media type.
        media_type: String,
    },
    /// A multi-platform index has no manifest for the platform wanted
    /// (the host's by default): containerd's "no match for platform".
    #[error("{index}: no manifest for platform {wanted}; it offers {}", .available.join(", "))]
    NoMatchingPlatform {
        /// The index (`index.json`, or `index sha256:…` for a nested one).
        index: String,
        /// The platform wanted (`linux/amd64`).
        wanted: String,
        /// The platforms the index offers, in its order (`linux/arm/v7`).
        available: Vec<String>,
    },
    /// A blob named by an input is absent from it.
    #[error("blob {digest} not found in {}", .layout.display())]
    BlobNotFound {
        /// The missing blob.
        digest: Digest,
        /// The layout searched.
        layout: PathBuf,
    },
    /// A blob's length differs from its descriptor's size.
    #[error("blob {digest}: descriptor says {expected} bytes, blob has {actual}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// The descriptor's size.
        expected: u64,
        /// The blob's length.
        actual: u64,
    },
    /// A blob's bytes do not hash to its digest.
    #[error("blob {digest}: content hashes to {actual}")]
    DigestMismatch {
        /// The digest the blob is named by.
        digest: Digest,
        /// What it hashes to.
        actual: Digest,
    },
    /// A layer's uncompressed bytes do not hash to the config's diff ID.
    #[error("layer {layer}: uncompressed content hashes to {actual}, the config says {expected}")]
    DiffIdMismatch {
        /// The layer blob.
        layer: Digest,
        /// The config's `rootfs.diff_ids` entry.
        expected: Digest,
        /// What the decompressed bytes hash to.
        actual: Digest,
    },
    /// A layer blob does not decompress.
    #[error("layer {layer}: cannot decompress: {source}")]
    Decompress {
        /// The layer blob.
        layer: Digest,
        /// The decoder's complaint.
        #[source]
        source: io::Error,
    },
    /// A name given to `tag` (or `untag`), or a `RepoTags` entry of a
    /// `docker save` archive, is not a valid name for a tag: it does not
    /// parse, or it is a digest reference.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// Docker's `conflict: unable to delete <short id> (must be forced) - …`:
    /// the image cannot be removed as asked.
    #[error(
        "conflict: unable to delete {short_id} ({}) - {reason}",
        if *.forcible { "must be forced" } else { "cannot be forced" }
    )]
    ImageConflict {
        /// The image's short ID (12 hex characters).
        short_id: String,
        /// True when `force` would overcome the conflict.
        forcible: bool,
        /// What stands in the way.
        reason: &'static str,
    },
    /// `remove` by ID of an image that names in other namespaces reach: it
    /// is in use there (namespaces share images), so it is never deleted
    /// from this one, with or without `force`. Its names here, if any, go
    /// with `remove` by name.
    #[error(
        "conflict: unable to delete {short_id} (cannot be forced) - image is in use by names in namespace(s) {}",
        namespaces.join(", ")
    )]
    InUseInOtherNamespaces {
        /// The image's short ID (12 hex characters).
        short_id: String,
        /// The other namespaces whose names reach it, sorted.
        namespaces: Vec<String>,
    },
    /// The image has no manifest a name could point at: no name of the
    /// namespace reaches it.
    #[error(
        "image {image} has no manifest: no name of the namespace reaches it, so a new name has nothing to point at"
    )]
    NoManifest {
        /// The image.
        image: imgstore_image::ImageId,
    },
    /// The image has no name, and the operation works on names (`pin`).
    #[error("image {image} has no name of the namespace to pin")]
    Unnamed {
        /// The image.
        image: imgstore_image::ImageId,
    },
    /// An export's destination exists (and is not an empty directory for a
    /// layout directory); nothing was written.
    #[error("{}: already exists; export writes only to a new path (or an empty directory for an OCI layout)", .path.display())]
    DestinationExists {
        /// The destination.
        path: PathBuf,
    },
    /// An image cannot be exported: a layer, blob or manifest it needs is
    /// not stored.
    #[error("image {image} cannot be exported: {reason}")]
    NotExportable {
        /// The image.
        image: imgstore_image::ImageId,
        /// What is missing.
        reason: String,
    },
    /// The root holds no store, and the caller asked not to create one
    /// ([`Options::create`](crate::Options::create) false).
    #[error("no store at {}", .root.display())]
    NoStore {
        /// The root.
        root: PathBuf,
    },
    /// The root was created with another backend than the one asked for.
    #[error(
        "{}: the store there uses the {recorded} backend, not {requested}",
        .root.display()
    )]
    BackendMismatch {
        /// The root.
        root: PathBuf,
        /// The backend `store.json` records.
        recorded: crate::Backend,
        /// The backend asked for.
        requested: crate::Backend,
    },
    /// The root is not one this user may trust: owned by another user,
    /// writable by others, or not a directory.
    #[error("refusing the store root {}: {reason}", .root.display())]
    UnsafeRoot {
        /// The root.
        root: PathBuf,
        /// Why.
        reason: String,
    },
    /// The root's record of itself (`store.json`) is unreadable, or the
    /// root holds two stores and records neither.
    #[error("{}: not a usable store root: {reason}", .root.display())]
    InvalidRoot {
        /// The root.
        root: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Another process held the root's lock for longer than
    /// [`Options::lock_timeout`](crate::Options::lock_timeout).
    #[error(
        "{}: gave up after waiting {waited:.1?} for the lock, held by {holders}",
        .path.display()
    )]
    LockTimeout {
        /// The lock file; for a PostgreSQL store, `database <url>`.
        path: PathBuf,
        /// How long it waited.
        waited: std::time::Duration,
        /// Who holds it (`process 1234 (imgstore)`), as the kernel says.
        holders: String,
    },
    /// A name carries a digest (`nginx@sha256:…`, from an OCI
    /// `org.opencontainers.image.ref.name`) that is not the digest of the
    /// manifest or index it would point at.
    #[error("name {name:?} carries a digest, but its target is {target}")]
    NameDigestMismatch {
        /// The name (normalised).
        name: String,
        /// The digest of the manifest or index the name would point at.
        target: Digest,
    },
    /// An import needs more than one of the limits of an import allows
    /// (descriptors and names listed, JSON bytes read): refused before
    /// anything is written.
    #[error("{}: refused: the import lists more than {max} {limit}", .input.display())]
    ImportTooLarge {
        /// The layout directory or archive.
        input: PathBuf,
        /// What is counted ("descriptors and names", "bytes of JSON").
        limit: &'static str,
        /// The limit.
        max: u64,
    },
    /// A layer blob is empty (0 bytes): not a tar, compressed or not.
    #[error("layer {layer}: empty (0 bytes), not a tar")]
    EmptyLayer {
        /// The layer blob (for an uncompressed `docker save` layer, its diff ID).
        layer: Digest,
    },
    /// Reading an input failed.
    #[error("{operation} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The kind, in containerd's terms (those of `imgstore-backend`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Backend(e) => e.kind(),
            Error::Layer(e) => e.kind(),
            Error::Image(e) => e.kind(),
            Error::Refs(e) => e.kind(),
            Error::Cri(e) => e.kind(),
            Error::Registry(e) => e.kind(),
            Error::Digest(_)
            | Error::NotOciLayout { .. }
            | Error::InvalidArchive { .. }
            | Error::InvalidJson { .. }
            | Error::InvalidInput { .. }
            | Error::InvalidName { .. }
            | Error::NameDigestMismatch { .. }
            | Error::ImportTooLarge { .. }
            | Error::EmptyLayer { .. }
            | Error::UnsupportedMediaType { .. } => ErrorKind::InvalidArgument,
            Error::ImageConflict { .. } | Error::InUseInOtherNamespaces { .. } => {
                ErrorKind::Conflict
            }
            Error::NoManifest { .. } | Error::Unnamed { .. } | Error::NotExportable { .. } => {
                ErrorKind::FailedPrecondition
            }
            Error::DestinationExists { .. } => ErrorKind::AlreadyExists,
            Error::NoStore { .. } => ErrorKind::NotFound,
            Error::BackendMismatch { .. } => ErrorKind::InvalidArgument,
            Error::UnsafeRoot { .. } | Error::InvalidRoot { .. } | Error::LockTimeout { .. } => {
                ErrorKind::FailedPrecondition
            }
            Error::BlobNotFound { .. } | Error::NoMatchingPlatform { .. } => ErrorKind::NotFound,
            Error::SizeMismatch { .. }
            | Error::DigestMismatch { .. }
            | Error::DiffIdMismatch { .. }
            | Error::Decompress { .. } => ErrorKind::DataCorruption,
            Error::Io { .. } => ErrorKind::Io,
        }
    }
}

/// The facade's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
